import Bencode
import Crypto

extension TorrentInfo {
    /// Smallest accepted piece length: one 16 KiB request block. Smaller pieces only add overhead
    /// and no mainstream client creates them.
    public static let minimumPieceLength = 16 * 1024
    /// Largest accepted piece length. Real torrents top out at 16–32 MiB; larger values would make a
    /// single piece an unreasonable amount of memory to buffer and verify.
    public static let maximumPieceLength = 64 * 1024 * 1024
    /// Torrents listing more files are refused rather than handled. Every file costs a path check, a
    /// descriptor when used, a stat on resume and a line in `burrow info`; 100 000 covers real-world
    /// torrents (libtorrent's default decode limits admit roughly 400 000), while a million-file torrent
    /// is an attack on memory and time. Together with `Metainfo.maximumBencodeValues`, which stops the
    /// parse itself early, memory stays bounded by what the largest accepted torrent costs.
    public static let maximumFileCount = 100_000

    /// Parses and validates a bencoded `info` dictionary (from a .torrent file or fetched from
    /// peers via BEP 9). The info hash is the SHA-1 of exactly these bytes.
    ///
    /// Key order is not enforced (the hash covers the raw bytes, so non-canonical input is
    /// harmless), but duplicate keys, bad numbers and trailing bytes are refused.
    public static func parse(infoBytes: [UInt8]) throws -> TorrentInfo {
        let value = try MetainfoError.wrappingBencode(at: BencodePath([.key("info")])) {
            try Bencode.decode(infoBytes, options: Metainfo.decodingOptions)
        }
        return try parse(infoValue: value, rawBytes: infoBytes)
    }

    /// Validates an already decoded info dictionary whose encoding is `rawBytes`.
    static func parse(infoValue: BValue, rawBytes: [UInt8]) throws -> TorrentInfo {
        let info = try MetainfoFields(infoValue, path: "info")

        if info["pieces"] == nil, info["meta version"]?.int == 2 {
            throw MetainfoError.invalidValue(
                field: "info.meta version", reason: "BitTorrent v2-only torrents are not supported")
        }

        let pieceLength = try validatedPieceLength(info)
        let pieceHashes = try info.requiredBytes("pieces")
        guard pieceHashes.count % 20 == 0 else {
            throw MetainfoError.invalidValue(
                field: "info.pieces", reason: "length \(pieceHashes.count) is not a multiple of 20")
        }

        let name = try PathComponentRules.validated(
            try preferredText(info, key: "name"), field: info.fieldPath("name"))

        let files: [FileEntry]
        switch (info["length"], info["files"]) {
        case (.some, .some):
            throw MetainfoError.invalidValue(
                field: "info", reason: "has both \"length\" (single file) and \"files\" (multiple files)")
        case (.none, .none):
            throw MetainfoError.missingField("info.length")
        case (.some, .none):
            let length = try info.requiredInteger("length")
            guard length >= 0 else {
                throw MetainfoError.invalidValue(field: "info.length", reason: "negative length \(length)")
            }
            files = [FileEntry(path: [name], length: length, offset: 0)]
        case (.none, .some):
            files = try multiFileEntries(info, rootName: name)
        }

        let totalLength = files.last.map { $0.offset + $0.length } ?? 0
        guard totalLength > 0 else {
            throw MetainfoError.invalidValue(field: "info", reason: "torrent holds no data (total length is 0)")
        }
        let expectedPieces = Int(totalLength / Int64(pieceLength)) + (totalLength % Int64(pieceLength) == 0 ? 0 : 1)
        guard pieceHashes.count / 20 == expectedPieces else {
            throw MetainfoError.invalidValue(
                field: "info.pieces",
                reason: "has \(pieceHashes.count / 20) hashes but \(totalLength) bytes in pieces of "
                    + "\(pieceLength) need \(expectedPieces)")
        }

        let isPrivate = try (info.optionalInteger("private") ?? 0) != 0
        let digest = Insecure.SHA1.hash(data: rawBytes)
        return TorrentInfo(
            name: name, pieceLength: pieceLength, pieceHashes: pieceHashes, files: files,
            totalLength: totalLength, isPrivate: isPrivate, rawBytes: rawBytes,
            infoHash: InfoHash(bytes: Array(digest))!)
    }

    private static func validatedPieceLength(_ info: MetainfoFields) throws -> Int {
        let value = try info.requiredInteger("piece length")
        guard value > 0 else {
            throw MetainfoError.invalidValue(field: "info.piece length", reason: "must be positive, got \(value)")
        }
        guard value >= Int64(minimumPieceLength), value <= Int64(maximumPieceLength),
              value % Int64(minimumPieceLength) == 0
        else {
            throw MetainfoError.invalidValue(
                field: "info.piece length",
                reason: "\(value) is not a multiple of 16 KiB between 16 KiB and 64 MiB")
        }
        return Int(value)
    }

