/// A domain name as a list of labels. Compared case-insensitively (ASCII), as DNS requires.
public struct DNSName: Sendable, Hashable, CustomStringConvertible {
    public let labels: [[UInt8]]

    static let maximumWireLength = 255
    static let maximumLabelLength = 63

    init(labels: [[UInt8]]) {
        self.labels = labels
    }

    /// Parses a host name ("tracker.example.org", trailing dot allowed). ASCII only: IDNs must arrive as
    /// punycode ("xn--…").
    public init(parsing text: String) throws(DNSNameError) {
        var name = Substring(text)
        if name.hasSuffix(".") { name = name.dropLast() }
        guard !name.isEmpty else { throw DNSNameError(name: text, reason: "the name is empty") }
        var labels: [[UInt8]] = []
        for part in name.split(separator: ".", omittingEmptySubsequences: false) {
            let bytes = Array(part.utf8)
            guard !bytes.isEmpty else { throw DNSNameError(name: text, reason: "it has an empty label") }
            guard bytes.count <= Self.maximumLabelLength else {
                throw DNSNameError(name: text, reason: "label \"\(part)\" is longer than 63 bytes")
            }
            if let bad = bytes.first(where: { $0 <= 0x20 || $0 >= 0x7F }) {
                throw DNSNameError(
                    name: text, reason: "it contains byte 0x\(String(bad, radix: 16)) (only ASCII names are accepted)")
            }
            labels.append(bytes)
        }
        let wireLength = labels.reduce(1) { $0 + 1 + $1.count }
        guard wireLength <= Self.maximumWireLength else {
            throw DNSNameError(name: text, reason: "it is longer than 255 bytes on the wire")
        }
        self.labels = labels
    }

    public var description: String {
        labels.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ".")
    }

    public static func == (lhs: DNSName, rhs: DNSName) -> Bool {
        lhs.labels.count == rhs.labels.count
            && zip(lhs.labels, rhs.labels).allSatisfy { a, b in
                a.count == b.count && zip(a, b).allSatisfy { lowercase($0) == lowercase($1) }
            }
    }

    public func hash(into hasher: inout Hasher) {
        for label in labels {
            hasher.combine(label.count)
            for byte in label { hasher.combine(Self.lowercase(byte)) }
        }
    }

    private static func lowercase(_ byte: UInt8) -> UInt8 {
        (0x41...0x5A).contains(byte) ? byte | 0x20 : byte
    }
}

public struct DNSNameError: Error, Equatable, CustomStringConvertible {
    public let name: String
    public let reason: String
    public var description: String { "\"\(name)\" is not a valid host name: \(reason)" }
}

/// Record types the resolver asks for or follows.
public struct DNSRecordType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let a = DNSRecordType(rawValue: 1)
    public static let cname = DNSRecordType(rawValue: 5)
    public static let aaaa = DNSRecordType(rawValue: 28)

    public var description: String {
        switch self {
        case .a: return "A"
        case .cname: return "CNAME"
        case .aaaa: return "AAAA"
        default: return "TYPE\(rawValue)"
        }
    }
}

/// DNS response codes (RFC 1035 §4.1.1).
public struct DNSResponseCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let noError = DNSResponseCode(rawValue: 0)
    public static let formatError = DNSResponseCode(rawValue: 1)
    public static let serverFailure = DNSResponseCode(rawValue: 2)
    public static let nameError = DNSResponseCode(rawValue: 3)
    public static let notImplemented = DNSResponseCode(rawValue: 4)
    public static let refused = DNSResponseCode(rawValue: 5)

    public var description: String {
        switch rawValue {
        case 0: return "NOERROR"
        case 1: return "FORMERR"
        case 2: return "SERVFAIL"
        case 3: return "NXDOMAIN"
        case 4: return "NOTIMP"
        case 5: return "REFUSED"
        default: return "RCODE\(rawValue)"
        }
    }
}

public struct DNSQuestion: Sendable, Hashable {
    public let name: DNSName
    public let type: DNSRecordType
    /// Always IN (1) for what we send.
    public let recordClass: UInt16
}

/// An answer record. Only the data the resolver uses is decoded.
public struct DNSRecord: Sendable, Hashable {
    public let name: DNSName
    public let type: DNSRecordType
    public let recordClass: UInt16
    public let ttl: UInt32
    public let data: DNSRecordData
}

public enum DNSRecordData: Sendable, Hashable {
    case ipv4([UInt8])
    case ipv6([UInt8])
    case cname(DNSName)
    /// Any other type, kept raw.
    case other([UInt8])
}

