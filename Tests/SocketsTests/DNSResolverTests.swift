import NIOCore
import NIOPosix
import Testing
@testable import Sockets

/// The stub resolver end to end, against fake DNS servers on 127.0.0.1 (UDP and TCP on one port).
@Suite struct DNSResolverTests {
    static let v4: [UInt8] = [192, 0, 2, 10]
    static let v6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]

    /// Answers A and AAAA for any name.
    static let answersBoth: FakeDNSServer.Behavior = { query, _ in
        let answer = query.type == 1 ? (owner: "@", type: UInt16(1), data: v4) : (owner: "@", type: UInt16(28), data: v6)
        return [FakeReply(bytes: query.response(answers: [answer]))]
    }

    @Test func resolvesAAndAAAAWithIPv4First() async throws {
        let sockets = TestSockets()
        let server = try await FakeDNSServer(group: sockets.group, behavior: Self.answersBoth)
        let resolver = DNSResolver(servers: [server.address], sockets: sockets.factory)
        let addresses = try await resolver.resolve(host: "tracker.example.org", port: 6969).get()
        #expect(addresses == [
            try SocketAddress(ipAddress: "192.0.2.10", port: 6969), try SocketAddress(ipAddress: "2001:db8::1", port: 6969),
        ])
        #expect(Set(server.queries.map(\.type)) == [1, 28])
        #expect(server.queries.allSatisfy { $0.transport == .udp && $0.name == "tracker.example.org" })
        await server.close()
        await sockets.shutdown()
    }

    @Test func followsCNAMEsAndAcceptsAMissingAAAA() async throws {
        let sockets = TestSockets()
        let server = try await FakeDNSServer(group: sockets.group) { query, _ in
            var answers: [(owner: String, type: UInt16, data: [UInt8])] = [
                ("@", 5, Packet.name("edge.cdn.example.net")),
            ]
            if query.type == 1 { answers.append(("edge.cdn.example.net", 1, [198, 51, 100, 7])) }
            return [FakeReply(bytes: query.response(answers: answers))]
        }
        let resolver = DNSResolver(servers: [server.address], sockets: sockets.factory)
        let addresses = try await resolver.resolve(host: "www.example.org", port: 80).get()
        #expect(addresses == [try SocketAddress(ipAddress: "198.51.100.7", port: 80)])
        await server.close()
        await sockets.shutdown()
    }

    @Test func nxdomainNamesTheHostAndTheServer() async throws {
        let sockets = TestSockets()
        let server = try await FakeDNSServer(group: sockets.group) { query, _ in
            [FakeReply(bytes: query.response(rcode: 3))]
        }
        let resolver = DNSResolver(servers: [server.address], sockets: sockets.factory)
        await #expect(throws: DNSResolutionError.nameDoesNotExist(host: "nope.example.org", server: server.address.dnsServerText)) {
            try await resolver.resolve(host: "nope.example.org", port: 80).get()
        }
        // NXDOMAIN is definitive: one query per record type, no retries.
        #expect(server.queries.count == 2)
        await server.close()
        await sockets.shutdown()
    }

    @Test func noAddressRecordsIsItsOwnError() async throws {
        let sockets = TestSockets()
        let server = try await FakeDNSServer(group: sockets.group) { query, _ in [FakeReply(bytes: query.response())] }
        let resolver = DNSResolver(servers: [server.address], sockets: sockets.factory)
        await #expect(throws: DNSResolutionError.noAddresses(host: "empty.example.org", server: server.address.dnsServerText)) {
            try await resolver.resolve(host: "empty.example.org", port: 80).get()
        }
        await server.close()
        await sockets.shutdown()
    }

    @Test func serverFailureMovesToTheNextServer() async throws {
        let sockets = TestSockets()
        let failing = try await FakeDNSServer(group: sockets.group) { query, _ in [FakeReply(bytes: query.response(rcode: 2))] }
        let working = try await FakeDNSServer(group: sockets.group, behavior: Self.answersBoth)
        let resolver = DNSResolver(servers: [failing.address, working.address], sockets: sockets.factory)
        let addresses = try await resolver.resolve(host: "a.example.org", port: 1).get()
        #expect(addresses.count == 2)
        #expect(failing.queries.count == 2 && working.queries.count == 2)
        await failing.close()
        await working.close()
        await sockets.shutdown()
    }

    @Test func whenEveryServerFailsEachTryIsExplained() async throws {
        let sockets = TestSockets()
        let failing = try await FakeDNSServer(group: sockets.group) { query, _ in [FakeReply(bytes: query.response(rcode: 2))] }
        let refusing = try await FakeDNSServer(group: sockets.group) { query, _ in [FakeReply(bytes: query.response(rcode: 5))] }
        let resolver = DNSResolver(servers: [failing.address, refusing.address], sockets: sockets.factory)
        do {
            _ = try await resolver.resolve(host: "down.example.org", port: 1).get()
            Issue.record("resolution should have failed")
        } catch let DNSResolutionError.allServersFailed(host, failures) {
            #expect(host == "down.example.org")
            // 2 rounds x 2 servers x (A, AAAA).
            #expect(failures.count == 8)
            #expect(failures.contains("\(failing.address.dnsServerText) A: answered SERVFAIL"))
            #expect(failures.contains("\(refusing.address.dnsServerText) AAAA: answered REFUSED"))
        }
        #expect(failing.queries.count == 4 && refusing.queries.count == 4)
        await failing.close()
        await refusing.close()
        await sockets.shutdown()
    }

    @Test func aTruncatedAnswerIsRetriedOverTCP() async throws {
        let sockets = TestSockets()
        let server = try await FakeDNSServer(group: sockets.group) { query, transport in
            guard transport == .tcp else { return [FakeReply(bytes: query.response(truncated: true))] }
            let answer = query.type == 1 ? (owner: "@", type: UInt16(1), data: Self.v4) : (owner: "@", type: UInt16(28), data: Self.v6)
            return [FakeReply(bytes: query.response(answers: [answer]))]
        }
        let resolver = DNSResolver(servers: [server.address], sockets: sockets.factory)
        let addresses = try await resolver.resolve(host: "big.example.org", port: 443).get()
        #expect(addresses.count == 2)
        #expect(server.count(.udp) == 2)
        #expect(server.count(.tcp) == 2)
        await server.close()
        await sockets.shutdown()
    }

    @Test func aSilentServerTimesOutAndTheNextOneAnswers() async throws {
        let sockets = TestSockets()
        let silent = try await FakeDNSServer(group: sockets.group) { _, _ in [] }
        let working = try await FakeDNSServer(group: sockets.group, behavior: Self.answersBoth)
        let resolver = DNSResolver(
            servers: [silent.address, working.address], sockets: sockets.factory, timeout: .milliseconds(200))
        let start = ContinuousClock.now
        let addresses = try await resolver.resolve(host: "slow.example.org", port: 1).get()
        #expect(addresses.count == 2)
        #expect(silent.count(.udp) == 2)
        #expect(ContinuousClock.now - start >= .milliseconds(200))
        await silent.close()
        await working.close()
        await sockets.shutdown()
    }

    @Test func timeoutsOnEveryServerAreReported() async throws {
        let sockets = TestSockets()
        let silent = try await FakeDNSServer(group: sockets.group) { _, _ in [] }
        let resolver = DNSResolver(servers: [silent.address], sockets: sockets.factory, timeout: .milliseconds(100))
        do {
            _ = try await resolver.resolve(host: "void.example.org", port: 1).get()
            Issue.record("resolution should have failed")
        } catch let DNSResolutionError.allServersFailed(host, failures) {
            #expect(host == "void.example.org")
            #expect(failures.count == 4)
            #expect(failures.contains("\(silent.address.dnsServerText) A over UDP: timed out after 0.1 s"))
        }
        #expect(silent.count(.udp) == 4)
        await silent.close()
        await sockets.shutdown()
    }

    @Test func forgedAnswersFromAnotherPortOrWithAnotherIDAreIgnored() async throws {
        let sockets = TestSockets()
        let server = try await FakeDNSServer(group: sockets.group) { query, _ in
            let type: UInt16 = query.type
            let forged = (owner: "@", type: type, data: type == 1 ? [6, 6, 6, 6] : [UInt8](repeating: 6, count: 16))
            let real = type == 1 ? (owner: "@", type: type, data: Self.v4) : (owner: "@", type: type, data: Self.v6)
            return [
                FakeReply(bytes: query.response(answers: [forged]), fromImpostor: true),
                FakeReply(bytes: query.response(id: query.id &+ 1, answers: [forged])),
                FakeReply(bytes: query.response(answers: [real]), delay: .milliseconds(50)),
            ]
        }
        let resolver = DNSResolver(servers: [server.address], sockets: sockets.factory)
        let addresses = try await resolver.resolve(host: "spoof.example.org", port: 1).get()
        #expect(addresses == [
            try SocketAddress(ipAddress: "192.0.2.10", port: 1), try SocketAddress(ipAddress: "2001:db8::1", port: 1),
        ])
        await server.close()
        await sockets.shutdown()
    }

    @Test func numericHostsNeedNoQuery() async throws {
        let sockets = TestSockets()
        let resolver = DNSResolver(servers: [], sockets: sockets.factory)
        #expect(try await resolver.resolve(host: "::1", port: 5).get() == [try SocketAddress(ipAddress: "::1", port: 5)])
        await #expect(throws: DNSResolutionError.noServers(host: "example.org")) {
            try await resolver.resolve(host: "example.org", port: 5).get()
        }
        await sockets.shutdown()
    }

    @Test func anInvalidNameFailsBeforeAnyQuery() async throws {
        let sockets = TestSockets()
        let server = try await FakeDNSServer(group: sockets.group, behavior: Self.answersBoth)
        let resolver = DNSResolver(servers: [server.address], sockets: sockets.factory)
        await #expect {
            try await resolver.resolve(host: "bad..name", port: 5).get()
        } throws: { error in
            guard case .invalidName(let nameError)? = error as? DNSResolutionError else { return false }
            return nameError.name == "bad..name"
        }
        #expect(server.queries.isEmpty)
        await server.close()
        await sockets.shutdown()
    }

    @Test func everyQuerySocketComesFromTheFactory() async throws {
        let sockets = TestSockets()
        let server = try await FakeDNSServer(group: sockets.group) { query, transport in
            Self.answersBoth(query, transport).map { reply in
                var slow = reply
                slow.delay = .milliseconds(300)
                return slow
            }
        }
        let resolver = DNSResolver(servers: [server.address], sockets: sockets.factory)
        let pending = resolver.resolve(host: "count.example.org", port: 1)
        for _ in 0..<100 where server.queries.count < 2 { try await Task.sleep(for: .milliseconds(5)) }
        // One UDP socket per record type, opened (and tracked) by the factory.
        #expect(sockets.factory.liveSocketCount == 2)
        _ = try await pending.get()
        for _ in 0..<100 where sockets.factory.liveSocketCount > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(sockets.factory.liveSocketCount == 0)
        await server.close()
        await sockets.shutdown()
    }
}
