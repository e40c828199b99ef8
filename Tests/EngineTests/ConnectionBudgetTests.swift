#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import Testing
import TorrentModel
@testable import Engine

@Suite struct RetryBackoffTests {
    @Test func closedBeforeHandshakeRetriesSoonThenBacksOffAndGivesUp() {
        let delays = (1...RetryBackoff.quickAttempts).map { RetryBackoff.delay(after: .closedBeforeHandshake, attempts: $0) }
        #expect(delays == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(30), .seconds(30), nil])
    }

    @Test func unreachableKeepsTheLongBackoff() {
        let delays = (1...RetryBackoff.slowAttempts).map { RetryBackoff.delay(after: .unreachable, attempts: $0) }
        #expect(delays == [.seconds(30), .seconds(60), .seconds(120), .seconds(240), nil])
    }

    @Test func candidateClosedBeforeHandshakeIsReadyAgainAfterOneSecond() throws {
        var candidates = PeerCandidates()
        let address = try #require(PeerAddress(parsing: "10.0.0.1:6881"))
        let start = NIODeadline.now()
        candidates.add(address, source: .tracker, learnedVia: nil, now: start)
        #expect(candidates.takeReady(limit: 5, now: start, busy: []) == [address])
        candidates.failed(address, .closedBeforeHandshake, now: start)
        #expect(candidates.takeReady(limit: 5, now: start + .milliseconds(900), busy: []).isEmpty)
        #expect(candidates.takeReady(limit: 5, now: start + .seconds(1), busy: []) == [address])
        // The second early close waits 2 s.
        candidates.failed(address, .closedBeforeHandshake, now: start + .seconds(1))
        #expect(candidates.takeReady(limit: 5, now: start + .milliseconds(2900), busy: []).isEmpty)
        #expect(candidates.takeReady(limit: 5, now: start + .seconds(3), busy: []) == [address])
    }

    @Test func candidateIsForgottenAfterTooManyEarlyCloses() throws {
        var candidates = PeerCandidates()
        let address = try #require(PeerAddress(parsing: "10.0.0.1:6881"))
        var now = NIODeadline.now()
        candidates.add(address, source: .tracker, learnedVia: nil, now: now)
        for _ in 1..<RetryBackoff.quickAttempts {
            candidates.failed(address, .closedBeforeHandshake, now: now)
            now = now + .seconds(60)
            #expect(candidates.count == 1)
        }
        candidates.failed(address, .closedBeforeHandshake, now: now)
        #expect(candidates.count == 0)
    }

    @Test func unreachableCandidateWaitsThirtySeconds() throws {
        var candidates = PeerCandidates()
        let address = try #require(PeerAddress(parsing: "10.0.0.2:6881"))
        let start = NIODeadline.now()
        candidates.add(address, source: .tracker, learnedVia: nil, now: start)
        candidates.failed(address, .unreachable, now: start)
        #expect(candidates.takeReady(limit: 5, now: start + .seconds(29), busy: []).isEmpty)
        #expect(candidates.takeReady(limit: 5, now: start + .seconds(30), busy: []) == [address])
    }
}

@Suite struct ConnectionBudgetTests {
    @Test(arguments: [96, 256, 1024, 4096, 8192, 65536])
    func sharesFitTheLimit(limit: Int) {
        let budget = DescriptorBudget(limit: limit)
        #expect(DescriptorBudget.reservedForOthers + budget.storage + budget.peers <= limit)
        #expect(budget.storage >= 8 && budget.storage <= 256)
        #expect(budget.halfOpen >= 4 && budget.halfOpen <= min(64, budget.peers))
    }

    @Test func theDefaultLimitLeavesRoomForPeersAndFiles() {
        let budget = DescriptorBudget(limit: 1024)
        #expect(budget.storage == 240)
        #expect(budget.peers == 720)
        #expect(budget.halfOpen == 64)
    }

    @Test func raisingTheLimitNeverLowersIt() {
        var before = rlimit()
        #expect(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &before) == 0)
        let budget = DescriptorBudget.raisingProcessLimit()
        var after = rlimit()
        #expect(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &after) == 0)
        #expect(after.rlim_cur >= before.rlim_cur)
        #expect(after.rlim_cur >= min(before.rlim_max, rlim_t(DescriptorBudget.sensibleLimit)))
        #expect(budget.limit == Int(after.rlim_cur))
    }

    @Test func slotsAreCappedAndCountedOnce() throws {
        let budget = ConnectionBudget(descriptors: DescriptorBudget(limit: 1024), peerLimit: 3, halfOpenLimit: 2)
        let first = try #require(budget.reserve(.outgoing))
        let second = try #require(budget.reserve(.outgoing))
        #expect(budget.reserve(.outgoing) == nil, "a third half-open slot over the cap of 2")
        #expect(budget.freeOutgoingSlots == 0)
        first.handshaken()
        first.handshaken()
        #expect(budget.counts == .init(open: 2, halfOpen: 1))
        let third = try #require(budget.reserve(.outgoing))
        #expect(budget.reserve(.outgoing) == nil, "a fourth socket over the peer cap of 3")
        second.release()
        second.release()
        #expect(budget.counts == .init(open: 2, halfOpen: 1))
        third.release()
        first.release()
        #expect(budget.counts == .init(open: 0, halfOpen: 0))
    }

    /// Silent incoming connections may take only half of the half-open slots: dialling always has room.
    @Test func incomingFloodLeavesRoomToDial() throws {
        let budget = ConnectionBudget(descriptors: DescriptorBudget(limit: 1024), halfOpenLimit: 8)
        var incoming: [ConnectionSlot] = []
        while let slot = budget.reserve(.incoming) { incoming.append(slot) }
        #expect(incoming.count == 4)
        #expect(budget.freeOutgoingSlots == 4)
        #expect(budget.reserve(.outgoing) != nil)
        incoming[0].handshaken()
        #expect(budget.reserve(.incoming) != nil, "a handshaken connection frees its incoming half-open slot")
        #expect(budget.counts == .init(open: 6, halfOpen: 5, halfOpenIncoming: 4))
    }
}