/// A decoded response: header fields, question and answer sections (authority and additional are not
/// needed to resolve addresses, and are not parsed).
public struct DNSResponse: Sendable, Hashable {
    public let id: UInt16
    public let isResponse: Bool
    public let opcode: UInt8
    public let isTruncated: Bool
    public let responseCode: DNSResponseCode
    public let questions: [DNSQuestion]
    public let answers: [DNSRecord]

    /// Addresses for `name` of `type`, following CNAMEs inside the answer section (bounded, loop-safe).
    /// Returns the addresses and the final name of the chain.
    public func addresses(for name: DNSName, type: DNSRecordType) -> (addresses: [[UInt8]], canonicalName: DNSName) {
        var target = name
        var visited: Set<DNSName> = [name]
        for _ in 0..<DNSMessageCodec.maximumCNAMEChain {
            let matches = answers.filter { $0.name == target && $0.type == type }.compactMap { record -> [UInt8]? in
                switch record.data {
                case .ipv4(let bytes) where type == .a: return bytes
                case .ipv6(let bytes) where type == .aaaa: return bytes
                default: return nil
                }
            }
            if !matches.isEmpty { return (matches, target) }
            guard let alias = answers.first(where: { $0.name == target && $0.type == .cname }),
                  case .cname(let next) = alias.data, visited.insert(next).inserted
            else { break }
            target = next
        }
        return ([], target)
    }
}

public struct DNSMessageError: Error, Equatable, CustomStringConvertible {
    public let offset: Int
    public let reason: String
    public var description: String { "malformed DNS message at byte \(offset): \(reason)" }
}

/// Encodes queries and decodes responses (RFC 1035 wire format, no EDNS).
public enum DNSMessageCodec {
    static let headerSize = 12
    /// Larger than any real answer section; bounds work on hostile input.
    static let maximumRecords = 512
    static let maximumCNAMEChain = 16
    /// Compression pointers followed per name before giving up (strictly-backwards jumps already
    /// guarantee termination; this bounds the work).
    static let maximumPointerJumps = 64

    /// A standard recursive query (RD=1) for one question, class IN.
    public static func encodeQuery(id: UInt16, name: DNSName, type: DNSRecordType) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(headerSize + 6 + name.labels.reduce(0) { $0 + 1 + $1.count })
        appendBigEndian(id, to: &bytes)
        appendBigEndian(0x0100, to: &bytes)  // QR=0, OPCODE=0, RD=1
        appendBigEndian(1, to: &bytes)       // QDCOUNT
        appendBigEndian(0, to: &bytes)       // ANCOUNT
        appendBigEndian(0, to: &bytes)       // NSCOUNT
        appendBigEndian(0, to: &bytes)       // ARCOUNT
        for label in name.labels {
            bytes.append(UInt8(label.count))
            bytes += label
        }
        bytes.append(0)
        appendBigEndian(type.rawValue, to: &bytes)
        appendBigEndian(1, to: &bytes)  // IN
        return bytes
    }

    /// The id of a message, if it is long enough to have one (to match before a full decode).
    public static func peekID(_ bytes: [UInt8]) -> UInt16? {
        bytes.count >= 2 ? UInt16(bytes[0]) << 8 | UInt16(bytes[1]) : nil
    }

    public static func decodeResponse(_ bytes: [UInt8]) throws(DNSMessageError) -> DNSResponse {
        var reader = DNSReader(bytes: bytes)
        let id = try reader.readUInt16()
        let flags = try reader.readUInt16()
        let questionCount = Int(try reader.readUInt16())
        let answerCount = Int(try reader.readUInt16())
        _ = try reader.readUInt16()  // NSCOUNT
        _ = try reader.readUInt16()  // ARCOUNT
        let isTruncated = flags & 0x0200 != 0
        guard questionCount <= 1 else {
            throw DNSMessageError(offset: 4, reason: "\(questionCount) questions (expected at most 1)")
        }
        guard answerCount <= maximumRecords else {
            throw DNSMessageError(offset: 6, reason: "\(answerCount) answers exceed the limit of \(maximumRecords)")
        }
        var questions: [DNSQuestion] = []
        for _ in 0..<questionCount {
            let name = try reader.readName()
            let type = DNSRecordType(rawValue: try reader.readUInt16())
            let recordClass = try reader.readUInt16()
            questions.append(DNSQuestion(name: name, type: type, recordClass: recordClass))
        }
        var answers: [DNSRecord] = []
        // A truncated response may stop anywhere after the question; its answers are not used anyway.
        if !isTruncated {
            for _ in 0..<answerCount {
                answers.append(try reader.readRecord())
            }
        }
        return DNSResponse(
            id: id, isResponse: flags & 0x8000 != 0, opcode: UInt8((flags >> 11) & 0xF), isTruncated: isTruncated,
            responseCode: DNSResponseCode(rawValue: UInt8(flags & 0xF)), questions: questions, answers: answers)
    }

    static func appendBigEndian(_ value: UInt16, to bytes: inout [UInt8]) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(value & 0xFF))
    }
}

