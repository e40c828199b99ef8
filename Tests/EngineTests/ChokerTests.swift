import Testing
import NIOCore
@testable import Engine

private func at(_ seconds: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(1_000 + seconds) * 1_000_000_000) }

private func peer(_ id: Int, interested: Bool = true, down: Int = 0, up: Int = 0, snubbed: Bool = false,
                  connected: Int64 = -600) -> ChokeCandidate {
    ChokeCandidate(id: id, isInterested: interested, downloadRateFromPeer: down, uploadRateToPeer: up,
                   isSnubbed: snubbed, connectedAt: at(connected))
}

@Suite("Choker")
struct ChokerTests {

    @Test func leecherUnchokesTheFourFastestSendersPlusOneOptimistic() {
        var choker = Choker(randomSeed: 1)
        let peers = (0 ..< 10).map { peer($0, down: 1_000 * ($0 + 1), up: 50_000 - $0) }
        let decision = choker.rechoke(candidates: peers, seeding: false, now: at(0))
        #expect(decision.regular == [9, 8, 7, 6])
        #expect(decision.optimistic.count == 1)
        #expect(decision.optimistic.isDisjoint(with: decision.regular))
        #expect(decision.unchoked == decision.regular.union(decision.optimistic))
        #expect(decision.unchoked.count == 5)
    }

    @Test func seederRanksByHowFastWeUploadToThem() {
        var choker = Choker(randomSeed: 1)
        let peers = (0 ..< 10).map { peer($0, down: 1_000 * ($0 + 1), up: 100_000 - 1_000 * $0) }
        let decision = choker.rechoke(candidates: peers, seeding: true, now: at(0))
        #expect(decision.regular == [0, 1, 2, 3])
        #expect(decision.unchoked.count == 5)
    }

    @Test func slotCountsAreConfigurable() {
        var choker = Choker(regularSlots: 2, optimisticSlots: 3, randomSeed: 4)
        let peers = (0 ..< 10).map { peer($0, down: $0) }
        let decision = choker.rechoke(candidates: peers, seeding: false, now: at(0))
        #expect(decision.regular == [9, 8])
        #expect(decision.optimistic.count == 3)
        #expect(decision.unchoked.count == 5)
    }

    @Test func uninterestedAndSnubbedPeersDoNotTakeRegularSlots() {
        var choker = Choker(randomSeed: 2)
        let peers = [
            peer(1, interested: false, down: 90_000),   // faster than every downloader: unchoked anyway (BEP 3)
            peer(2, interested: false, down: 10),       // slower: stays choked
            peer(3, down: 80_000, snubbed: true),       // snubbed: no regular slot
            peer(4, down: 500), peer(5, down: 400), peer(6, down: 300), peer(7, down: 200),
        ]
        let decision = choker.rechoke(candidates: peers, seeding: false, now: at(0))
        #expect(decision.regular == [4, 5, 6, 7])
        #expect(decision.optimistic == [3], "the only choked interested peer gets the optimistic slot")
        #expect(decision.unchoked == [1, 3, 4, 5, 6, 7])
    }

    @Test func fewInterestedPeersAreAllUnchokedWithoutAnOptimisticSlot() {
        var choker = Choker(randomSeed: 3)
        let peers = [peer(1, down: 5), peer(2, down: 0), peer(3, interested: false)]
        let decision = choker.rechoke(candidates: peers, seeding: false, now: at(0))
        #expect(decision.regular == [1, 2])
        #expect(decision.optimistic.isEmpty)
        #expect(decision.unchoked == [1, 2])
        #expect(choker.rechoke(candidates: [], seeding: false, now: at(10)).unchoked.isEmpty)
    }

    @Test func optimisticUnchokeRotatesEveryThirtySeconds() {
        var choker = Choker(randomSeed: 5)
        let peers = (0 ..< 12).map { peer($0, down: $0 < 4 ? 100_000 : 0) }
        let first = choker.rechoke(candidates: peers, seeding: false, now: at(0)).optimistic
        #expect(first.count == 1)
        #expect(choker.rechoke(candidates: peers, seeding: false, now: at(10)).optimistic == first)
        #expect(choker.rechoke(candidates: peers, seeding: false, now: at(20)).optimistic == first)
        let rotated = choker.rechoke(candidates: peers, seeding: false, now: at(30)).optimistic
        #expect(rotated.count == 1 && rotated != first)
        #expect(choker.rechoke(candidates: peers, seeding: false, now: at(40)).optimistic == rotated)

        var holders = Set<Int>()
        for round in 4 ... 60 {
            let decision = choker.rechoke(candidates: peers, seeding: false, now: at(Int64(round) * 10))
            #expect(decision.optimistic.isDisjoint(with: decision.regular))
            holders.formUnion(decision.optimistic)
        }
        #expect(holders.count >= 6, "rotation should reach many choked peers, reached \(holders.sorted())")
        #expect(holders.isDisjoint(with: [0, 1, 2, 3]))
    }

