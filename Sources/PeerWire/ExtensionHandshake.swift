import Bencode
import NIOCore

/// The BEP 10 extension handshake: the payload of `extended` message id 0.
///
/// Decoding is tolerant of unknown keys and unsorted dictionaries (clients add fields freely) but
/// strict about the known keys: a known key of the wrong kind or out of range is an error.
public struct ExtensionHandshake: Equatable, Sendable {
    /// Extension name → the id the sender wants to receive that extension's messages under.
    /// Id 0 means the sender disables that extension.
    public var m: [String: UInt8]
    /// `p`: the sender's TCP listen port.
    public var port: UInt16?
    /// `v`: client name and version.
    public var client: String?
    /// `yourip`: the address the sender sees us at, 4 or 16 bytes.
    public var yourIP: [UInt8]?
    /// `ipv4`: the sender's own IPv4 address, 4 bytes.
    public var ipv4: [UInt8]?
    /// `ipv6`: the sender's own IPv6 address, 16 bytes.
    public var ipv6: [UInt8]?
    /// `reqq`: how many outstanding requests the sender accepts.
    public var requestQueueLength: Int?
    /// `metadata_size` (BEP 9): size in bytes of the info dictionary.
    public var metadataSize: Int?
    /// `upload_only` (BEP 21): the sender is a seed or partial seed and will not download.
    public var uploadOnly: Bool

    public init(
        m: [String: UInt8] = [:], port: UInt16? = nil, client: String? = nil, yourIP: [UInt8]? = nil,
        ipv4: [UInt8]? = nil, ipv6: [UInt8]? = nil, requestQueueLength: Int? = nil, metadataSize: Int? = nil,
        uploadOnly: Bool = false
    ) {
        self.m = m
        self.port = port
        self.client = client
        self.yourIP = yourIP
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.requestQueueLength = requestQueueLength
        self.metadataSize = metadataSize
        self.uploadOnly = uploadOnly
    }

    /// The id under which to send messages of extension `name` to the sender; nil when the sender
    /// does not support it or has disabled it.
    public func messageID(for name: String) -> UInt8? {
        guard let id = m[name], id != 0 else { return nil }
        return id
    }

    static let messageName = "extension handshake"

    public func encode() -> [UInt8] {
        var entries: [BKey: BValue] = [:]
        entries["m"] = .dictionary(Dictionary(uniqueKeysWithValues: m.map { (BKey($0.key), .integer(Int64($0.value))) }))
        if let port { entries["p"] = .integer(Int64(port)) }
        if let client { entries["v"] = .string(client) }
        if let yourIP { entries["yourip"] = .bytes(yourIP) }
        if let ipv4 { entries["ipv4"] = .bytes(ipv4) }
        if let ipv6 { entries["ipv6"] = .bytes(ipv6) }
        if let requestQueueLength { entries["reqq"] = .integer(Int64(requestQueueLength)) }
        if let metadataSize { entries["metadata_size"] = .integer(Int64(metadataSize)) }
        if uploadOnly { entries["upload_only"] = .integer(1) }
        return Bencode.encode(.dictionary(entries))
    }

    public static func decode(_ payload: ByteBuffer) throws -> ExtensionHandshake {
        try decode(bytes: payload.readableBytesView)
    }

    public static func decode(_ payload: [UInt8]) throws -> ExtensionHandshake {
        try decode(bytes: payload)
    }

    private static func decode(bytes: some Collection<UInt8>) throws -> ExtensionHandshake {
        let reader = try ExtensionDictionaryReader(message: messageName, payload: bytes)
        var handshake = ExtensionHandshake()
        if let m = try reader.dictionary("m") {
            // In wire (bytewise key) order, not the dictionary's: its iteration order differs from one
            // decode to the next, and the same bytes must always give the same handshake or the same error
            // (which bad entry is named; which of two names that compare equal as text wins).
            for (key, value) in m.sorted(by: { $0.key < $1.key }) {
                // Names are ASCII in practice; a name we cannot read is one we cannot support.
                guard let name = key.string else { continue }
                guard let id = value.int else {
                    throw reader.error(.wrongType(key: "m.\(name)", expected: "integer", found: value.kindName))
                }
                guard let byte = UInt8(exactly: id) else {
                    throw reader.error(.invalidValue(key: "m.\(name)", reason: "is \(id), expected 0...255"))
                }
                handshake.m[name] = byte
            }
        }
        handshake.port = try reader.integer("p", in: UInt16.min...UInt16.max)
        // Client names are display text; a client that sends Latin-1 still gets a readable name.
        handshake.client = try reader.bytes("v").map { String(decoding: $0, as: UTF8.self) }
        handshake.yourIP = try reader.bytes("yourip", lengths: [4, 16])
        handshake.ipv4 = try reader.bytes("ipv4", lengths: [4])
        handshake.ipv6 = try reader.bytes("ipv6", lengths: [16])
        handshake.requestQueueLength = try reader.integer("reqq", in: 0...Int.max)
        handshake.metadataSize = try reader.integer("metadata_size", in: 0...Int.max)
        handshake.uploadOnly = try reader.integer("upload_only").map { $0 != 0 } ?? false
        return handshake
    }
}
