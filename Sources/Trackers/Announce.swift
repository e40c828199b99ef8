import TorrentModel

/// The `event` of an announce (BEP 3). `.none` is a regular, periodic announce.
public enum AnnounceEvent: String, Sendable {
    case none, started, stopped, completed
}

/// What we tell a tracker about ourselves and one torrent.
public struct AnnounceRequest: Sendable {
    public var infoHash: InfoHash
    public var peerID: PeerID
    /// The port peers should connect to.
    public var port: UInt16
    public var uploaded: Int64
    public var downloaded: Int64
    /// Bytes still needed; the tracker counts us as a seeder when this is 0.
    public var left: Int64
    public var event: AnnounceEvent
    /// How many peers we would like back.
    public var numWant: Int
    /// Random, stable for the session: lets a tracker recognise us after our address changes.
    public var key: UInt32
    /// The `tracker id` this tracker gave us earlier, echoed back (HTTP only). `TrackerTiers` fills it in
    /// from its per-tracker state; callers using an `Announcer` directly pass it themselves.
    public var trackerID: String?

    public init(
        infoHash: InfoHash, peerID: PeerID, port: UInt16,
        uploaded: Int64 = 0, downloaded: Int64 = 0, left: Int64,
        event: AnnounceEvent = .none, numWant: Int = 200, key: UInt32, trackerID: String? = nil
    ) {
        self.infoHash = infoHash
        self.peerID = peerID
        self.port = port
        self.uploaded = uploaded
        self.downloaded = downloaded
        self.left = left
        self.event = event
        self.numWant = numWant
        self.key = key
        self.trackerID = trackerID
    }
}

/// A tracker's answer, the same shape for HTTP and UDP trackers.
public struct AnnounceResponse: Sendable, Equatable {
    /// Seconds until the next regular announce.
    public var interval: Int
    /// Seconds before which the tracker does not want to hear from us again.
    public var minInterval: Int?
    /// IPv4 and IPv6 peers merged, duplicates removed, in the tracker's order.
    public var peers: [PeerAddress]
    public var seeders: Int?
    public var leechers: Int?
    public var warning: String?
    public var trackerID: String?
    /// Our address as the tracker saw it (BEP 24), 4 or 16 bytes: the tunnel guard compares this to clear addresses.
    public var externalIP: [UInt8]?

    public init(
        interval: Int, minInterval: Int? = nil, peers: [PeerAddress] = [], seeders: Int? = nil,
        leechers: Int? = nil, warning: String? = nil, trackerID: String? = nil, externalIP: [UInt8]? = nil
    ) {
        self.interval = interval
        self.minInterval = minInterval
        self.peers = peers
        self.seeders = seeders
        self.leechers = leechers
        self.warning = warning
        self.trackerID = trackerID
        self.externalIP = externalIP
    }
}

/// One tracker, one transport. Implementations: `HTTPAnnouncer` (http, https) and `UDPAnnouncer` (udp).
public protocol Announcer: Sendable {
    /// The announce URL exactly as it was given.
    var url: String { get }
    /// Sends one announce. Throws `TrackerError` for tracker and network problems, `CancellationError` when
    /// the calling task is cancelled.
    func announce(_ request: AnnounceRequest) async throws -> AnnounceResponse
}
