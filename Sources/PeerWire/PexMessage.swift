import Bencode
import NIOCore
import TorrentModel

/// Per-peer flags of BEP 11 `added.f` / `added6.f`.
public enum PexPeerFlags {
    public static let prefersEncryption: UInt8 = 0x01
    public static let seed: UInt8 = 0x02
    public static let supportsUTP: UInt8 = 0x04
    public static let supportsHolePunch: UInt8 = 0x08
    public static let reachable: UInt8 = 0x10
}

/// A BEP 11 `ut_pex` message: peers the sender connected to or dropped since its last message.
///
/// Caps: BEP 11 allows at most 50 added and 50 dropped peers per message. `encode()` writes at most
/// `maxEncodedEntries` per list (the first ones; the rest belong in a later message). `decode` accepts
/// more than that from lenient peers but truncates each list to `maxDecodedEntries`, dropping the
/// excess, so one message cannot flood the peer list. (The frame decoder already bounds the message
/// size.)
public struct PexMessage: Equatable, Sendable {
    public static let maxEncodedEntries = 50
    public static let maxDecodedEntries = 200

    /// IPv4 peers only. Invariant after decoding: `addedFlags.count == added.count`.
    public var added: [PeerAddress]
    /// One `PexPeerFlags` byte per `added` entry.
    public var addedFlags: [UInt8]
    /// IPv6 peers only. Invariant after decoding: `added6Flags.count == added6.count`.
    public var added6: [PeerAddress]
    public var added6Flags: [UInt8]
    /// IPv4 peers only.
    public var dropped: [PeerAddress]
    /// IPv6 peers only.
    public var dropped6: [PeerAddress]

    public init(
        added: [PeerAddress] = [], addedFlags: [UInt8] = [], added6: [PeerAddress] = [],
        added6Flags: [UInt8] = [], dropped: [PeerAddress] = [], dropped6: [PeerAddress] = []
    ) {
        self.added = added
        self.addedFlags = addedFlags
        self.added6 = added6
        self.added6Flags = added6Flags
        self.dropped = dropped
        self.dropped6 = dropped6
    }

    static let messageName = "ut_pex"

    /// Entries of the wrong address family for their list are left out; missing flags are sent as 0.
    public func encode() -> [UInt8] {
        var entries: [BKey: BValue] = [:]
        func put(_ key: BKey, _ peers: [PeerAddress], ipv6: Bool, flags: [UInt8]?, flagsKey: BKey?) {
            let kept = zip(peers.indices, peers).filter { $0.1.isIPv6 == ipv6 }.prefix(Self.maxEncodedEntries)
            entries[key] = .bytes(kept.flatMap { $0.1.compact })
            if let flags, let flagsKey {
                entries[flagsKey] = .bytes(kept.map { flags.indices.contains($0.0) ? flags[$0.0] : 0 })
            }
        }
        put("added", added, ipv6: false, flags: addedFlags, flagsKey: "added.f")
        put("added6", added6, ipv6: true, flags: added6Flags, flagsKey: "added6.f")
        put("dropped", dropped, ipv6: false, flags: nil, flagsKey: nil)
        put("dropped6", dropped6, ipv6: true, flags: nil, flagsKey: nil)
        return Bencode.encode(.dictionary(entries))
    }

    public static func decode(_ payload: ByteBuffer) throws -> PexMessage {
        try decode(bytes: payload.readableBytesView)
    }

    public static func decode(_ payload: [UInt8]) throws -> PexMessage {
        try decode(bytes: payload)
    }

    private static func decode(bytes: some Collection<UInt8>) throws -> PexMessage {
        let reader = try ExtensionDictionaryReader(message: messageName, payload: bytes)
        let (added, addedFlags) = try peers(reader, "added", ipv6: false, flagsKey: "added.f")
        let (added6, added6Flags) = try peers(reader, "added6", ipv6: true, flagsKey: "added6.f")
        let (dropped, _) = try peers(reader, "dropped", ipv6: false, flagsKey: nil)
        let (dropped6, _) = try peers(reader, "dropped6", ipv6: true, flagsKey: nil)
        return PexMessage(
            added: added, addedFlags: addedFlags, added6: added6, added6Flags: added6Flags,
            dropped: dropped, dropped6: dropped6)
    }

    /// One compact peer list, truncated to `maxDecodedEntries`, with its flags when `flagsKey` is given.
    /// Flags whose count does not match the peers cannot be attributed and are read as 0.
    private static func peers(
        _ reader: ExtensionDictionaryReader, _ key: String, ipv6: Bool, flagsKey: String?
    ) throws -> ([PeerAddress], [UInt8]) {
        guard let compact = try reader.bytes(key) else { return ([], []) }
        let stride = ipv6 ? 18 : 6
        guard compact.count % stride == 0 else {
            throw reader.error(.invalidValue(
                key: key, reason: "has length \(compact.count), which is not a multiple of \(stride)"))
        }
        let count = min(compact.count / stride, maxDecodedEntries)
        let peers = PeerAddress.parseCompact(Array(compact.prefix(count * stride)), ipv6: ipv6)!
        guard let flagsKey else { return (peers, []) }
        let flags = try reader.bytes(flagsKey) ?? []
        let aligned = flags.count == compact.count / stride
            ? Array(flags.prefix(count)) : [UInt8](repeating: 0, count: count)
        return (peers, aligned)
    }
}
