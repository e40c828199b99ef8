/// A parsed .torrent file (BEP 3, BEP 12 announce-list).
public struct Metainfo: Sendable {
    public let info: TorrentInfo
    /// Tracker tiers (BEP 12). A lone `announce` becomes one tier of one URL.
    public let announceTiers: [[String]]
    public let comment: String?
    public let createdBy: String?
    public let creationDate: Int64?

    public init(info: TorrentInfo, announceTiers: [[String]], comment: String? = nil,
                createdBy: String? = nil, creationDate: Int64? = nil) {
        self.info = info
        self.announceTiers = announceTiers
        self.comment = comment
        self.createdBy = createdBy
        self.creationDate = creationDate
    }

    public var infoHash: InfoHash { info.infoHash }
}

/// A `magnet:` URI (BEP 9): enough to find peers and fetch the info dictionary from them.
public struct MagnetLink: Sendable, Equatable {
    public let infoHash: InfoHash
    public let displayName: String?
    /// `tr` parameters, each its own tier, in order.
    public let trackers: [String]
    /// `x.pe` parameters: peer addresses to contact directly ("ip:port" or "[ipv6]:port").
    public let peers: [String]

    public init(infoHash: InfoHash, displayName: String?, trackers: [String], peers: [String]) {
        self.infoHash = infoHash
        self.displayName = displayName
        self.trackers = trackers
        self.peers = peers
    }
}