    @Test func optimisticPeerThatLeavesOrLosesInterestIsReplacedAtOnce() throws {
        var choker = Choker(randomSeed: 6)
        var peers = (0 ..< 8).map { peer($0, down: $0 < 4 ? 100_000 : 0) }
        let first = choker.rechoke(candidates: peers, seeding: false, now: at(0)).optimistic
        let holder = try #require(first.first)
        peers.removeAll { $0.id == holder }
        let next = choker.rechoke(candidates: peers, seeding: false, now: at(10)).optimistic
        #expect(next.count == 1 && !next.contains(holder))
        let replacement = try #require(next.first)
        peers = peers.map { $0.id == replacement ? peer($0.id, interested: false) : $0 }
        let third = choker.rechoke(candidates: peers, seeding: false, now: at(20)).optimistic
        #expect(third.count == 1 && !third.contains(replacement))
    }

    @Test func optimisticPeerPromotedToRegularFreesTheOptimisticSlot() throws {
        var choker = Choker(randomSeed: 7)
        var peers = (0 ..< 8).map { peer($0, down: $0 < 4 ? 100_000 - $0 : 0) }
        let holder = try #require(choker.rechoke(candidates: peers, seeding: false, now: at(0)).optimistic.first)
        // It turned out fast: it earns a regular slot and someone else gets the optimistic one.
        peers = peers.map { $0.id == holder ? peer(holder, down: 500_000) : $0 }
        let decision = choker.rechoke(candidates: peers, seeding: false, now: at(10))
        #expect(decision.regular.contains(holder))
        #expect(decision.optimistic.count == 1 && !decision.optimistic.contains(holder))
        #expect(decision.unchoked.count == 5)
    }

    @Test func newPeersAreThreeTimesAsLikelyToBeOptimisticallyUnchoked() {
        // One regular slot taken by peer 0; peer 1 connected long ago, peer 2 just now.
        var newChosen = 0
        let trials = 4_000
        var seeds = SeededRandom(seed: 2024)   // well-spread seeds; consecutive small seeds correlate
        for _ in 0 ..< trials {
            var choker = Choker(regularSlots: 1, optimisticSlots: 1, randomSeed: seeds.next())
            let peers = [peer(0, down: 9_000), peer(1, connected: -600), peer(2, connected: -5)]
            if choker.rechoke(candidates: peers, seeding: false, now: at(0)).optimistic == [2] { newChosen += 1 }
        }
        let share = Double(newChosen) / Double(trials)
        #expect(abs(share - 0.75) < 0.03, "new peer share \(share), expected 3/4")
    }

    @Test func withoutConnectionTimesNewnessIsWhenTheChokerFirstSawThePeer() {
        // Peer 1 is first seen at t=0 (not yet interested), peer 2 at t=100: at t=100 only peer 2 is new.
        var newChosen = 0
        let trials = 2_000
        var seeds = SeededRandom(seed: 77)
        func candidate(_ id: Int, interested: Bool = true, down: Int = 0) -> ChokeCandidate {
            ChokeCandidate(id: id, isInterested: interested, downloadRateFromPeer: down, uploadRateToPeer: 0)
        }
        for _ in 0 ..< trials {
            var choker = Choker(regularSlots: 1, optimisticSlots: 1, randomSeed: seeds.next())
            let early = choker.rechoke(candidates: [candidate(0, down: 9_000), candidate(1, interested: false)],
                                       seeding: false, now: at(0))
            #expect(early.optimistic.isEmpty)
            let later = [candidate(0, down: 9_000), candidate(1), candidate(2)]
            if choker.rechoke(candidates: later, seeding: false, now: at(100)).optimistic == [2] { newChosen += 1 }
        }
        let share = Double(newChosen) / Double(trials)
        #expect(abs(share - 0.75) < 0.04, "new peer share \(share), expected 3/4")
    }

    @Test func removedOptimisticPeerIsNotKept() {
        var choker = Choker(randomSeed: 8)
        let peers = (0 ..< 6).map { peer($0, down: $0 < 4 ? 1_000 : 0) }
        let holder = choker.rechoke(candidates: peers, seeding: false, now: at(0)).optimistic
        #expect(choker.optimisticPeers == Array(holder))
        for id in holder { choker.remove(id) }
        #expect(choker.optimisticPeers.isEmpty)
        let decision = choker.rechoke(candidates: peers.filter { !holder.contains($0.id) }, seeding: false, now: at(10))
        #expect(decision.optimistic.count == 1 && decision.optimistic.isDisjoint(with: holder))
        #expect(decision.contains(decision.optimistic.first!))
    }

    @Test func sameSeedGivesTheSameDecisions() {
        let peers = (0 ..< 20).map { peer($0, down: ($0 % 5) * 100) }
        var a = Choker(randomSeed: 42), b = Choker(randomSeed: 42)
        for round in 0 ..< 10 {
            #expect(a.rechoke(candidates: peers, seeding: false, now: at(Int64(round) * 10))
                    == b.rechoke(candidates: peers, seeding: false, now: at(Int64(round) * 10)))
        }
    }
}