    private static func multiFileEntries(_ info: MetainfoFields, rootName: String) throws -> [FileEntry] {
        let list = try info.requiredList("files")
        guard !list.isEmpty else {
            throw MetainfoError.invalidValue(field: "info.files", reason: "must list at least one file")
        }
        guard list.count <= maximumFileCount else {
            throw MetainfoError.invalidValue(
                field: "info.files", reason: "lists \(list.count) files; Burrow accepts at most \(maximumFileCount)")
        }
        var entries = [FileEntry]()
        entries.reserveCapacity(list.count)
        var collisions = PathCollisionDetector()
        var offset: Int64 = 0
        for (index, item) in list.enumerated() {
            let file = try MetainfoFields(item, path: "info.files[\(index)]")
            let length = try file.requiredInteger("length")
            guard length >= 0 else {
                throw MetainfoError.invalidValue(field: file.fieldPath("length"), reason: "negative length \(length)")
            }
            let components = try pathComponents(file)
            let isPadding = (try file.optionalBytes("attr"))?.contains(UInt8(ascii: "p")) ?? false
            // Padding files are never written, and BEP 47 lets many share a name like ".pad/16384".
            if !isPadding { try collisions.insert(components, field: file.fieldPath("path")) }
            entries.append(FileEntry(path: [rootName] + components, length: length, offset: offset, isPadding: isPadding))
            let (next, overflow) = offset.addingReportingOverflow(length)
            guard !overflow else {
                throw MetainfoError.invalidValue(
                    field: file.fieldPath("length"), reason: "total length overflows a 64-bit integer")
            }
            offset = next
        }
        return entries
    }

    /// `path.utf-8` when present and well formed, otherwise `path`; every component validated.
    private static func pathComponents(_ file: MetainfoFields) throws -> [String] {
        let field = file.fieldPath("path")
        let raw: [BValue]
        if let utf8 = file["path.utf-8"]?.list, utf8.allSatisfy({ $0.string != nil }), !utf8.isEmpty {
            raw = utf8
        } else {
            raw = try file.requiredList("path")
        }
        guard !raw.isEmpty else {
            throw MetainfoError.invalidValue(field: field, reason: "must have at least one component")
        }
        return try raw.enumerated().map { index, component in
            guard case .bytes(let bytes) = component else {
                throw MetainfoError.wrongType(
                    field: "\(field)[\(index)]", expected: "byte string", found: component.kindName)
            }
            return try PathComponentRules.validated(PathComponentRules.text(bytes), field: field)
        }
    }

    /// `<key>.utf-8` when it is valid UTF-8, otherwise `<key>` (decoded leniently, see `PathComponentRules.text`).
    private static func preferredText(_ dict: MetainfoFields, key: String) throws -> String {
        if let text = dict["\(key).utf-8"]?.string { return text }
        return PathComponentRules.text(try dict.requiredBytes(key))
    }
}

/// What makes a path component safe to join under the download directory.
enum PathComponentRules {
    /// Non-UTF-8 names (old torrents in legacy code pages) are kept usable: invalid sequences
    /// become U+FFFD. Two names that degrade to the same text are then caught as a collision.
    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// Refuses anything that could escape the torrent's directory or is not a single name:
    /// empty, ".", "..", or containing "/", "\" (a separator on Windows) or NUL.
    static func validated(_ component: String, field: String) throws -> String {
        func refuse(_ reason: String) -> MetainfoError { .invalidValue(field: field, reason: reason) }
        if component.isEmpty { throw refuse("empty path component is not allowed") }
        if component == "." || component == ".." {
            throw refuse("component \(component.debugDescription) is not allowed")
        }
        for scalar in component.unicodeScalars {
            switch scalar {
            case "/": throw refuse("component \(component.debugDescription) contains \"/\"")
            case "\\": throw refuse("component \(component.debugDescription) contains \"\\\"")
            case "\0": throw refuse("component \(component.debugDescription) contains a NUL byte")
            default: continue
            }
        }
        return component
    }
}

/// Detects files that would land on the same place on disk: identical paths, a file that is also
/// used as a directory by another path, and paths differing only in letter case (which collide on
/// the case-insensitive file systems of macOS and Windows).
struct PathCollisionDetector {
    /// Folded full path of each file seen -> the field that declared it.
    private var files: [String: String] = [:]
    /// Folded path of every directory implied by a file seen -> the field that implied it.
    private var directories: [String: String] = [:]

    mutating func insert(_ components: [String], field: String) throws {
        // Components never contain "/", so joining keeps distinct paths distinct.
        let folded = components.map { $0.lowercased() }
        let full = folded.joined(separator: "/")
        if let other = files[full] {
            throw MetainfoError.invalidValue(
                field: field, reason: "\(components.joined(separator: "/").debugDescription) collides with \(other)")
        }
        if let other = directories[full] {
            throw MetainfoError.invalidValue(
                field: field,
                reason: "\(components.joined(separator: "/").debugDescription) is also a directory in \(other)")
        }
        var prefix = ""
        for (depth, component) in folded.dropLast().enumerated() {
            prefix = prefix.isEmpty ? component : prefix + "/" + component
            if let other = files[prefix] {
                let shown = components[...depth].joined(separator: "/")
                throw MetainfoError.invalidValue(
                    field: field, reason: "uses \(shown.debugDescription) as a directory but it is a file in \(other)")
            }
            if directories[prefix] == nil { directories[prefix] = field }
        }
        files[full] = field
    }
}
