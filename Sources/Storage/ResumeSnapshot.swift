import TorrentModel

/// The compacted part of the resume data, stored as a bencoded dictionary:
/// `epoch`, `file identities` (one `FileIdentity` record per file, zeros where none was taken),
/// `file lengths`, `have` (bitfield bytes, wire order), `info hash`, `piece count`, `piece length`,
/// `version`. `epoch` names the journal generation that continues this snapshot. Everything but `have`
/// and `file identities` must match the torrent, or the snapshot is not used.
struct ResumeSnapshot: Equatable {
    /// 2: file identities added (version 1 lived in the output folder and is never read).
    static let currentVersion = 2

    var epoch: UInt64
    var infoHash: [UInt8]
    var pieceCount: Int
    var pieceLength: Int
    var fileLengths: [Int64]
    var have: Bitfield
    /// Per file (torrent order), what it looked like when recorded; nil: not recorded.
    var fileIdentities: [FileIdentity?]

    init(info: TorrentInfo, epoch: UInt64, have: Bitfield, fileIdentities: [FileIdentity?]? = nil) {
        self.epoch = epoch
        self.infoHash = info.infoHash.bytes
        self.pieceCount = info.pieceCount
        self.pieceLength = info.pieceLength
        self.fileLengths = info.files.map(\.length)
        self.have = have
        self.fileIdentities = fileIdentities ?? Array(repeating: nil, count: info.files.count)
    }

    func encoded() -> [UInt8] {
        var out = BencodeWriter()
        // Keys in byte order, as bencode requires.
        out.dictionary {
            $0.key("epoch"); $0.integer(Int64(epoch))
            $0.key("file identities")
            $0.bytes(fileIdentities.flatMap { $0?.encoded() ?? Array(repeating: 0, count: FileIdentity.encodedSize) })
            $0.key("file lengths"); $0.list(fileLengths)
            $0.key("have"); $0.bytes(have.bytes)
            $0.key("info hash"); $0.bytes(infoHash)
            $0.key("piece count"); $0.integer(Int64(pieceCount))
            $0.key("piece length"); $0.integer(Int64(pieceLength))
            $0.key("version"); $0.integer(Int64(Self.currentVersion))
        }
        return out.output
    }

    /// Parses a snapshot; the error text says what was wrong (it becomes the "why we recheck" reason).
    static func decode(_ encoded: [UInt8]) throws(ResumeSnapshotError) -> ResumeSnapshot {
        var reader = BencodeReader(encoded)
        guard let value = reader.readDocument(), case let .dictionary(fields) = value else {
            throw ResumeSnapshotError("not a bencoded dictionary")
        }
        func integerField(_ key: String) throws(ResumeSnapshotError) -> Int64 {
            guard case let .integer(value)? = fields[key] else { throw ResumeSnapshotError("missing integer \"\(key)\"") }
            return value
        }
        func bytesField(_ key: String) throws(ResumeSnapshotError) -> [UInt8] {
            guard case let .bytes(value)? = fields[key] else { throw ResumeSnapshotError("missing byte string \"\(key)\"") }
            return value
        }
        let version = try integerField("version")
        guard version == Int64(currentVersion) else { throw ResumeSnapshotError("unsupported version \(version)") }
        let epoch = try integerField("epoch"), pieceCount = try integerField("piece count"), pieceLength = try integerField("piece length")
        guard epoch >= 0, pieceCount >= 0, pieceCount <= Int64(Int32.max), pieceLength > 0, pieceLength <= Int64(Int32.max) else {
            throw ResumeSnapshotError("epoch, piece count or piece length out of range")
        }
        guard case let .list(lengthValues)? = fields["file lengths"] else { throw ResumeSnapshotError("missing list \"file lengths\"") }
        var fileLengths: [Int64] = []
        for case let .integer(length) in lengthValues { fileLengths.append(length) }
        guard fileLengths.count == lengthValues.count else { throw ResumeSnapshotError("\"file lengths\" holds a non-integer") }
        guard let have = Bitfield(count: Int(pieceCount), wireBytes: try bytesField("have")) else {
            throw ResumeSnapshotError("\"have\" does not fit \(pieceCount) pieces")
        }
        let infoHash = try bytesField("info hash")
        guard infoHash.count == InfoHash.byteCount else { throw ResumeSnapshotError("\"info hash\" is not 20 bytes") }
        let identityBytes = try bytesField("file identities")
        guard identityBytes.count == fileLengths.count * FileIdentity.encodedSize else {
            throw ResumeSnapshotError("\"file identities\" does not hold one record per file")
        }
        let identities = stride(from: 0, to: identityBytes.count, by: FileIdentity.encodedSize).map {
            FileIdentity.decode(identityBytes[$0..<($0 + FileIdentity.encodedSize)])
        }
        return ResumeSnapshot(epoch: UInt64(epoch), infoHash: infoHash, pieceCount: Int(pieceCount),
                              pieceLength: Int(pieceLength), fileLengths: fileLengths, have: have,
                              fileIdentities: identities)
    }

