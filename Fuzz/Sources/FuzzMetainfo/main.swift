import FuzzSupport
import TorrentModel

/// .torrent files (BEP 3, 12). A torrent that parses must be self-consistent: its info bytes parse alone to
/// the same info hash and files, files sit back to back, the piece hashes cover the total length exactly,
/// every path component is a single safe name, and the piece <-> file maps agree at both ends.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMetainfo(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = FuzzInput(start, count).rest
    let metainfo: Metainfo
    do {
        metainfo = try Metainfo.parse(input)
    } catch {
        exercise(error)
        return 0
    }
    let info = metainfo.info
    do {
        let alone = try TorrentInfo.parse(infoBytes: info.rawBytes)
        fuzzCheck(alone.infoHash == info.infoHash && alone.files == info.files, "info bytes parse differently alone")
    } catch {
        fuzzCheck(false, "the info dictionary of a valid torrent fails alone: \(error)")
    }

    var offset: Int64 = 0
    for file in info.files {
        fuzzCheck(file.offset == offset && file.length >= 0, "file \(file.relativePath) at \(file.offset), expected \(offset)")
        offset += file.length
        for component in file.path {
            fuzzCheck(!component.isEmpty && component != "." && component != ".."
                      && !component.contains("/") && !component.contains("\\") && !component.contains("\0"),
                      "unsafe path component \(component.debugDescription)")
        }
    }
    fuzzCheck(offset == info.totalLength && info.totalLength > 0, "files add up to \(offset), not \(info.totalLength)")

    let pieces = info.pieceCount
    fuzzCheck(pieces > 0 && info.pieceHashes.count == pieces * 20, "\(info.pieceHashes.count) hash bytes")
    fuzzCheck(Int64(pieces - 1) * Int64(info.pieceLength) < info.totalLength
              && Int64(pieces) * Int64(info.pieceLength) >= info.totalLength, "pieces do not cover the total length")
    for piece in Set([0, pieces - 1]) {
        let length = info.length(ofPiece: piece)
        fuzzCheck(length > 0 && length <= info.pieceLength, "piece \(piece) has length \(length)")
        fuzzCheck(info.hash(ofPiece: piece).count == 20, "piece \(piece) has no 20-byte hash")
        // The range is contiguous, so it also holds zero-length files that sit inside the piece; those
        // overlap no piece.
        for fileIndex in info.files(overlappingPiece: piece) where info.files[fileIndex].length > 0 {
            fuzzCheck(info.pieces(overlappingFile: fileIndex).contains(piece), "piece \(piece) and file \(fileIndex) disagree")
        }
    }
    _ = metainfo.announceTiers.flatMap { $0 }.map(\.count)
    return 0
}
