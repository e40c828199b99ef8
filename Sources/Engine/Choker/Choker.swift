import NIOCore

/// One connected peer as the choker sees it at a rechoke.
struct ChokeCandidate {
    let id: Int
    /// The peer wants data from us.
    let isInterested: Bool
    /// Bytes per second the peer sends us.
    let downloadRateFromPeer: Int
    /// Bytes per second we send the peer.
    let uploadRateToPeer: Int
    /// It has sent us nothing for a long while although we asked: it does not earn a regular slot.
    let isSnubbed: Bool
    /// When the connection was made; nil lets the choker use the first rechoke that saw the peer.
    let connectedAt: NIODeadline?

    init(id: Int, isInterested: Bool, downloadRateFromPeer: Int, uploadRateToPeer: Int, isSnubbed: Bool = false,
         connectedAt: NIODeadline? = nil) {
        self.id = id
        self.isInterested = isInterested
        self.downloadRateFromPeer = downloadRateFromPeer
        self.uploadRateToPeer = uploadRateToPeer
        self.isSnubbed = isSnubbed
        self.connectedAt = connectedAt
    }
}

/// Which peers to unchoke after a rechoke; every other peer is choked.
struct ChokeDecision: Equatable {
    /// Everyone to unchoke: regular slots, optimistic slots, and uninterested peers faster than the slowest
    /// regular one (BEP 3: they get a slot if they become interested).
    let unchoked: Set<Int>
    /// The regular (tit-for-tat) slots.
    let regular: Set<Int>
    /// The optimistic slots.
    let optimistic: Set<Int>

    func contains(_ id: Int) -> Bool { unchoked.contains(id) }
}

/// BEP 3 tit-for-tat choking. Pure: it is handed the peers and the time, and keeps only the optimistic
/// unchoke and when it last rotated.
///
/// Call `rechoke` every `rechokeInterval` (and when a peer holding a slot leaves), and `remove` when a
/// peer disconnects:
/// - leeching: the `regularSlots` interested, non-snubbed peers that send us the most get unchoked;
/// - seeding: the ones we upload to fastest (they can take the most from us);
/// - ties are broken at random; optimistic slots go to random choked interested peers and rotate every
///   `optimisticInterval`; peers connected within `newPeerWindow` are three times as likely to be chosen,
///   since they have nothing yet to earn a regular slot with.
struct Choker {
    static let rechokeInterval: TimeAmount = .seconds(10)

    var regularSlots: Int
    var optimisticSlots: Int
    var optimisticInterval: TimeAmount = .seconds(30)
    var newPeerWindow: TimeAmount = .seconds(60)
    /// Weight of a new peer in the optimistic draw; established peers weigh 1.
    static let newPeerWeight = 3

    /// Invariant: holds at most `optimisticSlots` ids, each unchoked by the last decision.
    private(set) var optimisticPeers: [Int] = []
    /// nil until the first rotation.
    private(set) var lastRotation: NIODeadline?
    /// When each peer was first seen, for candidates that do not say when they connected.
    /// Invariant: only ids present at the last rechoke (and not removed since).
    private var firstSeen: [Int: NIODeadline] = [:]
    private var random: SeededRandom

    /// - Parameter randomSeed: fixes tie-breaking and optimistic draws (tests); nil seeds from the system.
    init(regularSlots: Int = 4, optimisticSlots: Int = 1, randomSeed: UInt64? = nil) {
        precondition(regularSlots >= 0 && optimisticSlots >= 0, "choker slot counts must not be negative")
        self.regularSlots = regularSlots
        self.optimisticSlots = optimisticSlots
        random = randomSeed.map(SeededRandom.init(seed:)) ?? SeededRandom()
    }

    /// Forgets a disconnected peer.
    mutating func remove(_ id: Int) {
        firstSeen[id] = nil
        optimisticPeers.removeAll { $0 == id }
    }

