import Logging
import Sockets

/// One tracker that could not be used, and why.
public struct TrackerFailure: Sendable, Equatable, CustomStringConvertible {
    public var url: String
    public var error: TrackerError

    public init(url: String, error: TrackerError) {
        self.url = url
        self.error = error
    }

    public var description: String { "\(url): \(error)" }
}

/// The outcome of announcing through the tiers.
public enum TierAnnounceResult: Sendable {
    /// `url` answered. `failures` are the trackers tried before it, in order.
    case answered(url: String, response: AnnounceResponse, failures: [TrackerFailure])
    /// A regular announce came before the interval the serving tracker asked for; nothing was sent.
    /// Events (started, stopped, completed) are never deferred.
    case deferred(url: String, until: ContinuousClock.Instant)
    /// Every tracker failed (or there are none).
    case failed([TrackerFailure])
    /// The calling task was cancelled mid-way; `failures` are the trackers that failed before that.
    case cancelled(failures: [TrackerFailure])

    public var response: AnnounceResponse? {
        if case .answered(_, let response, _) = self { return response }
        return nil
    }

    /// The tracker that answered, or that asked us to wait.
    public var url: String? {
        switch self {
        case .answered(let url, _, _), .deferred(let url, _): return url
        case .failed, .cancelled: return nil
        }
    }

    /// Every tracker that failed during this announce, in the order tried.
    public var errors: [TrackerFailure] {
        switch self {
        case .answered(_, _, let failures), .failed(let failures), .cancelled(let failures): return failures
        case .deferred: return []
        }
    }
}

/// What is known about one tracker, for status displays.
public struct TrackerStatus: Sendable {
    public var url: String
    public var tier: Int
    /// Position within its tier, 0 being the one tried first.
    public var position: Int
    public var trackerID: String?
    public var lastError: TrackerError?
    public var lastResponse: AnnounceResponse?
    public var nextAllowed: ContinuousClock.Instant?
}

