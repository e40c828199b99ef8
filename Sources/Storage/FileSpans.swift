import TorrentModel

/// The part of a byte range of the torrent's stream that lies inside one file.
struct FileSpan: Equatable {
    let fileIndex: Int
    /// Where the span starts inside the file.
    let fileOffset: Int64
    /// Where the span starts inside the caller's buffer (relative to the range's start).
    let bufferOffset: Int
    let length: Int
}

extension TorrentInfo {
    /// Calls `body` for each file span covering `length` bytes at `begin` within piece `piece`, in
    /// stream order. Zero-length files are skipped; padding files are reported like any other so the
    /// caller decides what they mean. Allocation-free: it runs on every block and every verified piece.
    func forEachSpan(piece: Int, begin: Int, length: Int, _ body: (FileSpan) throws -> Void) rethrows {
        let start = Int64(piece) * Int64(pieceLength) + Int64(begin)
        let end = start + Int64(length)
        guard length > 0 else { return }
        // First file whose end lies past `start`.
        var lo = 0, hi = files.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if files[mid].offset + files[mid].length <= start { lo = mid + 1 } else { hi = mid }
        }
        var index = lo
        while index < files.count, files[index].offset < end {
            let file = files[index]
            let spanStart = max(start, file.offset)
            let spanEnd = min(end, file.offset + file.length)
            if spanEnd > spanStart {
                try body(FileSpan(fileIndex: index, fileOffset: spanStart - file.offset,
                                  bufferOffset: Int(spanStart - start), length: Int(spanEnd - spanStart)))
            }
            index += 1
        }
    }

    /// How many bytes of file `fileIndex` piece `piece` needs: a file must be at least this long on
    /// disk for the piece to possibly be there.
    func requiredFileLength(fileIndex: Int, forPiece piece: Int) -> Int64 {
        let file = files[fileIndex]
        let pieceEnd = Int64(piece) * Int64(pieceLength) + Int64(length(ofPiece: piece))
        return max(0, min(file.offset + file.length, pieceEnd) - file.offset)
    }
}
