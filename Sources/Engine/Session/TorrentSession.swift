import Logging
import NIOCore
import NIOPosix
import PeerWire
import Sockets
import Storage
import TorrentModel
import Trackers

/// One torrent: its peers, piece picker, storage and trackers.
///
/// Concurrency: every mutable property is read and written only on `eventLoop`. All of this torrent's
/// peer channels live on the same loop, so their events reach the session without a hop; entry points
/// called from elsewhere (`start`, `status`, `stop`) hop onto the loop first. That confinement is what
/// makes the `@unchecked Sendable` sound.
final class TorrentSession: @unchecked Sendable {
    let eventLoop: any EventLoop
    let infoHash: InfoHash
    let sockets: SocketFactory
    let threadPool: NIOThreadPool
    let options: SessionOptions
    let listenPort: UInt16
    /// Peer sockets of every torrent together, against the process's descriptor budget.
    let connectionBudget: ConnectionBudget
    var logger: Logger

    /// Rotated when the address the swarm sees us at changes (state hygiene).
    var peerID = PeerID.random()
    var ourHandshake: Handshake { .ours(infoHash: infoHash, peerID: peerID) }

    // MARK: Metadata
    /// Known from the .torrent, or once BEP 9 metadata arrived and hashed to `infoHash`.
    var info: TorrentInfo?
    var displayName: String
    /// Assembles the info dictionary of a magnet from peers, some of whom may lie (see `MetadataFetch`).
    var metadataFetch: MetadataFetch
    /// Attempts that failed the info hash.
    var metadataFailures = 0
    /// The IP of every peer whose metadata pieces we took, so a liar proven after it left is still banned.
    /// At most `PeerBans.capacity` entries; emptied once the metadata arrived.
    var metadataSenders: [Int: [UInt8]] = [:]
    var metadataLog = RateLimitedLog()
    let trackerTiers: [[String]]
    var trackers: TrackerTiers?

    // MARK: Pieces
    var picker: PiecePicker?
    /// Verified pieces. Invariant: a bit is set only after the piece's bytes were written and its SHA-1 matched.
    var have: Bitfield?
    var storage: (any PieceStorage)?
    var resume: ResumeStore?
    /// Where arriving blocks go: written and hashed on a disk thread, one piece's verdict at a time
    /// (see `PieceWriter`). Set with `storage`.
    var writer: PieceWriter?
    /// Bytes handed to `writer` and not yet written. Invariant: `readingPaused` is set when this passed
    /// `diskBacklogHigh` and cleared once it fell below `diskBacklogLow`; while set, no peer channel reads,
    /// which bounds memory when the disk is slower than the network (TCP then slows the senders).
    var diskBacklog = 0
    var readingPaused = false
    /// How often and how long reads waited for the disk (reported when the download completes).
    var diskPauses = 0
    var diskPausedSince: NIODeadline?
    var diskPausedTotal = TimeAmount.zero
    static let diskBacklogHigh = 1 << 20
    static let diskBacklogLow = 512 << 10
    /// Bytes of the pieces the picker fetches (not `.skip`); set when the pieces are installed.
    var wantedBytes: Int64 = 0
    var hashFailures = 0
    /// Pieces verified by downloading in this run (not found on disk at start).
    var verifiedThisSession = 0

    // MARK: Peers
    var peers: [Int: PeerConnection] = [:]
    var nextPeerKey = 1
    var candidates = PeerCandidates()
    /// Addresses being dialled, or connected and awaiting their handshake. Invariant: disjoint from the
    /// addresses of `peers`; at most `maxConnectsInFlight` (and only while the client's `ConnectionBudget`
    /// granted each a half-open slot); each leaves within the connect plus the handshake timeout.
    var connecting: Set<PeerAddress> = []
    /// Hash failures each IP was involved in. Bounded by `PeerBans.capacity` (cleared when it passes).
    var failuresByIP: [[UInt8]: Int] = [:]
    /// Peers cut off for misbehaving, and the bytes peers sent that served nothing (see `PeerConduct`).
    var misbehaviourDisconnects = 0
    var wastedBytes: Int64 = 0
    /// One line per kind of misbehaviour per 30 s at the default log level.
    var misbehaviourLog = RateLimitedLog()
    var choker = Choker()
    var downloadLimiter: TokenBucket
    var uploadLimiter: TokenBucket
    var downloadRate = RateMeter()
    var uploadRate = RateMeter()
    var trackerMessage: String?

