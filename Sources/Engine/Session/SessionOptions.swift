import Storage
import TorrentModel

/// What to download and from where.
public enum TorrentSource: Sendable {
    case metainfo(Metainfo)
    case magnet(MagnetLink)

    public var infoHash: InfoHash {
        switch self {
        case .metainfo(let m): return m.infoHash
        case .magnet(let m): return m.infoHash
        }
    }
}

/// Per-torrent choices, as the CLI, the daemon and the RPC set them.
public struct SessionOptions: Sendable {
    /// Files land in `outputDirectory/<torrent name>`.
    public var outputDirectory: String
    /// Burrow's own files for this torrent (resume data in `<stateDirectory>/resume/`); never inside
    /// the payload (see `StateDirectory`). nil: no resume data is kept, and existing files are rechecked.
    public var stateDirectory: String?
    /// Keep seeding after completion.
    public var seed: Bool
    /// Stop seeding once uploaded/size reaches this (nil: no limit).
    public var seedRatioLimit: Double?
    /// Verify every piece on disk instead of trusting resume data.
    public var forceRecheck: Bool
    /// Per-file priority by file index; files not listed are `.normal`.
    public var filePriorities: [Int: FilePriority]
    public var maxPeers: Int
    /// Bytes per second; nil means unlimited.
    public var downloadRateLimit: Int?
    public var uploadRateLimit: Int?
    /// Peers to contact directly (magnet `x.pe`, or given by the user).
    public var extraPeers: [PeerAddress]
    /// Wraps the torrent's file storage (rqbit-style middleware): tests put a slow, failing or counting
    /// disk under a real session with it. nil: the files are used directly.
    public var storageMiddleware: (@Sendable (any PieceStorage) -> any PieceStorage)?

    public init(outputDirectory: String, stateDirectory: String? = nil, seed: Bool = false, seedRatioLimit: Double? = nil,
                forceRecheck: Bool = false, filePriorities: [Int: FilePriority] = [:], maxPeers: Int = 80,
                downloadRateLimit: Int? = nil, uploadRateLimit: Int? = nil, extraPeers: [PeerAddress] = [],
                storageMiddleware: (@Sendable (any PieceStorage) -> any PieceStorage)? = nil) {
        self.outputDirectory = outputDirectory
        self.stateDirectory = stateDirectory
        self.seed = seed
        self.seedRatioLimit = seedRatioLimit
        self.forceRecheck = forceRecheck
        self.filePriorities = filePriorities
        self.maxPeers = maxPeers
        self.downloadRateLimit = downloadRateLimit
        self.uploadRateLimit = uploadRateLimit
        self.extraPeers = extraPeers
        self.storageMiddleware = storageMiddleware
    }
}

public enum FilePriority: Int, Sendable, Comparable {
    case skip = 0, normal = 1, high = 2
    public static func < (a: FilePriority, b: FilePriority) -> Bool { a.rawValue < b.rawValue }
}

/// A snapshot of one torrent for progress displays and APIs.
public struct TorrentStatus: Sendable {
    public enum State: Sendable, Equatable {
        case fetchingMetadata
        case checking(done: Int, of: Int)
        case downloading
        case seeding
        case complete          // all wanted data verified, not seeding
        case stopped
        case failed(String)
    }

    public var name: String
    public var infoHash: InfoHash
    public var state: State
    /// Bytes of wanted pieces verified, and the wanted total (0 while metadata is unknown).
    public var verifiedBytes: Int64
    public var wantedBytes: Int64
    public var piecesHad: Int
    public var pieceCount: Int
    public var downloadRate: Int
    public var uploadRate: Int
    public var downloadedTotal: Int64
    public var uploadedTotal: Int64
    public var connectedPeers: Int
    public var connectedSeeds: Int
    public var knownPeers: Int
    public var hashFailures: Int
    /// Addresses refused right now (bans expire).
    public var bannedPeers: Int
    /// Connections closed because the peer misbehaved (junk, protocol violations, bad data).
    public var peersCutOff: Int = 0
    /// Bytes peers sent that served nothing: unrequested blocks, redundant or unknown messages.
    public var wastedBytes: Int64 = 0
    /// Magnet metadata attempts that failed the info hash.
    public var metadataFailures: Int = 0
    /// Latest tracker problem or warning, for display.
    public var trackerMessage: String?
    /// "wg0 down since 16:02:11 (carrier lost)" while no bound interface is usable.
    public var waitingForTunnel: String?
    /// Downloaded bytes not yet written, and whether reading from peers is paused until the disk catches up.
    public var diskBacklog: Int = 0
    public var waitingForDisk: Bool = false

    public var fractionDone: Double {
        wantedBytes == 0 ? 0 : Double(verifiedBytes) / Double(wantedBytes)
    }

    /// Seconds to completion at the current rate, nil when unknown.
    public var eta: Int? {
        guard downloadRate > 0, wantedBytes > 0 else { return nil }
        return Int((wantedBytes - verifiedBytes) / Int64(downloadRate))
    }
}
