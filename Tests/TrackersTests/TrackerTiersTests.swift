import Bencode
import Testing
import TorrentModel
import Trackers

/// An announcer that answers from a script and records what it was asked.
actor ScriptedAnnouncer: Announcer {
    nonisolated let url: String
    private let outcome: @Sendable (Int) -> Result<AnnounceResponse, TrackerError>
    private(set) var requests: [AnnounceRequest] = []

    init(_ url: String, outcome: @escaping @Sendable (Int) -> Result<AnnounceResponse, TrackerError>) {
        self.url = url
        self.outcome = outcome
    }

    static func answering(_ url: String, _ response: AnnounceResponse = AnnounceResponse(interval: 1800)) -> ScriptedAnnouncer {
        ScriptedAnnouncer(url) { _ in .success(response) }
    }

    static func failing(_ url: String) -> ScriptedAnnouncer {
        ScriptedAnnouncer(url) { _ in .failure(.connectionFailed("down")) }
    }

    func announce(_ request: AnnounceRequest) async throws -> AnnounceResponse {
        requests.append(request)
        return try outcome(requests.count - 1).get()
    }
}

@Suite struct TrackerTiersTests {
    @Test func deadFirstTrackerFallsThroughAndTheAnswererIsPromoted() async throws {
        try await TestNetwork.with { network in
            let deadPort = try await unusedTCPPort(group: network.group)
            let dead = "http://127.0.0.1:\(deadPort)/announce"
            let alive = try await FakeHTTPTracker(group: network.group) { _, _ in
                .bencoded(["interval": 1800, "peers": .bytes([192, 0, 2, 10, 0x1A, 0xE1])])
            }
            let tiers = TrackerTiers(
                tiers: [[dead, alive.url]], sockets: network.sockets, logger: Fixtures.logger,
                configuration: AnnouncerConfiguration(http: Fixtures.fastHTTP), shufflesWithinTiers: false)
            #expect(await tiers.currentTiers == [[dead, alive.url]])

            guard case .answered(let url, let response, let failures) = await tiers.announce(Fixtures.request()) else {
                Issue.record("no tracker answered")
                return
            }
            #expect(url == alive.url)
            #expect(response.peers == [Fixtures.peer("192.0.2.10:6881")])
            #expect(failures.map(\.url) == [dead])
            if case .connectionFailed = failures.first?.error {} else { Issue.record("dead tracker error: \(failures)") }
            #expect(await tiers.currentTiers == [[alive.url, dead]])
            let statuses = await tiers.statuses()
            #expect(statuses.first { $0.url == dead }?.lastError != nil)
            #expect(statuses.first { $0.url == alive.url }?.lastResponse?.interval == 1800)
        }
    }

    @Test func nextTierOnlyWhenTheWholeTierFailed() async {
        let a = ScriptedAnnouncer.failing("http://a/announce")
        let b = ScriptedAnnouncer.failing("http://b/announce")
        let c = ScriptedAnnouncer.answering("http://c/announce")
        let d = ScriptedAnnouncer.answering("http://d/announce")
        let tiers = TrackerTiers(announcers: [[a, b], [c, d]], logger: Fixtures.logger, shufflesWithinTiers: false)
        let result = await tiers.announce(Fixtures.request())
        guard case .answered(let url, _, let failures) = result else { Issue.record("got \(result)"); return }
        #expect(url == "http://c/announce")
        #expect(failures == [
            TrackerFailure(url: "http://a/announce", error: .connectionFailed("down")),
            TrackerFailure(url: "http://b/announce", error: .connectionFailed("down")),
        ])
        #expect(await d.requests.isEmpty)
        // c was already first in its tier; tiers themselves never reorder.
        #expect(await tiers.currentTiers == [["http://a/announce", "http://b/announce"], ["http://c/announce", "http://d/announce"]])
    }

    @Test func everyTrackerFailing() async {
        let tiers = TrackerTiers(
            announcers: [[ScriptedAnnouncer.failing("udp://a:1")], [ScriptedAnnouncer.failing("udp://b:1")]],
            logger: Fixtures.logger)
        guard case .failed(let failures) = await tiers.announce(Fixtures.request()) else { Issue.record("expected failure"); return }
        #expect(failures.map(\.url) == ["udp://a:1", "udp://b:1"])
    }

    @Test func regularAnnouncesWaitForTheMinimumIntervalButEventsDoNot() async {
        let tracker = ScriptedAnnouncer.answering("http://t/announce", AnnounceResponse(interval: 1800, minInterval: 600, trackerID: "abc"))
        let tiers = TrackerTiers(announcers: [[tracker]], logger: Fixtures.logger)
        #expect(await tiers.announce(Fixtures.request(event: .started)).response != nil)
        let before = ContinuousClock.now
        guard case .deferred(let url, let until) = await tiers.announce(Fixtures.request(event: .none)) else {
            Issue.record("regular announce was not deferred")
            return
        }
        #expect(url == "http://t/announce")
        #expect(until > before + .seconds(590) && until <= before + .seconds(600))
        #expect(await tiers.announce(Fixtures.request(event: .stopped)).response != nil)
        let requests = await tracker.requests
        #expect(requests.map(\.event) == [.started, .stopped])
        #expect(requests.map(\.trackerID) == [nil, "abc"])
    }

    @Test func unusableAndDuplicateURLsAreDropped() async throws {
        try await TestNetwork.with { network in
            let tiers = TrackerTiers(
                tiers: [["wss://t.example/a", "udp://t.example:1"], ["udp://t.example:1"], []],
                sockets: network.sockets, logger: Fixtures.logger)
            #expect(await tiers.currentTiers == [["udp://t.example:1"]])
            #expect(tiers.rejected.map(\.url) == ["wss://t.example/a"])
        }
    }

    @Test func noTrackersAtAll() async {
        let tiers = TrackerTiers(announcers: [], logger: Fixtures.logger)
        guard case .failed(let failures) = await tiers.announce(Fixtures.request()) else { Issue.record("expected failure"); return }
        #expect(failures.isEmpty)
    }
}
