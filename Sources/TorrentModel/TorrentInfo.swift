/// One file of a torrent, at its place in the torrent's concatenated byte stream.
public struct FileEntry: Hashable, Sendable {
    /// Validated relative path components: none empty, none "." or "..", no "/" or NUL inside.
    /// For a single-file torrent this is `[name]`; for multi-file, `[name] + path`.
    public let path: [String]
    public let length: Int64
    /// Offset of the file's first byte in the torrent's byte stream.
    public let offset: Int64
    /// BEP 47 padding file: present in the stream, never written to disk.
    public let isPadding: Bool

    public init(path: [String], length: Int64, offset: Int64, isPadding: Bool = false) {
        self.path = path
        self.length = length
        self.offset = offset
        self.isPadding = isPadding
    }

    public var relativePath: String { path.joined(separator: "/") }
}

/// The parsed, validated `info` dictionary (BEP 3, v1). Everything the swarm agrees on.
public struct TorrentInfo: Sendable {
    public let name: String
    public let pieceLength: Int
    /// 20 bytes per piece, concatenated.
    public let pieceHashes: [UInt8]
    public let files: [FileEntry]
    public let totalLength: Int64
    public let isPrivate: Bool
    /// The exact bencoded bytes the info hash was computed over (also served to peers via BEP 9).
    public let rawBytes: [UInt8]
    public let infoHash: InfoHash

    public init(name: String, pieceLength: Int, pieceHashes: [UInt8], files: [FileEntry],
                totalLength: Int64, isPrivate: Bool, rawBytes: [UInt8], infoHash: InfoHash) {
        self.name = name
        self.pieceLength = pieceLength
        self.pieceHashes = pieceHashes
        self.files = files
        self.totalLength = totalLength
        self.isPrivate = isPrivate
        self.rawBytes = rawBytes
        self.infoHash = infoHash
    }

    public var pieceCount: Int { pieceHashes.count / 20 }
    public var isMultiFile: Bool { files.count != 1 || files[0].path.count != 1 }

    /// Length of piece `index`; only the last piece may be short.
    public func length(ofPiece index: Int) -> Int {
        let start = Int64(index) * Int64(pieceLength)
        return Int(min(Int64(pieceLength), totalLength - start))
    }

    public func hash(ofPiece index: Int) -> ArraySlice<UInt8> {
        pieceHashes[(index * 20)..<(index * 20 + 20)]
    }

    /// Indices into `files` of the files that piece `index` overlaps (zero-length files never overlap).
    public func files(overlappingPiece index: Int) -> Range<Int> {
        let start = Int64(index) * Int64(pieceLength)
        let end = start + Int64(length(ofPiece: index))
        // Binary search for the first file whose end is past `start`.
        var lo = 0, hi = files.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if files[mid].offset + files[mid].length <= start { lo = mid + 1 } else { hi = mid }
        }
        var last = lo
        while last < files.count && files[last].offset < end { last += 1 }
        return lo..<max(lo, last)
    }

    /// Pieces that overlap file `fileIndex` (empty for zero-length files).
    public func pieces(overlappingFile fileIndex: Int) -> Range<Int> {
        let f = files[fileIndex]
        guard f.length > 0 else { return 0..<0 }
        let first = Int(f.offset / Int64(pieceLength))
        let last = Int((f.offset + f.length - 1) / Int64(pieceLength))
        return first..<(last + 1)
    }
}
