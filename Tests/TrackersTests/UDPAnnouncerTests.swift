import NIOCore
import Testing
import TorrentModel
@testable import Trackers

@Suite struct UDPAnnouncerTests {
    private let peers = [Fixtures.peer("192.0.2.1:6881"), Fixtures.peer("192.0.2.2:51413")]

    private func announcer(_ url: String, _ network: TestNetwork, configuration: UDPAnnouncerConfiguration = Fixtures.fastUDP) throws -> UDPAnnouncer {
        try UDPAnnouncer(url: url, sockets: network.sockets, logger: Fixtures.logger, configuration: configuration)
    }

    @Test func announceRequestLayout() {
        let packet = UDPTrackerProtocol.announceRequest(connectionID: 0x0102_0304_0506_0708, transactionID: 0xAABB_CCDD, request: Fixtures.request(event: .stopped))
        #expect(packet.count == 98)
        #expect(Array(packet[0..<8]) == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(UDPWire.readUInt32(packet, at: 8) == 1 && UDPWire.readUInt32(packet, at: 12) == 0xAABB_CCDD)
        #expect(Array(packet[16..<36]) == Fixtures.infoHash.bytes && Array(packet[36..<56]) == Fixtures.peerID.bytes)
        #expect(UDPWire.readUInt64(packet, at: 56) == 20 && UDPWire.readUInt64(packet, at: 64) == 1000 && UDPWire.readUInt64(packet, at: 72) == 10)
        #expect(UDPWire.readUInt32(packet, at: 80) == 3)  // stopped
        #expect(UDPWire.readUInt32(packet, at: 84) == 0)  // IP: let the tracker use the source address
        #expect(UDPWire.readUInt32(packet, at: 88) == 0xDEAD_BEEF)
        #expect(UDPWire.readUInt32(packet, at: 92) == 50)
        #expect(Array(packet[96..<98]) == [0xC8, 0xD5])  // 51413
    }