/// BEP 12 tiers. Trackers are shuffled within each tier once, at creation. An announce goes tier by
/// tier, tracker by tracker; the first tracker that answers ends it and moves to the front of its tier;
/// the next tier is tried only when every tracker in the current one failed.
public actor TrackerTiers {
    private struct TrackerState {
        let announcer: any Announcer
        /// The tracker id it gave us (HTTP), echoed on every later announce to it.
        var trackerID: String?
        var lastError: TrackerError?
        var lastResponse: AnnounceResponse?
        /// Set when it answers (now + min interval, or interval when there is no min interval); cleared
        /// when it fails. Regular announces before this instant are deferred rather than sent.
        var nextAllowed: ContinuousClock.Instant?
    }

    /// Tier lists of URLs in current preference order. Invariant: every URL here has an entry in
    /// `trackers`, appears exactly once across all tiers, and no tier is empty.
    private var tiers: [[String]]
    private var trackers: [String: TrackerState]
    /// Announce URLs that were dropped at creation (bad syntax, unknown scheme), with why.
    public nonisolated let rejected: [TrackerFailure]
    private let logger: Logger

    /// Builds announcers for the metainfo's `announce-list` (or `[[announce]]`). Unusable URLs and
    /// duplicates are dropped (see `rejected`); `shufflesWithinTiers` is off only in tests that need
    /// a known order.
    public init(
        tiers: [[String]], sockets: SocketFactory, logger: Logger,
        configuration: AnnouncerConfiguration = .init(), shufflesWithinTiers: Bool = true
    ) {
        var rejected = [TrackerFailure]()
        let announcers = tiers.map { tier in
            tier.compactMap { url -> (any Announcer)? in
                do {
                    return try AnnouncerFactory.make(url: url, sockets: sockets, logger: logger, configuration: configuration)
                } catch {
                    let trackerError = error as? TrackerError ?? .unsupportedURL(url: url, reason: "\(error)")
                    rejected.append(TrackerFailure(url: url, error: trackerError))
                    logger.warning("ignoring tracker", metadata: ["url": "\(url)", "error": "\(trackerError)"])
                    return nil
                }
            }
        }
        self.init(announcers: announcers, rejected: rejected, logger: logger, shufflesWithinTiers: shufflesWithinTiers)
    }

    /// Tiers of ready-made announcers (any transport, including test doubles).
    public init(announcers: [[any Announcer]], logger: Logger, shufflesWithinTiers: Bool = true) {
        self.init(announcers: announcers, rejected: [], logger: logger, shufflesWithinTiers: shufflesWithinTiers)
    }

    private init(announcers: [[any Announcer]], rejected: [TrackerFailure], logger: Logger, shufflesWithinTiers: Bool) {
        var tiers = [[String]]()
        var trackers = [String: TrackerState]()
        for tier in announcers {
            var urls = [String]()
            for announcer in tier where trackers[announcer.url] == nil {
                trackers[announcer.url] = TrackerState(announcer: announcer)
                urls.append(announcer.url)
            }
            if shufflesWithinTiers { urls.shuffle() }
            if !urls.isEmpty { tiers.append(urls) }
        }
        self.tiers = tiers
        self.trackers = trackers
        self.rejected = rejected
        self.logger = logger
    }

    /// Announces to the first tracker that answers. Never throws: failures are in the result.
    public func announce(_ request: AnnounceRequest) async -> TierAnnounceResult {
        var failures = [TrackerFailure]()
        // Iterates over a snapshot: a concurrent announce may reorder tiers while this one awaits.
        for (tierIndex, tier) in tiers.enumerated() {
            for url in tier {
                guard let state = trackers[url] else { continue }
                if request.event == .none, let next = state.nextAllowed, ContinuousClock.now < next {
                    return .deferred(url: url, until: next)
                }
                var outgoing = request
                outgoing.trackerID = state.trackerID ?? request.trackerID
                do {
                    let response = try await state.announcer.announce(outgoing)
                    recordAnswer(response, from: url)
                    promote(url, inTier: tierIndex)
                    return .answered(url: url, response: response, failures: failures)
                } catch is CancellationError {
                    return .cancelled(failures: failures)
                } catch {
                    let trackerError = error as? TrackerError ?? .connectionFailed(String(describing: error))
                    if Task.isCancelled { return .cancelled(failures: failures) }
                    recordFailure(trackerError, from: url)
                    failures.append(TrackerFailure(url: url, error: trackerError))
                }
            }
        }
        return .failed(failures)
    }

    /// The tiers in their current order (after shuffling and promotions).
    public var currentTiers: [[String]] { tiers }

    public func statuses() -> [TrackerStatus] {
        tiers.enumerated().flatMap { tierIndex, tier in
            tier.enumerated().compactMap { position, url in
                trackers[url].map { state in
                    TrackerStatus(
                        url: url, tier: tierIndex, position: position, trackerID: state.trackerID,
                        lastError: state.lastError, lastResponse: state.lastResponse, nextAllowed: state.nextAllowed)
                }
            }
        }
    }

    private func recordAnswer(_ response: AnnounceResponse, from url: String) {
        guard var state = trackers[url] else { return }
        if let trackerID = response.trackerID { state.trackerID = trackerID }
        state.lastError = nil
        state.lastResponse = response
        state.nextAllowed = .now + .seconds(response.minInterval ?? response.interval)
        trackers[url] = state
        if let warning = response.warning {
            logger.warning("tracker warning", metadata: ["url": "\(url)", "warning": "\(warning)"])
        }
    }

    private func recordFailure(_ error: TrackerError, from url: String) {
        trackers[url]?.lastError = error
        trackers[url]?.nextAllowed = nil
        logger.info("tracker failed", metadata: ["url": "\(url)", "error": "\(error)"])
    }

    /// Moves `url` to the front of its tier (looked up afresh: the snapshot index may be stale).
    private func promote(_ url: String, inTier hint: Int) {
        let tierIndex = tiers.indices.contains(hint) && tiers[hint].contains(url) ? hint : tiers.firstIndex { $0.contains(url) }
        guard let tierIndex, let position = tiers[tierIndex].firstIndex(of: url), position > 0 else { return }
        tiers[tierIndex].remove(at: position)
        tiers[tierIndex].insert(url, at: 0)
    }
}
