import Bencode
import NIOCore
import Testing
import TorrentModel
import Trackers

@Suite struct HTTPAnnouncerTests {
    private func announcer(_ url: String, _ network: TestNetwork, configuration: HTTPAnnouncerConfiguration = Fixtures.fastHTTP) throws -> HTTPAnnouncer {
        try HTTPAnnouncer(url: url, sockets: network.sockets, logger: Fixtures.logger, configuration: configuration)
    }

    @Test func compactIPv4AnnounceSendsAProperRequest() async throws {
        try await TestNetwork.with { network in
            let tracker = try await FakeHTTPTracker(group: network.group) { _, _ in
                .bencoded(["interval": 1800, "complete": 4, "incomplete": 2, "peers": .bytes([192, 0, 2, 1, 0x1A, 0xE1])])
            }
            let response = try await announcer(tracker.url + "?passkey=abc", network).announce(Fixtures.request())
            #expect(response.interval == 1800 && response.seeders == 4 && response.leechers == 2)
            #expect(response.peers == [Fixtures.peer("192.0.2.1:6881")])

            let sent = try #require(try await tracker.received().first)
            #expect(sent.path == "/announce")
            #expect(sent.parameter("passkey") == "abc")
            #expect(sent.parameter("info_hash") == "%00%FF%25%26%3D%20A~-%80" + String(repeating: "%11", count: 10))
            #expect(sent.parameter("peer_id") == "-BW0001-abcdefghijkl")
            #expect(sent.parameter("compact") == "1")
            #expect(sent.parameter("event") == "started")
            #expect(sent.parameter("port") == "51413")
            #expect(sent.parameter("numwant") == "50")
            #expect(sent.parameter("key") == "DEADBEEF")
            #expect(sent.parameter("left") == "1000" && sent.parameter("uploaded") == "10" && sent.parameter("downloaded") == "20")
            #expect(sent.header("Host") == "127.0.0.1:\(tracker.port)")
            #expect(sent.header("Connection") == "close")
        }
    }

