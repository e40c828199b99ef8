import NIOCore
import Sockets
import TorrentModel
import Trackers

/// Announcing to trackers on their schedule, and turning answers into peer candidates.
extension TorrentSession {
    static let defaultAnnounceInterval: Int64 = 1800
    static let retryAfterFailure: Int64 = 30

    /// (Re)schedules the next announce; an event other than `.none` replaces a pending plain one.
    func scheduleAnnounce(after delay: TimeAmount, event: AnnounceEvent? = nil) {
        if let event { nextAnnounceEvent = event }
        guard trackers != nil, !isStopping, tunnelWait == nil else { return }
        announceTask?.cancel()
        announceTask = eventLoop.scheduleTask(in: delay) { self.announceNow() }
    }

    func makeAnnounceRequest(event: AnnounceEvent) -> AnnounceRequest {
        let left: Int64
        if let info, let have {
            left = max(0, info.totalLength - Int64(have.cardinality) * Int64(info.pieceLength))
        } else {
            left = info?.totalLength ?? 1  // Unknown size (magnet): any non-zero value says "leecher".
        }
        return AnnounceRequest(infoHash: infoHash, peerID: peerID, port: listenPort,
                               uploaded: uploadRate.total, downloaded: downloadRate.total,
                               left: have?.isComplete == true ? 0 : left, event: event, numWant: 200,
                               key: announceKey)
    }

    private func announceNow() {
        guard let trackers, !isStopping, tunnelWait == nil else { return }
        if announcing {
            // One announce at a time; try again shortly.
            announceTask = eventLoop.scheduleTask(in: .seconds(1)) { self.announceNow() }
            return
        }
        announcing = true
        let event = nextAnnounceEvent
        let request = makeAnnounceRequest(event: event)
        let loop = eventLoop
        // Outgoing sockets are pinned to the first usable interface: that is the path these peers come from.
        let via = (try? sockets.usableInterfaces())?.first?.name
        let generation = announceGeneration
        let promise = loop.makePromise(of: TierAnnounceResult.self)
        promise.completeWithTask { await trackers.announce(request) }
        promise.futureResult.whenSuccess { result in
            guard generation == self.announceGeneration else { return }  // Sent over a path that died.
            self.announcing = false
            self.announceFinished(result, event: event, learnedVia: via)
        }
    }

    private func announceFinished(_ result: TierAnnounceResult, event: AnnounceEvent, learnedVia: String?) {
        // Answers that arrive after the tunnel died describe a path that no longer exists.
        guard !isStopping, tunnelWait == nil else { return }
        if case .deferred(_, let until) = result {
            // Too soon for the tracker's min interval: come back when it allows.
            let wait = ContinuousClock.now.duration(to: until)
            scheduleAnnounce(after: max(.seconds(1), .nanoseconds(Int64(wait.components.seconds) * 1_000_000_000
                                                                   + wait.components.attoseconds / 1_000_000_000)))
            return
        }
        guard let response = result.response else {
            trackerMessage = result.errors.last.map { "\($0.url): \($0.error)" } ?? "no tracker answered"
            logger.notice("announce failed: \(trackerMessage ?? "")")
            announceFailures += 1
            scheduleAnnounce(after: retryDelay())
            return
        }
        announceFailures = 0
        if event == nextAnnounceEvent { nextAnnounceEvent = .none }
        trackerMessage = response.warning
        if let external = response.externalIP { externalAddressReported(external, by: "tracker \(result.url ?? "?")") }
        let now = NIODeadline.now()
        let own = ownAddresses()
        for peer in response.peers where !(peer.port == listenPort && own.contains(peer.ip)) {
            candidates.add(peer, source: .tracker, learnedVia: learnedVia, now: now)
        }
        logger.debug("tracker gave \(response.peers.count) peers: \(response.peers.map(\.description).joined(separator: " "))")
        connectToCandidates()
        let interval = Int64(max(response.interval, response.minInterval ?? 0, 15))
        scheduleAnnounce(after: .seconds(min(interval, Self.defaultAnnounceInterval)))
    }

    /// Our own addresses: trackers list us among the peers, and dialling ourselves only wastes a connection.
    func ownAddresses() -> Set<[UInt8]> {
        let interfaces = (try? sockets.usableInterfaces()) ?? []
        var own = Set(interfaces.flatMap { $0.addresses.compactMap { PeerAddress(socketAddress: $0)?.ip } })
        if case .unbound = sockets.policy {
            own.formUnion(((try? InterfaceTable.usable(under: .unbound)) ?? [])
                .flatMap { $0.addresses.compactMap { PeerAddress(socketAddress: $0)?.ip } })
        }
        return own
    }

    /// Right after a tunnel came back its routes may still be settling: retry every 250 ms until the
    /// first data arrives. Otherwise back off 1, 2, 4 … 30 s.
    private func retryDelay() -> TimeAmount {
        if resumeStartedAt != nil { return .milliseconds(250) }
        return .seconds(min(Self.retryAfterFailure, Int64(1) << min(announceFailures - 1, 5)))
    }

    /// Best effort "stopped" announce on shutdown; gives up after two seconds.
    func announceStopped() -> EventLoopFuture<Void> {
        guard let trackers, info != nil || !trackerTiers.isEmpty else { return eventLoop.makeSucceededVoidFuture() }
        let request = makeAnnounceRequest(event: .stopped)
        let promise = eventLoop.makePromise(of: Void.self)
        promise.completeWithTask { _ = await trackers.announce(request) }
        let done = eventLoop.makePromise(of: Void.self)
        let timeout = eventLoop.scheduleTask(in: .seconds(2)) { done.succeed(()) }
        promise.futureResult.whenComplete { _ in
            timeout.cancel()
            done.succeed(())
        }
        return done.futureResult
    }
}
