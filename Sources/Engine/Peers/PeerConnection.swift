import NIOCore
import PeerWire
import TorrentModel

/// Everything the session knows about one connected peer. Lives on the session's event loop only.
final class PeerConnection {
    enum Direction { case outgoing, incoming }

    let key: Int
    let channel: any Channel
    let address: PeerAddress
    let direction: Direction
    let connectedAt: NIODeadline

    // Handshake and extension state.
    var handshake: Handshake?
    /// The peer's ids for the extensions we support (`LocalExtensionIDs.all`): at most that many entries,
    /// whatever its handshake lists.
    var extensionIDs: [String: UInt8] = [:]
    var listenPort: UInt16?                    // from its extension handshake (incoming peers)
    /// Display only; at most `maxClientNameLength` bytes of what it sent.
    var clientName: String?
    static let maxClientNameLength = 64
    var requestQueueLimit = 250                // its `reqq`, or a common default
    /// Its claimed `metadata_size` (BEP 9), if valid (1...MetadataAssembler.maximumSize).
    var metadataSize: Int?
    var sentExtensionHandshake = false

    // BEP 3 state, both directions. Everyone starts choked and not interested.
    var amChoking = true
    var amInterested = false
    var peerChoking = true
    var peerInterested = false

    /// What the peer has. nil until we know the piece count (magnet) and its first have-message arrived.
    var has: Bitfield?
    var isSeed: Bool { has?.isComplete ?? false }
    /// Whether the picker counts it in its seed counter (it announced have-all or a full bitfield)
    /// rather than per piece. Must match what was reported to the picker, to undo it exactly.
    var countedAsSeed = false
    /// have/bitfield received before the metadata told us the piece count (magnet downloads); at most
    /// one bitfield's worth for the largest torrent its `metadata_size` allows (see `EarlyAvailability`).
    var early = EarlyAvailability()
    /// Pieces it lets us request while choking us (BEP 6). At most `maxAllowedFast`; more are ignored.
    var allowedFast: Set<Int> = []
    static let maxAllowedFast = 64

    /// Our requests in flight to this peer. Invariant: same blocks the picker lists for this peer.
    var outstanding: Set<BlockRequest> = []
    /// Requests we cancelled or released (endgame duplicates, a choke, a snub) whose blocks may still be
    /// on their way: such blocks are late, not unrequested. At most `maxRememberedCancels`: when full,
    /// an arbitrary old one is forgotten (its block, should it come, counts against the allowance).
    var cancelled: Set<BlockRequest> = []
    static let maxRememberedCancels = 2048
    var lastBlockAt: NIODeadline
    /// How many requests we keep in flight; adapted each second to the rate it delivers.
    var queueDepth = 64

    /// The peer's requests we have accepted but not yet served (upload). Invariant: at most
    /// `TorrentSession.advertisedRequestQueue` (our `reqq`); requests beyond it are rejected and a violation.
    var uploadQueue: [BlockRequest] = []
    var servingUpload = false

    var downloadRate = RateMeter()
    var uploadRate = RateMeter()
    var lastMessageAt: NIODeadline
    var lastSentAt: NIODeadline
    var lastPexSentPeers: Set<PeerAddress> = []
    /// Addresses taken from its PEX messages; past `maxPexAddresses`, its PEX messages are ignored.
    var pexAddressesTaken = 0
    static let maxPexAddresses = 500
    /// Metadata pieces we asked it for, with when. At most `TorrentSession.metadataRequestsPerPeer`.
    var metadataRequestsInFlight: [Int: NIODeadline] = [:]
    /// ut_metadata requests of its we answered; past the budget of `TorrentSession.metadataServeBudget`
    /// it is wasting our upload.
    var metadataRequestsServed = 0

    /// Junk it sent us, against the allowances (see `PeerConduct`).
    var conduct = PeerConduct()
    /// Set once it was cut off for misbehaving: it is closing, and counts no further.
    var cutOff = false

    /// Sizes of the per-peer state a hostile peer could try to grow, for tests and debugging.
    var footprint: PeerFootprint {
        PeerFootprint(earlyAvailabilityBytes: early.bits.count, extensionIDs: extensionIDs.count,
                      clientNameBytes: clientName?.utf8.count ?? 0, allowedFast: allowedFast.count,
                      cancelled: cancelled.count, uploadQueue: uploadQueue.count,
                      metadataRequestsInFlight: metadataRequestsInFlight.count)
    }

    init(key: Int, channel: any Channel, address: PeerAddress, direction: Direction, now: NIODeadline) {
        self.key = key
        self.channel = channel
        self.address = address
        self.direction = direction
        self.connectedAt = now
        self.lastMessageAt = now
        self.lastSentAt = now
        self.lastBlockAt = now
    }

    /// Notes a request whose block may still come although we no longer wait for it (bounded, see `cancelled`).
    func rememberCancelled(_ request: BlockRequest) {
        if cancelled.count >= Self.maxRememberedCancels { cancelled.remove(cancelled.first!) }
        cancelled.insert(request)
    }

    var supportsFast: Bool { handshake?.supportsFastExtension ?? false }
    var supportsExtensions: Bool { handshake?.supportsExtensionProtocol ?? false }

    /// The address other peers could reach it at (for PEX): its listen port when it told us one.
    var reachableAddress: PeerAddress? {
        if direction == .outgoing { return address }
        guard let port = listenPort, port != 0 else { return nil }
        return PeerAddress(ip: address.ip, port: port)
    }

    func send(_ message: PeerMessage, flush: Bool = true) {
        if flush {
            channel.writeAndFlush(PeerWireFrame.message(message), promise: nil)
        } else {
            channel.write(PeerWireFrame.message(message), promise: nil)
        }
    }

    /// Writes `messages` as one buffer (e.g. a burst of requests), not flushed.
    func send(batch messages: [PeerMessage]) {
        channel.write(PeerWireFrame.messages(messages), promise: nil)
    }

    func flush() { channel.flush() }

    func close() { channel.close(mode: .all, promise: nil) }

    /// Stops or restarts reading from the socket (disk backpressure): unread data waits in the kernel and
    /// TCP's window slows the peer down.
    func setReading(_ on: Bool) {
        channel.setOption(ChannelOptions.autoRead, value: on).whenComplete { _ in }
        if on { channel.read() }
    }
}

/// See `PeerConnection.footprint`.
struct PeerFootprint: Equatable {
    var earlyAvailabilityBytes: Int
    var extensionIDs: Int
    var clientNameBytes: Int
    var allowedFast: Int
    var cancelled: Int
    var uploadQueue: Int
    var metadataRequestsInFlight: Int
}