    @Test func peers6AndExternalIPOverIPv6() async throws {
        try await TestNetwork.with { network in
            let v6Peer = [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: UInt8(0), count: 11) + [9, 0x1A, 0xE1]
            let tracker = try await FakeHTTPTracker(group: network.group, host: "::1") { _, _ in
                .bencoded([
                    "interval": 60, "peers": .bytes([198, 51, 100, 4, 0, 80]), "peers6": .bytes(v6Peer),
                    "external ip": .bytes([0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [0x42]),
                ])
            }
            let response = try await announcer(tracker.url, network).announce(Fixtures.request())
            #expect(response.peers == [Fixtures.peer("198.51.100.4:80"), Fixtures.peer("[2001:db8::9]:6881")])
            #expect(response.externalIP == [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [0x42])
            #expect(try await tracker.received().first?.header("Host") == "[::1]:\(tracker.port)")
        }
    }

    @Test func dictionaryPeersInAChunkedBody() async throws {
        try await TestNetwork.with { network in
            let body = Bencode.encode(["interval": 300, "peers": [["ip": "192.0.2.8", "port": 51413, "peer id": "-XX0001-000000000000"]]])
            let tracker = try await FakeHTTPTracker(group: network.group) { _, _ in .chunked(body) }
            let response = try await announcer(tracker.url, network).announce(Fixtures.request())
            #expect(response.peers == [Fixtures.peer("192.0.2.8:51413")])
        }
    }

    @Test func closeDelimitedBody() async throws {
        try await TestNetwork.with { network in
            let tracker = try await FakeHTTPTracker(group: network.group) { _, _ in
                .closeDelimited(Bencode.encode(["interval": 120, "peers": .bytes([192, 0, 2, 9, 0, 1])]))
            }
            let response = try await announcer(tracker.url, network).announce(Fixtures.request())
            #expect(response.interval == 120 && response.peers == [Fixtures.peer("192.0.2.9:1")])
        }
    }

    @Test func failureReasonAndWarning() async throws {
        try await TestNetwork.with { network in
            let tracker = try await FakeHTTPTracker(group: network.group) { _, index in
                index == 0
                    ? .bencoded(["failure reason": "unregistered torrent"])
                    : .bencoded(["interval": 60, "warning message": "client is old", "peers": .bytes([])])
            }
            let http = try announcer(tracker.url, network)
            let error = await trackerError { _ = try await http.announce(Fixtures.request()) }
            #expect(error == .failure(reason: "unregistered torrent"))
            #expect(error?.description == "tracker refused the announce: unregistered torrent")
            let response = try await http.announce(Fixtures.request())
            #expect(response.warning == "client is old" && response.peers.isEmpty)
        }
    }

    @Test func trackerIDIsEchoedOnTheNextAnnounce() async throws {
        try await TestNetwork.with { network in
            let tracker = try await FakeHTTPTracker(group: network.group) { _, _ in
                .bencoded(["interval": 1800, "tracker id": "T-42", "peers": .bytes([])])
            }
            let tiers = TrackerTiers(
                tiers: [[tracker.url]], sockets: network.sockets, logger: Fixtures.logger,
                configuration: AnnouncerConfiguration(http: Fixtures.fastHTTP))
            #expect(await tiers.announce(Fixtures.request(event: .started)).response?.trackerID == "T-42")
            #expect(await tiers.announce(Fixtures.request(event: .completed)).response != nil)
            let sent = try await tracker.received()
            #expect(sent.count == 2)
            #expect(sent[0].parameter("trackerid") == nil)
            #expect(sent[1].parameter("trackerid") == "T-42")
        }
    }

    @Test func garbageBodyIsAMalformedResponse() async throws {
        try await TestNetwork.with { network in
            let tracker = try await FakeHTTPTracker(group: network.group) { _, _ in .body(Array("<html>nginx</html>".utf8)) }
            let error = await trackerError { _ = try await announcer(tracker.url, network).announce(Fixtures.request()) }
            guard case .malformedResponse(let message) = error else { Issue.record("got \(String(describing: error))"); return }
            #expect(message.contains("not bencode") && message.contains("<html>nginx</html>"))
        }
    }

    @Test func invalidHTTPIsAMalformedResponse() async throws {
        try await TestNetwork.with { network in
            let tracker = try await FakeHTTPTracker(group: network.group) { _, _ in .raw(Array("SSH-2.0-OpenSSH\r\n\r\n".utf8)) }
            let error = await trackerError { _ = try await announcer(tracker.url, network).announce(Fixtures.request()) }
            guard case .malformedResponse(let message) = error else { Issue.record("got \(String(describing: error))"); return }
            #expect(message.contains("not a valid HTTP response"))
        }
    }

    @Test func serverErrorStatus() async throws {
        try await TestNetwork.with { network in
            let tracker = try await FakeHTTPTracker(group: network.group) { _, index in
                index == 0
                    ? .body(Array("oops".utf8), status: "500 Internal Server Error")
                    : .bencoded(["failure reason": "passkey invalid"], status: "403 Forbidden")
            }
            let http = try announcer(tracker.url, network)
            #expect(await trackerError { _ = try await http.announce(Fixtures.request()) } == .httpStatus(code: 500, reason: "Internal Server Error"))
            #expect(await trackerError { _ = try await http.announce(Fixtures.request()) } == .failure(reason: "passkey invalid"))
        }
    }

    @Test func redirectsAreFollowedUpToTheLimit() async throws {
        try await TestNetwork.with { network in
            let tracker = try await FakeHTTPTracker(group: network.group) { request, _ in
                switch request.path {
                case "/announce": return .redirect(to: "/moved?passkey=xyz", status: "301 Moved Permanently")
                case "/moved": return .bencoded(["interval": 60, "peers": .bytes([192, 0, 2, 3, 0, 3])])
                default: return .redirect(to: "/loop")
                }
            }
            let response = try await announcer(tracker.url, network).announce(Fixtures.request())
            #expect(response.peers == [Fixtures.peer("192.0.2.3:3")])
            let sent = try await tracker.received()
            #expect(sent.map(\.path) == ["/announce", "/moved"])
            #expect(sent[1].parameter("passkey") == "xyz")

            let looping = try announcer("http://127.0.0.1:\(tracker.port)/loop", network)
            #expect(await trackerError { _ = try await looping.announce(Fixtures.request()) } == .tooManyRedirects(limit: 3))
            #expect(try await tracker.received().count == 2 + 4)
        }
    }

    @Test func silentServerTimesOut() async throws {
        try await TestNetwork.with { network in
            let tracker = try await FakeHTTPTracker(group: network.group) { _, _ in .silence }
            let started = ContinuousClock.now
            let error = await trackerError {
                // Long enough for the request to reach the server even when the whole suite loads 2 cores.
                _ = try await announcer(tracker.url, network, configuration: .init(timeout: .milliseconds(1500))).announce(Fixtures.request())
            }
            guard case .timeout(let what) = error else { Issue.record("got \(String(describing: error))"); return }
            #expect(what.contains("127.0.0.1:\(tracker.port)"))
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(try await tracker.received().count == 1)
        }
    }

    @Test func cancellationEndsTheRequestAtOnce() async throws {
        try await TestNetwork.with { network in
            let tracker = try await FakeHTTPTracker(group: network.group) { _, _ in .silence }
            let http = try announcer(tracker.url, network, configuration: .init(timeout: .seconds(30)))
            let task = Task { try await http.announce(Fixtures.request()) }
            try await Task.sleep(for: .milliseconds(100))
            let started = ContinuousClock.now
            task.cancel()
            let outcome = await task.result
            #expect(ContinuousClock.now - started < .seconds(2))
            guard case .failure(let error) = outcome else { Issue.record("announce succeeded"); return }
            #expect(error is CancellationError)
        }
    }

    @Test func oversizedBodyIsRefused() async throws {
        try await TestNetwork.with { network in
            let tracker = try await FakeHTTPTracker(group: network.group) { _, _ in .body(Array(repeating: 0x41, count: 5000)) }
            let http = try announcer(tracker.url, network, configuration: .init(timeout: .seconds(2), maxBodyBytes: 1000))
            #expect(await trackerError { _ = try await http.announce(Fixtures.request()) } == .responseTooLarge(limitBytes: 1000))
        }
    }

    @Test func refusedConnectionIsAConnectionFailure() async throws {
        try await TestNetwork.with { network in
            let port = try await unusedTCPPort(group: network.group)
            let error = await trackerError {
                _ = try await announcer("http://127.0.0.1:\(port)/announce", network).announce(Fixtures.request())
            }
            guard case .connectionFailed(let reason) = error else { Issue.record("got \(String(describing: error))"); return }
            #expect(reason.contains("127.0.0.1:\(port)"))
        }
    }

    @Test func factoryPicksTheTransport() async throws {
        try await TestNetwork.with { network in
            let https = try AnnouncerFactory.make(url: "https://t.example/a", sockets: network.sockets, logger: Fixtures.logger)
            let udp = try AnnouncerFactory.make(url: "udp://t.example:80", sockets: network.sockets, logger: Fixtures.logger)
            #expect(https is HTTPAnnouncer && https.url == "https://t.example/a")
            #expect(udp is UDPAnnouncer && udp.url == "udp://t.example:80")
            #expect(throws: TrackerError.self) {
                try AnnouncerFactory.make(url: "wss://t.example/a", sockets: network.sockets, logger: Fixtures.logger)
            }
        }
    }
}
