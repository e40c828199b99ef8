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
    var extensionIDs: [String: UInt8] = [:]   // the peer's ids for extension names it supports
    var listenPort: UInt16?                    // from its extension handshake (incoming peers)
    var clientName: String?
    var requestQueueLimit = 250                // its `reqq`, or a common default
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
    /// have/bitfield received before the metadata told us the piece count (magnet downloads).
    var earlyHaveAll = false
    var earlyBitfield: [UInt8]?
    var earlyHaves: [UInt32] = []
    var allowedFast: Set<Int> = []

    /// Our requests in flight to this peer. Invariant: same blocks the picker lists for this peer.
    var outstanding: Set<BlockRequest> = []
    /// Requests we cancelled (endgame duplicates): BEP 6 peers answer a cancel with the block or a reject.
    var cancelled: Set<BlockRequest> = []
    var lastBlockAt: NIODeadline
    /// How many requests we keep in flight; adapted each second to the rate it delivers.
    var queueDepth = 64

    /// The peer's requests we have accepted but not yet served (upload).
    var uploadQueue: [BlockRequest] = []
    var servingUpload = false

    var downloadRate = RateMeter()
    var uploadRate = RateMeter()
    var lastMessageAt: NIODeadline
    var lastSentAt: NIODeadline
    var lastPexSentPeers: Set<PeerAddress> = []
    var metadataRequestsInFlight: Set<Int> = []

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