    @Test func malformedDatagramsNameTheProblem() {
        #expect(throws: TrackerError.malformedResponse("announce response: 12 bytes, at least 20 needed")) {
            try UDPTrackerProtocol.parseAnnounceResponse(UDPWire.be(UInt32(1)) + UDPWire.be(UInt32(9)) + [0, 0, 0, 1], ipv6: false)
        }
        #expect(throws: TrackerError.malformedResponse("announce response: peers length 5 is not a multiple of 6")) {
            try UDPTrackerProtocol.parseAnnounceResponse(UDPWire.announceReply(transactionID: 9, peers: []) + [1, 2, 3, 4, 5], ipv6: false)
        }
        #expect(throws: TrackerError.malformedResponse("connect response: action 1, expected 0 (connect)")) {
            try UDPTrackerProtocol.parseConnectResponse(UDPWire.announceReply(transactionID: 9, peers: []))
        }
        #expect(throws: TrackerError.failure(reason: "nope")) {
            try UDPTrackerProtocol.parseConnectResponse(UDPWire.errorReply(transactionID: 9, message: "nope"))
        }
    }

    @Test func connectThenAnnounce() async throws {
        try await TestNetwork.with { network in
            let tracker = try await FakeUDPTracker(group: network.group, responder: FakeUDPTracker.standard(peers: peers))
            let response = try await announcer(tracker.url, network).announce(Fixtures.request())
            #expect(response.peers == peers)
            #expect(response.interval == 900 && response.seeders == 7 && response.leechers == 3)
            let sent = try await tracker.received()
            #expect(sent.count == 2)
            #expect(sent[0].isConnect && sent[0].bytes.count == 16)
            #expect(sent[1].isAnnounce && sent[1].connectionID == 0xC0FF_EE00_1234_5678 && sent[1].bytes.count == 98)
            #expect(UDPWire.readUInt32(sent[1].bytes, at: 80) == 2)  // started
            #expect(sent[0].transactionID != sent[1].transactionID)
        }
    }

    @Test func connectionIDIsReusedWithinItsLifetimeAndRenewedAfter() async throws {
        try await TestNetwork.with { network in
            let tracker = try await FakeUDPTracker(group: network.group, responder: FakeUDPTracker.standard(peers: peers))
            let udp = try announcer(tracker.url, network)
            _ = try await udp.announce(Fixtures.request())
            _ = try await udp.announce(Fixtures.request(event: .none))
            #expect(try await tracker.received().map(\.isConnect) == [true, false, false])

            var shortLived = Fixtures.fastUDP
            shortLived.connectionIDLifetime = .milliseconds(50)
            let expiring = try announcer(tracker.url, network, configuration: shortLived)
            _ = try await expiring.announce(Fixtures.request())
            try await Task.sleep(for: .milliseconds(120))
            _ = try await expiring.announce(Fixtures.request())
            #expect(try await tracker.received().dropFirst(3).map(\.isConnect) == [true, false, true, false])
        }
    }

    @Test func retransmitsAfterADroppedPacket() async throws {
        try await TestNetwork.with { network in
            let standard = FakeUDPTracker.standard(peers: peers)
            // The first connect and the first announce vanish.
            let tracker = try await FakeUDPTracker(group: network.group) { datagram, index in
                index == 0 || index == 2 ? [] : standard(datagram, index)
            }
            let response = try await announcer(tracker.url, network).announce(Fixtures.request())
            #expect(response.peers == peers)
            let sent = try await tracker.received()
            #expect(sent.map(\.isConnect) == [true, true, false, false])
            // Retransmits repeat the same transaction id, so a late first answer still counts.
            #expect(sent[0].transactionID == sent[1].transactionID && sent[2].transactionID == sent[3].transactionID)
        }
    }

    @Test func wrongTransactionIDIsIgnored() async throws {
        try await TestNetwork.with { network in
            let standard = FakeUDPTracker.standard(peers: peers)
            let tracker = try await FakeUDPTracker(group: network.group) { datagram, index in
                guard datagram.isAnnounce else { return standard(datagram, index) }
                let decoy = UDPWire.announceReply(transactionID: datagram.transactionID &+ 1, peers: [Fixtures.peer("203.0.113.66:666")])
                return [decoy, [1, 2, 3]] + standard(datagram, index)
            }
            let response = try await announcer(tracker.url, network).announce(Fixtures.request())
            #expect(response.peers == peers)
            #expect(try await tracker.received().count == 2)  // no retransmit was needed
        }
    }

    @Test func errorActionIsAFailureWithTheMessage() async throws {
        try await TestNetwork.with { network in
            let standard = FakeUDPTracker.standard(peers: peers)
            let tracker = try await FakeUDPTracker(group: network.group) { datagram, index in
                datagram.isAnnounce ? [UDPWire.errorReply(transactionID: datagram.transactionID, message: "info_hash not found")] : standard(datagram, index)
            }
            let error = await trackerError { _ = try await announcer(tracker.url, network).announce(Fixtures.request()) }
            #expect(error == .failure(reason: "info_hash not found"))
        }
    }

    @Test func reusedConnectionIDRejectedLeadsToAFreshConnect() async throws {
        try await TestNetwork.with { network in
            // Each connect hands out a new id and only the newest one is honoured.
            let strict = try await FakeUDPTracker(group: network.group) { datagram, index in
                if datagram.isConnect { return [UDPWire.connectReply(transactionID: datagram.transactionID, connectionID: 77 + UInt64(index))] }
                // Only the id from the most recent connect (index - 1) is valid.
                if datagram.connectionID == 77 + UInt64(index - 1) {
                    return [UDPWire.announceReply(transactionID: datagram.transactionID, peers: [Fixtures.peer("192.0.2.77:77")])]
                }
                return [UDPWire.errorReply(transactionID: datagram.transactionID, message: "connection id expired")]
            }
            let udp = try announcer(strict.url, network)
            _ = try await udp.announce(Fixtures.request())
            let second = try await udp.announce(Fixtures.request(event: .none))
            #expect(second.peers == [Fixtures.peer("192.0.2.77:77")])
            #expect(try await strict.received().map(\.isConnect) == [true, false, false, true, false])
        }
    }

    @Test func reusedConnectionIDMetWithSilenceLeadsToAFreshConnect() async throws {
        try await TestNetwork.with { network in
            // Like opentracker: announces with a stale id are dropped without a word.
            let tracker = try await FakeUDPTracker(group: network.group) { datagram, index in
                if datagram.isConnect { return [UDPWire.connectReply(transactionID: datagram.transactionID, connectionID: 500 + UInt64(index))] }
                guard datagram.connectionID == 500 + UInt64(index - 1) else { return [] }
                return [UDPWire.announceReply(transactionID: datagram.transactionID, peers: [Fixtures.peer("192.0.2.50:50")])]
            }
            let udp = try announcer(tracker.url, network)
            _ = try await udp.announce(Fixtures.request())
            #expect(try await udp.announce(Fixtures.request(event: .none)).peers == [Fixtures.peer("192.0.2.50:50")])
            #expect(try await tracker.received().map(\.isConnect) == [true, false, false, true, false])
        }
    }

    @Test func cancellationEndsTheWaitAtOnce() async throws {
        try await TestNetwork.with { network in
            let tracker = try await FakeUDPTracker(group: network.group) { _, _ in [] }
            let udp = try announcer(tracker.url, network, configuration: .init(retransmitBase: .seconds(30)))
            let task = Task { try await udp.announce(Fixtures.request()) }
            try await Task.sleep(for: .milliseconds(100))
            let started = ContinuousClock.now
            task.cancel()
            let outcome = await task.result
            // 300 ms of retries; the bound only has to catch garbage restarting the wait (a loaded CI box
            // running the suite in parallel has taken 2.4 s here).
            #expect(ContinuousClock.now - started < .seconds(5))
            guard case .failure(let error) = outcome else { Issue.record("announce succeeded"); return }
            #expect(error is CancellationError)
        }
    }

    @Test func truncatedReplyIsMalformed() async throws {
        try await TestNetwork.with { network in
            let standard = FakeUDPTracker.standard(peers: peers)
            let tracker = try await FakeUDPTracker(group: network.group) { datagram, index in
                datagram.isAnnounce ? [UDPWire.be(UInt32(1)) + UDPWire.be(datagram.transactionID) + [0, 0]] : standard(datagram, index)
            }
            let error = await trackerError { _ = try await announcer(tracker.url, network).announce(Fixtures.request()) }
            #expect(error == .malformedResponse("announce response: 10 bytes, at least 20 needed"))
        }
    }

    @Test func garbageAndSilenceEndInATimeout() async throws {
        try await TestNetwork.with { network in
            let tracker = try await FakeUDPTracker(group: network.group) { _, _ in [Array("garbage!garbage!garbage!".utf8), [0xFF]] }
            let started = ContinuousClock.now
            let error = await trackerError { _ = try await announcer(tracker.url, network).announce(Fixtures.request()) }
            guard case .timeout(let what) = error else { Issue.record("got \(String(describing: error))"); return }
            #expect(what.contains("no reply to connect") && what.contains("after 2 tries over 300 ms"))
            // 300 ms of retries; the bound only has to catch garbage restarting the wait (a loaded CI box
            // running the suite in parallel has taken 2.4 s here).
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(try await tracker.received().count == 2)  // maxRetransmitExponent 1: n = 0 and n = 1
        }
    }

    @Test func ipv6TrackerSends18BytePeers() async throws {
        try await TestNetwork.with { network in
            let v6Peers = [Fixtures.peer("[2001:db8::1]:6881"), Fixtures.peer("[2001:db8::2]:6882")]
            let tracker = try await FakeUDPTracker(group: network.group, host: "::1", responder: FakeUDPTracker.standard(peers: v6Peers))
            let response = try await announcer(tracker.url, network).announce(Fixtures.request())
            #expect(response.peers == v6Peers)
        }
    }
}