/// Bounds-checked reading of a DNS message, including compressed names.
private struct DNSReader {
    let bytes: [UInt8]
    var offset = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func readUInt8() throws(DNSMessageError) -> UInt8 {
        guard offset < bytes.count else { throw DNSMessageError(offset: offset, reason: "message ends early") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func readUInt16() throws(DNSMessageError) -> UInt16 {
        let high = try readUInt8()
        return UInt16(high) << 8 | UInt16(try readUInt8())
    }

    mutating func readUInt32() throws(DNSMessageError) -> UInt32 {
        let high = try readUInt16()
        return UInt32(high) << 16 | UInt32(try readUInt16())
    }

    mutating func readBytes(_ count: Int) throws(DNSMessageError) -> [UInt8] {
        guard count <= bytes.count - offset else {
            throw DNSMessageError(offset: offset, reason: "needs \(count) bytes, \(bytes.count - offset) left")
        }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    mutating func readRecord() throws(DNSMessageError) -> DNSRecord {
        let name = try readName()
        let type = DNSRecordType(rawValue: try readUInt16())
        let recordClass = try readUInt16()
        let ttl = try readUInt32()
        let length = Int(try readUInt16())
        let start = offset
        guard length <= bytes.count - offset else {
            throw DNSMessageError(offset: offset, reason: "record data of \(length) bytes runs past the end")
        }
        let data: DNSRecordData
        switch type {
        case .a:
            guard length == 4 else { throw DNSMessageError(offset: start, reason: "A record of \(length) bytes") }
            data = .ipv4(try readBytes(4))
        case .aaaa:
            guard length == 16 else { throw DNSMessageError(offset: start, reason: "AAAA record of \(length) bytes") }
            data = .ipv6(try readBytes(16))
        case .cname:
            let target = try readName()
            guard offset == start + length else {
                throw DNSMessageError(offset: start, reason: "CNAME target does not fill its \(length)-byte record")
            }
            data = .cname(target)
        default:
            data = .other(try readBytes(length))
        }
        return DNSRecord(name: name, type: type, recordClass: recordClass, ttl: ttl, data: data)
    }

    /// Reads a possibly compressed name. Each pointer must jump strictly before every position already
    /// visited for this name, so pointer loops are impossible; the jump count and the 255-byte name limit
    /// bound the rest.
    mutating func readName() throws(DNSMessageError) -> DNSName {
        var labels: [[UInt8]] = []
        var wireLength = 1
        var cursor = offset
        var lowestVisited = offset
        var jumps = 0
        var resumeAt: Int?  // where reading continues after the first pointer
        while true {
            guard cursor < bytes.count else { throw DNSMessageError(offset: cursor, reason: "name runs past the end") }
            let length = bytes[cursor]
            switch length & 0xC0 {
            case 0x00:
                if length == 0 {
                    offset = resumeAt ?? cursor + 1
                    return DNSName(labels: labels)
                }
                let count = Int(length)
                guard cursor + 1 + count <= bytes.count else {
                    throw DNSMessageError(offset: cursor, reason: "label of \(count) bytes runs past the end")
                }
                wireLength += 1 + count
                guard wireLength <= DNSName.maximumWireLength else {
                    throw DNSMessageError(offset: cursor, reason: "name longer than 255 bytes")
                }
                labels.append(Array(bytes[(cursor + 1)..<(cursor + 1 + count)]))
                cursor += 1 + count
            case 0xC0:
                guard cursor + 1 < bytes.count else {
                    throw DNSMessageError(offset: cursor, reason: "compression pointer cut off")
                }
                let target = Int(length & 0x3F) << 8 | Int(bytes[cursor + 1])
                guard target < lowestVisited else {
                    throw DNSMessageError(
                        offset: cursor, reason: "compression pointer to \(target) does not point backwards (loop)")
                }
                jumps += 1
                guard jumps <= DNSMessageCodec.maximumPointerJumps else {
                    throw DNSMessageError(offset: cursor, reason: "too many compression pointers")
                }
                if resumeAt == nil { resumeAt = cursor + 2 }
                lowestVisited = target
                cursor = target
            default:
                throw DNSMessageError(offset: cursor, reason: "label type 0x\(String(length & 0xC0, radix: 16)) is not supported")
            }
        }
    }
}