    // MARK: Tunnel
    /// Set while no bound interface is usable: nothing is announced or dialled until it clears.
    var tunnelWait: TunnelWait?
    /// When the tunnel last came back, until the first block after it arrives (for "resumed in").
    var resumeStartedAt: NIODeadline?
    /// Called with every external address a peer (`yourip`) or tracker (`external ip`) reports.
    var onExternalAddress: (@Sendable (_ ip: [UInt8], _ reporter: String) -> Void)?

    // MARK: Lifecycle
    var state: TorrentStatus.State
    var isStopping = false
    var tick: RepeatedTask?
    var ticks = 0
    var announceTask: Scheduled<Void>?
    var nextAnnounceEvent: AnnounceEvent = .started
    var announcing = false
    var announceFailures = 0
    /// Bumped when the tunnel goes: answers to announces sent before describe a path that is gone.
    var announceGeneration = 0
    let completion: EventLoopPromise<Void>
    let announceKey = UInt32.random(in: .min ... .max)

    init(source: TorrentSource, options: SessionOptions, listenPort: UInt16, sockets: SocketFactory,
         connectionBudget: ConnectionBudget, threadPool: NIOThreadPool, eventLoop: any EventLoop, logger: Logger) {
        self.eventLoop = eventLoop
        self.infoHash = source.infoHash
        self.sockets = sockets
        self.threadPool = threadPool
        self.options = options
        self.listenPort = listenPort
        self.connectionBudget = connectionBudget
        var logger = logger
        logger[metadataKey: "torrent"] = "\(source.infoHash.hex.prefix(8))"
        self.logger = logger
        self.completion = eventLoop.makePromise()
        self.metadataFetch = MetadataFetch(infoHash: source.infoHash)
        self.downloadLimiter = TokenBucket(bytesPerSecond: options.downloadRateLimit)
        self.uploadLimiter = TokenBucket(bytesPerSecond: options.uploadRateLimit)
        switch source {
        case .metainfo(let metainfo):
            self.info = metainfo.info
            self.displayName = metainfo.info.name
            self.trackerTiers = metainfo.announceTiers
            self.state = .checking(done: 0, of: metainfo.info.pieceCount)
        case .magnet(let magnet):
            self.displayName = magnet.displayName ?? magnet.infoHash.hex
            self.trackerTiers = magnet.trackers.map { [$0] }
            self.state = .fetchingMetadata
        }
        if info?.isPrivate != true {
            for peer in options.extraPeers { candidates.add(peer, source: .user, learnedVia: nil, now: .now()) }
        }
    }

    var isPrivate: Bool { info?.isPrivate ?? false }

    // MARK: - Start / stop