    private init(epoch: UInt64, infoHash: [UInt8], pieceCount: Int, pieceLength: Int, fileLengths: [Int64], have: Bitfield,
                 fileIdentities: [FileIdentity?]) {
        self.epoch = epoch
        self.infoHash = infoHash
        self.pieceCount = pieceCount
        self.pieceLength = pieceLength
        self.fileLengths = fileLengths
        self.have = have
        self.fileIdentities = fileIdentities
    }

    /// Why this snapshot does not describe `info`, or nil when it does.
    func mismatch(with info: TorrentInfo) -> String? {
        if infoHash != info.infoHash.bytes { return "it belongs to info hash \(HexCoding.encode(infoHash))" }
        if pieceCount != info.pieceCount { return "it records \(pieceCount) pieces, the torrent has \(info.pieceCount)" }
        if pieceLength != info.pieceLength { return "it records piece length \(pieceLength), the torrent's is \(info.pieceLength)" }
        if fileLengths != info.files.map(\.length) { return "its file lengths differ from the torrent's" }
        return nil
    }
}

struct ResumeSnapshotError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Minimal bencode (Storage does not depend on the Bencode module; the snapshot needs only this)

private enum BencodeValue {
    case integer(Int64)
    case bytes([UInt8])
    case list([BencodeValue])
    case dictionary([String: BencodeValue])
}

private struct BencodeWriter {
    var output: [UInt8] = []

    mutating func integer(_ value: Int64) { output += Array("i\(value)e".utf8) }
    mutating func bytes(_ value: [UInt8]) { output += Array("\(value.count):".utf8); output += value }
    mutating func key(_ key: String) { bytes(Array(key.utf8)) }
    mutating func list(_ values: [Int64]) {
        output.append(UInt8(ascii: "l"))
        for value in values { integer(value) }
        output.append(UInt8(ascii: "e"))
    }
    mutating func dictionary(_ fill: (inout BencodeWriter) -> Void) {
        output.append(UInt8(ascii: "d"))
        fill(&self)
        output.append(UInt8(ascii: "e"))
    }
}

/// Strict enough for our own files: rejects truncation, trailing bytes and absurd nesting.
private struct BencodeReader {
    private let input: [UInt8]
    private var position = 0

    init(_ input: [UInt8]) { self.input = input }

    mutating func readDocument() -> BencodeValue? {
        guard let value = readValue(depth: 0), position == input.count else { return nil }
        return value
    }

    private mutating func readValue(depth: Int) -> BencodeValue? {
        guard depth < 8, position < input.count else { return nil }
        switch input[position] {
        case UInt8(ascii: "i"):
            position += 1
            guard let value = readInteger(until: UInt8(ascii: "e")) else { return nil }
            return .integer(value)
        case UInt8(ascii: "l"):
            position += 1
            var items: [BencodeValue] = []
            while position < input.count, input[position] != UInt8(ascii: "e") {
                guard let item = readValue(depth: depth + 1) else { return nil }
                items.append(item)
            }
            guard position < input.count else { return nil }
            position += 1
            return .list(items)
        case UInt8(ascii: "d"):
            position += 1
            var fields: [String: BencodeValue] = [:]
            while position < input.count, input[position] != UInt8(ascii: "e") {
                guard let key = readBytes(), let value = readValue(depth: depth + 1) else { return nil }
                fields[String(decoding: key, as: UTF8.self)] = value
            }
            guard position < input.count else { return nil }
            position += 1
            return .dictionary(fields)
        default:
            return readBytes().map(BencodeValue.bytes)
        }
    }

    private mutating func readBytes() -> [UInt8]? {
        guard let length = readInteger(until: UInt8(ascii: ":")), length >= 0,
              length <= Int64(input.count - position) else { return nil }
        let value = Array(input[position..<(position + Int(length))])
        position += Int(length)
        return value
    }

    private mutating func readInteger(until terminator: UInt8) -> Int64? {
        var digits: [UInt8] = []
        while position < input.count, input[position] != terminator {
            digits.append(input[position])
            position += 1
        }
        guard position < input.count, digits.count <= 20 else { return nil }
        position += 1
        return Int64(String(decoding: digits, as: UTF8.self))
    }
}
