import Bencode
import Crypto
import TorrentModel

/// Builders for metainfo dictionaries, so each test states only what it changes.
enum Fixtures {
    static let pieceLength = 16 * 1024

    /// SHA-1 piece hashes of `data` split into `pieceLength` pieces.
    static func pieceHashes(_ data: [UInt8], pieceLength: Int = pieceLength) -> [UInt8] {
        stride(from: 0, to: data.count, by: pieceLength).flatMap { start in
            Array(Insecure.SHA1.hash(data: data[start..<min(start + pieceLength, data.count)]))
        }
    }

    /// Deterministic filler bytes.
    static func data(count: Int, seed: UInt8 = 1) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
    }

    /// A valid single-file info dictionary of `length` bytes (hashes are placeholders of the right count).
    static func singleFileInfo(name: String = "file.bin", length: Int64 = 40_000) -> [BKey: BValue] {
        let pieces = Int((length + Int64(pieceLength) - 1) / Int64(pieceLength))
        return [
            "name": .string(name),
            "piece length": .integer(Int64(pieceLength)),
            "length": .integer(length),
            "pieces": .bytes([UInt8](repeating: 0xab, count: pieces * 20)),
        ]
    }

    /// A valid multi-file info dictionary for files of the given paths and lengths.
    static func multiFileInfo(name: String = "folder", files: [([String], Int64)]) -> [BKey: BValue] {
        let total = files.reduce(0) { $0 + $1.1 }
        let pieces = Int((total + Int64(pieceLength) - 1) / Int64(pieceLength))
        return [
            "name": .string(name),
            "piece length": .integer(Int64(pieceLength)),
            "files": .list(files.map { file in
                ["length": .integer(file.1), "path": .list(file.0.map(BValue.string))]
            }),
            "pieces": .bytes([UInt8](repeating: 0xcd, count: pieces * 20)),
        ]
    }

    static func torrent(info: [BKey: BValue], extra: [BKey: BValue] = [:]) -> [UInt8] {
        var top = extra
        top["info"] = .dictionary(info)
        return Bencode.encode(.dictionary(top))
    }

    /// Runs a parse expected to fail and returns its `MetainfoError`.
    static func metainfoError(_ bytes: [UInt8]) -> MetainfoError? {
        do {
            _ = try Metainfo.parse(bytes)
            return nil
        } catch let error as MetainfoError {
            return error
        } catch {
            return nil
        }
    }
}
