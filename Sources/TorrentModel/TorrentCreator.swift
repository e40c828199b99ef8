import Foundation
import Bencode
import Crypto

/// Why a torrent could not be created.
public enum TorrentCreatorError: Error, Equatable, Sendable, CustomStringConvertible {
    case noFiles
    case unreadable(path: String, reason: String)
    /// The result failed our own validation (bad name, colliding paths, bad piece length, ...).
    case invalidTorrent(MetainfoError)

    public var description: String {
        switch self {
        case .noFiles: return "no files to put in the torrent"
        case .unreadable(let path, let reason): return "cannot read \(path.debugDescription): \(reason)"
        case .invalidTorrent(let error): return "torrent would be invalid: \(error)"
        }
    }
}

/// Builds v1 .torrent files. Output is deterministic for the same inputs (no timestamp unless
/// given), and is always run through `Metainfo.parse` before being returned, so it never
/// produces a torrent this client would refuse.
public enum TorrentCreator {
    /// Optional top-level fields.
    public struct Details: Sendable {
        public var announce: [[String]]
        public var isPrivate: Bool
        public var comment: String?
        public var createdBy: String?
        public var creationDate: Int64?

        public init(announce: [[String]] = [], isPrivate: Bool = false, comment: String? = nil,
                    createdBy: String? = nil, creationDate: Int64? = nil) {
            self.announce = announce
            self.isPrivate = isPrivate
            self.comment = comment
            self.createdBy = createdBy
            self.creationDate = creationDate
        }
    }

    /// A multi-file torrent from in-memory files; `path` is relative to the directory `name`.
    public static func create(
        files: [(path: [String], data: [UInt8])], name: String, pieceLength: Int,
        announce: [[String]] = [], isPrivate: Bool = false
    ) throws -> [UInt8] {
        try create(files: files, name: name, pieceLength: pieceLength,
                   details: Details(announce: announce, isPrivate: isPrivate))
    }

    public static func create(
        files: [(path: [String], data: [UInt8])], name: String, pieceLength: Int, details: Details
    ) throws -> [UInt8] {
        guard !files.isEmpty else { throw TorrentCreatorError.noFiles }
        var hasher = PieceHasher(pieceLength: pieceLength)
        for file in files { hasher.append(file.data) }
        let layout = Layout.multiFile(files.map { ($0.path, Int64($0.data.count)) })
        return try assemble(layout: layout, name: name, pieceLength: pieceLength,
                            pieces: hasher.finish(), details: details)
    }

    /// A single-file torrent from in-memory data.
    public static func create(
        singleFile name: String, data: [UInt8], pieceLength: Int, details: Details = Details()
    ) throws -> [UInt8] {
        var hasher = PieceHasher(pieceLength: pieceLength)
        hasher.append(data)
        return try assemble(layout: .singleFile(length: Int64(data.count)), name: name,
                            pieceLength: pieceLength, pieces: hasher.finish(), details: details)
    }