    /// Checks existing data (resume data or a recheck), then starts trackers and peers.
    func start() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            let prepared: EventLoopFuture<Void> = self.info.map { self.prepareStorage(for: $0) } ?? self.eventLoop.makeSucceededVoidFuture()
            return prepared.map {
                self.trackers = self.trackerTiers.isEmpty ? nil
                    : TrackerTiers(tiers: self.trackerTiers, sockets: self.sockets, logger: self.logger)
                self.tick = self.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(200), delay: .seconds(1)) { _ in
                    self.onTick()
                }
                self.scheduleAnnounce(after: .zero)
                self.connectToCandidates()
            }
        }
    }

    /// Resolves when every wanted piece is verified (fails if the torrent fails).
    var completed: EventLoopFuture<Void> { completion.futureResult }

    /// Graceful stop: tells trackers we left (briefly), closes peers, saves resume data.
    func stop() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            guard !self.isStopping else { return self.eventLoop.makeSucceededVoidFuture() }
            self.isStopping = true
            self.tick?.cancel()
            self.announceTask?.cancel()
            for peer in self.peers.values { peer.close() }
            if case .failed = self.state {} else { self.state = .stopped }
            let announced = self.announceStopped()
            // Pieces still on their way to disk get their verdict first, so none verified is lost.
            let drained = self.writer?.flushed() ?? self.eventLoop.makeSucceededVoidFuture()
            let saved = drained.flatMap { self.saveResume() }.flatMapError { _ in self.eventLoop.makeSucceededVoidFuture() }
            return announced.and(saved).map { _ in
                self.storage?.close()
                self.completion.fail(SessionError.stopped)
            }
        }
    }

    func fail(_ message: String) {
        logger.error("\(message)")
        state = .failed(message)
        completion.fail(SessionError.failed(message))
        for peer in peers.values { peer.close() }
    }

    // MARK: - Periodic work

    func onTick() {
        guard !isStopping else { return }
        ticks += 1
        let now = NIODeadline.now()
        for peer in peers.values {
            let rate = peer.downloadRate.rate(now: now)
            _ = peer.uploadRate.rate(now: now)
            // Keep about two seconds of data in flight, within what the peer accepts.
            let target = rate * 2 / PiecePicker.blockSize
            peer.queueDepth = min(max(target, 32), min(peer.requestQueueLimit, 1000))
            if now - peer.lastMessageAt > .seconds(180) {
                logger.debug("closing idle peer \(peer.address)")
                peer.close()
                continue
            }
            if now - peer.lastSentAt > .seconds(90) {
                peer.send(.keepAlive)
                peer.lastSentAt = now
            }
            // A peer sitting on our requests for long: give the blocks to others.
            if !peer.outstanding.isEmpty && now - peer.lastBlockAt > .seconds(30) {
                logger.debug("peer \(peer.address) snubbed us; reassigning its requests")
                releaseRequests(of: peer)
                peer.close()
                continue
            }
            fillRequests(peer)
        }
        expireMetadataRequests(now: now)
        if logger.logLevel <= .debug {
            let inFlight = peers.values.reduce(0) { $0 + $1.outstanding.count }
            logger.debug("memory: \(diskBacklog) bytes on their way to disk, \(inFlight) requests in flight, queue depths \(peers.values.map(\.queueDepth))")
        }
        if ticks % 10 == 1 { rechoke(now: now) }
        if ticks % 60 == 0 && !isPrivate { sendPex() }
        connectToCandidates()
        checkSeedRatio()
        if ticks % 30 == 0 { _ = saveResume() }
    }

    func status() -> EventLoopFuture<TorrentStatus> {
        eventLoop.submit { self.makeStatus() }
    }

    func makeStatus() -> TorrentStatus {
        let now = NIODeadline.now()
        return TorrentStatus(
            name: displayName, infoHash: infoHash, state: state,
            verifiedBytes: wantedBytes - (picker?.wantedRemainingBytes ?? 0), wantedBytes: wantedBytes,
            piecesHad: have?.cardinality ?? 0, pieceCount: info?.pieceCount ?? 0,
            downloadRate: downloadRate.rate(now: now), uploadRate: uploadRate.rate(now: now),
            downloadedTotal: downloadRate.total, uploadedTotal: uploadRate.total,
            connectedPeers: peers.count, connectedSeeds: peers.values.filter(\.isSeed).count,
            knownPeers: candidates.count, hashFailures: hashFailures,
            bannedPeers: candidates.bans.activeCount(now: now), peersCutOff: misbehaviourDisconnects,
            wastedBytes: wastedBytes, metadataFailures: metadataFailures, trackerMessage: trackerMessage,
            waitingForTunnel: tunnelWait?.description, diskBacklog: diskBacklog, waitingForDisk: readingPaused)
    }
}

enum SessionError: Error, CustomStringConvertible {
    case stopped
    case failed(String)

    var description: String {
        switch self {
        case .stopped: return "torrent stopped"
        case .failed(let message): return message
        }
    }
}