    mutating func rechoke(candidates: [ChokeCandidate], seeding: Bool, now: NIODeadline) -> ChokeDecision {
        var seen = [Int: NIODeadline](minimumCapacity: candidates.count)
        for candidate in candidates { seen[candidate.id] = firstSeen[candidate.id] ?? now }
        firstSeen = seen
        let rate: (ChokeCandidate) -> Int = seeding ? { $0.uploadRateToPeer } : { $0.downloadRateFromPeer }
        // Shuffle first so the stable sort breaks equal rates randomly.
        var ranked = candidates.filter { seeding || !$0.isSnubbed }
        ranked.shuffle(using: &random)
        ranked = stableSortedByRateDescending(ranked, rate)

        var regular = Set<Int>()
        var slowestRegularRate = Int.max
        for candidate in ranked where candidate.isInterested && regular.count < regularSlots {
            regular.insert(candidate.id)
            slowestRegularRate = rate(candidate)
        }
        var unchoked = regular
        if regular.count == regularSlots {
            for candidate in ranked where !candidate.isInterested && rate(candidate) > slowestRegularRate {
                unchoked.insert(candidate.id)
            }
        }

        let optimistic = chooseOptimistic(candidates, excluding: regular, now: now)
        unchoked.formUnion(optimistic)
        return ChokeDecision(unchoked: unchoked, regular: regular, optimistic: Set(optimistic))
    }

    /// Keeps the current optimistic peers that are still eligible until the interval is up, then draws
    /// new ones, avoiding the previous holders when anyone else is eligible.
    private mutating func chooseOptimistic(_ candidates: [ChokeCandidate], excluding regular: Set<Int>,
                                           now: NIODeadline) -> [Int] {
        var eligible = candidates.filter { $0.isInterested && !regular.contains($0.id) }
        let rotate = lastRotation.map { now - $0 >= optimisticInterval } ?? true
        var chosen: [Int]
        if rotate {
            lastRotation = now
            let previous = Set(optimisticPeers)
            let fresh = eligible.filter { !previous.contains($0.id) }
            chosen = draw(from: fresh, count: optimisticSlots, now: now)
            if chosen.count < optimisticSlots {   // too few others: previous holders may stay
                let taken = Set(chosen)
                eligible.removeAll { taken.contains($0.id) }
                chosen += draw(from: eligible, count: optimisticSlots - chosen.count, now: now)
            }
        } else {
            let eligibleIDs = Set(eligible.map(\.id))
            chosen = Array(optimisticPeers.filter { eligibleIDs.contains($0) }.prefix(optimisticSlots))
            let taken = Set(chosen)
            eligible.removeAll { taken.contains($0.id) }
            chosen += draw(from: eligible, count: optimisticSlots - chosen.count, now: now)
        }
        optimisticPeers = chosen
        return chosen
    }

    /// Weighted draw without replacement.
    private mutating func draw(from pool: [ChokeCandidate], count: Int, now: NIODeadline) -> [Int] {
        var pool = pool.map { candidate in
            let connected = candidate.connectedAt ?? firstSeen[candidate.id] ?? now
            return (id: candidate.id, weight: now - connected < newPeerWindow ? Self.newPeerWeight : 1)
        }
        var picked = [Int]()
        while picked.count < count && !pool.isEmpty {
            var ticket = Int.random(in: 0 ..< pool.reduce(0) { $0 + $1.weight }, using: &random)
            var index = 0
            while ticket >= pool[index].weight {
                ticket -= pool[index].weight
                index += 1
            }
            picked.append(pool.remove(at: index).id)
        }
        return picked
    }

    private func stableSortedByRateDescending(_ peers: [ChokeCandidate],
                                              _ rate: (ChokeCandidate) -> Int) -> [ChokeCandidate] {
        peers.enumerated()
            .sorted { lhs, rhs in
                let (l, r) = (rate(lhs.element), rate(rhs.element))
                return l != r ? l > r : lhs.offset < rhs.offset
            }
            .map(\.element)
    }
}