    /// A torrent of what is on disk at `path`: a regular file gives a single-file torrent, a
    /// directory a multi-file one holding every regular file below it in bytewise path order
    /// (symbolic links and empty directories are skipped). Files are streamed, never loaded whole.
    /// `name` defaults to the last component of `path`.
    public static func create(
        contentsOf path: String, name: String? = nil, pieceLength: Int, details: Details = Details()
    ) throws -> [UInt8] {
        let fileManager = FileManager.default
        let rootName = name ?? URL(fileURLWithPath: path).lastPathComponent
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TorrentCreatorError.unreadable(path: path, reason: "no such file or directory")
        }
        var hasher = PieceHasher(pieceLength: pieceLength)
        if !isDirectory.boolValue {
            let length = try stream(path, into: &hasher)
            return try assemble(layout: .singleFile(length: length), name: rootName,
                                pieceLength: pieceLength, pieces: hasher.finish(), details: details)
        }
        let subpaths: [String]
        do { subpaths = try fileManager.subpathsOfDirectory(atPath: path) } catch {
            throw TorrentCreatorError.unreadable(path: path, reason: "\(error)")
        }
        var files = [([String], Int64)]()
        for subpath in subpaths.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
            let fullPath = path + "/" + subpath
            let attributes = try? fileManager.attributesOfItem(atPath: fullPath)
            guard attributes?[.type] as? FileAttributeType == .typeRegular else { continue }
            let length = try stream(fullPath, into: &hasher)
            files.append((subpath.split(separator: "/").map(String.init), length))
        }
        guard !files.isEmpty else { throw TorrentCreatorError.noFiles }
        return try assemble(layout: .multiFile(files), name: rootName, pieceLength: pieceLength,
                            pieces: hasher.finish(), details: details)
    }

    private enum Layout {
        case singleFile(length: Int64)
        case multiFile([(path: [String], length: Int64)])
    }

    private static func assemble(
        layout: Layout, name: String, pieceLength: Int, pieces: [UInt8], details: Details
    ) throws -> [UInt8] {
        var info: [BKey: BValue] = [
            "name": .string(name),
            "piece length": .integer(Int64(pieceLength)),
            "pieces": .bytes(pieces),
        ]
        switch layout {
        case .singleFile(let length):
            info["length"] = .integer(length)
        case .multiFile(let files):
            info["files"] = .list(files.map { file in
                ["length": .integer(file.length), "path": .list(file.path.map(BValue.string))]
            })
        }
        if details.isPrivate { info["private"] = 1 }

        var top: [BKey: BValue] = ["info": .dictionary(info)]
        let tiers = details.announce.map { $0.filter { !$0.isEmpty } }.filter { !$0.isEmpty }
        if let first = tiers.first?.first { top["announce"] = .string(first) }
        if tiers.count > 1 || (tiers.first?.count ?? 0) > 1 {
            top["announce-list"] = .list(tiers.map { .list($0.map(BValue.string)) })
        }
        if let comment = details.comment { top["comment"] = .string(comment) }
        if let createdBy = details.createdBy { top["created by"] = .string(createdBy) }
        if let creationDate = details.creationDate { top["creation date"] = .integer(creationDate) }

        let bytes = Bencode.encode(.dictionary(top))
        do { _ = try Metainfo.parse(bytes) } catch let error as MetainfoError {
            throw TorrentCreatorError.invalidTorrent(error)
        }
        return bytes
    }

    /// Feeds a file through the hasher in 1 MiB chunks; returns its length.
    private static func stream(_ path: String, into hasher: inout PieceHasher) throws -> Int64 {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw TorrentCreatorError.unreadable(path: path, reason: "cannot open for reading")
        }
        defer { try? handle.close() }
        var length: Int64 = 0
        while true {
            let chunk: Data?
            do { chunk = try handle.read(upToCount: 1 << 20) } catch {
                throw TorrentCreatorError.unreadable(path: path, reason: "\(error)")
            }
            guard let chunk, !chunk.isEmpty else { return length }
            hasher.append(chunk)
            length += Int64(chunk.count)
        }
    }
}

/// SHA-1 of consecutive `pieceLength`-sized slices of a byte stream fed in arbitrary chunks.
struct PieceHasher {
    let pieceLength: Int
    private var current = Insecure.SHA1()
    /// Bytes already hashed into `current`; always < pieceLength between calls.
    private var filled = 0
    private var hashes = [UInt8]()

    init(pieceLength: Int) { self.pieceLength = max(pieceLength, 1) }

    mutating func append(_ bytes: some Collection<UInt8> & DataProtocol) {
        var rest = bytes[...]
        while !rest.isEmpty {
            let take = min(pieceLength - filled, rest.count)
            let end = rest.index(rest.startIndex, offsetBy: take)
            current.update(data: rest[rest.startIndex..<end])
            rest = rest[end...]
            filled += take
            if filled == pieceLength { closePiece() }
        }
    }

    /// All piece hashes, including the short last piece.
    mutating func finish() -> [UInt8] {
        if filled > 0 { closePiece() }
        return hashes
    }

    private mutating func closePiece() {
        hashes += Array(current.finalize())
        current = Insecure.SHA1()
        filled = 0
    }
}
