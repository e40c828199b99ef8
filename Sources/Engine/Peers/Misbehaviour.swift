import NIOCore

/// Ways a peer breaks the rules, and what each costs it (see `TorrentSession.peerMisbehaved`).
enum Misbehaviour: CustomStringConvertible {
    /// The byte stream or a message broke the protocol so that the connection cannot go on (a decoding
    /// error, a second handshake, a bitfield of the wrong size). Closes the connection; a strike.
    case brokenStream(String)
    /// An invalid message the connection survives (a have beyond the piece count, a request out of range,
    /// requests beyond our `reqq`, a reject without the Fast extension, a bad extension message). A strike.
    case violation(String)
    /// Blocks we never asked for, beyond `PeerConduct.unrequestedAllowance`. Banned at once.
    case unrequestedData(bytes: Int)
    /// Bytes that served nothing, beyond `PeerConduct.wasteAllowance` and most of what it sent. Banned at once.
    case wastedBandwidth(bytes: Int)
    /// Metadata (BEP 9) that failed the info hash or cannot be the torrent's. Banned at once.
    case badMetadata(String)

    /// Strikes within `PeerBans.violationMemory` that get an address banned.
    static let strikesBeforeBan = 3
    /// How long a misbehaving address is refused (hash failures have their own, see `countHashFailure`).
    static let banDuration = TimeAmount.minutes(30)

    /// Whether the connection survives (for strikes below `strikesBeforeBan`).
    var closesConnection: Bool {
        if case .violation = self { return false }
        return true
    }

    /// Whether the address is banned at once rather than after `strikesBeforeBan` strikes.
    var bansAtOnce: Bool {
        switch self {
        case .brokenStream, .violation: return false
        case .unrequestedData, .wastedBandwidth, .badMetadata: return true
        }
    }

    /// One fixed key per kind, for the rate-limited log.
    var kind: String {
        switch self {
        case .brokenStream: return "broken stream"
        case .violation: return "protocol violation"
        case .unrequestedData: return "unrequested data"
        case .wastedBandwidth: return "wasted bandwidth"
        case .badMetadata: return "bad metadata"
        }
    }

    var description: String {
        switch self {
        case .brokenStream(let why), .violation(let why): return "\(kind): \(why)"
        case .unrequestedData(let bytes): return "\(bytes) bytes of blocks we never asked for"
        case .wastedBandwidth(let bytes): return "\(bytes) bytes of messages that served nothing"
        case .badMetadata(let why): return "\(kind): \(why)"
        }
    }
}

/// One connection's tally of junk, with the allowances past which the peer is cut off.
///
/// Useful bytes are blocks we asked for; wasted ones are unrequested blocks and messages that carry
/// nothing new (a have for a piece already announced, a repeated bitfield, an extension message we
/// never advertised).
struct PeerConduct {
    /// Blocks arriving after we released or cancelled them are normal (they crossed our message);
    /// those are not counted here. Beyond this many bytes of truly unrequested blocks, the peer goes.
    static let unrequestedAllowance = 256 * 1024
    /// Waste is tolerated up to this many bytes, and beyond that while it stays below the useful bytes.
    static let wasteAllowance = 4 << 20

    private(set) var unrequestedBytes = 0
    private(set) var wastedBytes = 0
    private(set) var usefulBytes = 0

    mutating func useful(_ bytes: Int) { usefulBytes += bytes }

    /// A block we never asked for: wasted, and cut off past `unrequestedAllowance`.
    mutating func unrequestedBlock(_ bytes: Int) -> Misbehaviour? {
        unrequestedBytes += bytes
        wastedBytes += bytes
        return unrequestedBytes > Self.unrequestedAllowance ? .unrequestedData(bytes: unrequestedBytes) : nil
    }

    /// A message (of `bytes` on the wire) that carried nothing.
    mutating func wasted(_ bytes: Int) -> Misbehaviour? {
        wastedBytes += bytes
        return wastedBytes > Self.wasteAllowance && wastedBytes > usefulBytes ? .wastedBandwidth(bytes: wastedBytes) : nil
    }
}
