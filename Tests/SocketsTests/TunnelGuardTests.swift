import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import Sockets

/// An interface event source the test drives by hand (stands in for the kernel monitor).
final class ScriptedInterfaceSource: InterfaceEventSource {
    private let box: NIOLockedValueBox<(initial: [InterfaceState], handler: (@Sendable (InterfaceEvent) -> Void)?, starts: Int)>

    init(initial: [InterfaceState]) {
        box = NIOLockedValueBox((initial, nil, 0))
    }

    var startCount: Int { box.withLockedValue { $0.starts } }

    func start(handler: @escaping @Sendable (InterfaceEvent) -> Void) throws {
        let initial = box.withLockedValue { state -> [InterfaceState] in
            state.handler = handler
            state.starts += 1
            return state.initial
        }
        handler(InterfaceEvent(.resync(initial, reason: .initial), at: .now()))
    }

    func snapshot() -> [InterfaceState] { box.withLockedValue { $0.initial } }

    func stop() { box.withLockedValue { $0.handler = nil } }

    /// Delivers a change as the monitor thread would: synchronously, stamped now.
    func emit(_ change: InterfaceChange) {
        let handler = box.withLockedValue { $0.handler }
        handler?(InterfaceEvent(change, at: .now()))
    }
}

/// Collects what the guard reports to subscribers.
final class AvailabilityLog: Sendable {
    private let box = NIOLockedValueBox<[TunnelAvailability]>([])
    var all: [TunnelAvailability] { box.withLockedValue { $0 } }
    var last: TunnelAvailability? { all.last }
    func record(_ availability: TunnelAvailability) { box.withLockedValue { $0.append(availability) } }
}

func interface(
    _ name: String, index: Int, up: Bool = true, carrier: Bool = true, addresses: [String]
) -> InterfaceState {
    InterfaceState(
        name: name, index: index, isUp: up, isRunning: up && carrier, hasCarrier: carrier,
        addresses: addresses.map {
            InterfaceAddress(address: try! SocketAddress(ipAddress: $0, port: 0), prefixLength: $0.contains(":") ? 128 : 8)
        })
}

@Suite(.serialized) struct TunnelGuardTests {
    /// Real sockets pinned to `lo` through the factory: listeners on 127.0.0.1 and ::1, a client and the
    /// accepted connection.
    /// Records what reaches the application: bytes, and whether the kill switch retired the socket.
    final class ApplicationSide: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let retired = NIOLockedValueBox(false)
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is SocketRetiredEvent { retired.withLockedValue { $0 = true } }
        }
    }

    static func liveLoopbackChannels(_ factory: SocketFactory, application: ApplicationSide? = nil) async throws -> [any Channel] {
        let listeners = try await factory.listenTCP(port: 0) { _ in factory.group.next().makeSucceededVoidFuture() }.get()
        let port = listeners[0].localAddress!.port!
        let target = listeners[0].localAddress!.ipAddress!
        let client = try await factory.connectTCP(to: try SocketAddress(ipAddress: target, port: port)) { channel in
            guard let application else { return channel.eventLoop.makeSucceededVoidFuture() }
            return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(application) }
        }.get()
        return listeners + [client]
    }

    /// After a kill: listeners are closed, and the established connection is retired — the application was
    /// told, the kernel still holds the socket. Then ends the connection so the test leaves nothing behind.
    static func expectTakenFromApplication(_ channels: [any Channel], _ application: ApplicationSide) async throws {
        for listener in channels.dropLast() { try await listener.closeFuture.get() }
        for _ in 0..<100 where !application.retired.withLockedValue({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(application.retired.withLockedValue { $0 }, "the application was not told its connection was retired")
        try await channels.last!.close()
    }

    static func loopbackState(addresses: [String] = ["127.0.0.1", "::1"]) -> InterfaceState {
        interface("lo", index: Int(if_nametoindex("lo")), addresses: addresses)
    }

    @Test func carrierLossClosesEverySocketOnTheInterfaceOnTheMonitorThread() async throws {
        let capture = LogCapture()
        let sockets = TestSockets(policy: .bound(interfacePatterns: ["lo"]))
        let source = ScriptedInterfaceSource(initial: [Self.loopbackState()])
        let tunnel = TunnelGuard(sockets: sockets.factory, monitor: source, logger: capture.logger())
        let reports = AvailabilityLog()
        tunnel.onChange { reports.record($0) }
        try tunnel.start()
        #expect(tunnel.currentUsable().map(\.name) == ["lo"])
        #expect(tunnel.availability.isAvailable)

        let application = ApplicationSide()
        let channels = try await Self.liveLoopbackChannels(sockets.factory, application: application)
        #expect(sockets.factory.liveSocketCount >= 3)

        let down = Self.loopbackState().with(isRunning: false, hasCarrier: false)
        source.emit(.linkDown(down, reason: .carrierLost))

        // The kill happened inside emit (synchronously); listeners finish closing on their event loop.
        let kill = try #require(tunnel.lastKill)
        #expect(kill.interface == "lo" && kill.reason == "carrier lost")
        #expect(kill.latencyMicroseconds < 50_000)
        let connection = channels.last!
        for listener in channels.dropLast() {
            try await listener.closeFuture.get()
            #expect(!listener.isActive)
        }
        // The established connection is retired, not closed: the application is told at once, and the kernel
        // keeps the socket (still pinned) so that nothing answers the peer from outside the tunnel.
        for _ in 0..<100 where !application.retired.withLockedValue({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(application.retired.withLockedValue { $0 })
        #expect(connection.isActive)
        #expect(tunnel.currentUsable().isEmpty)

        // The tunnel is back: the retired connections send their FIN through it and end.
        source.emit(.linkUp(Self.loopbackState()))
        let back = try #require(tunnel.currentUsable().first)
        #expect(sockets.factory.finishRetired(on: back) >= 1)
        try await connection.closeFuture.get()
        for _ in 0..<200 where sockets.factory.liveSocketCount > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(sockets.factory.liveSocketCount == 0)

        guard case .unavailable(let lost, let reason, let since)? = reports.all.first(where: { !$0.isAvailable }) else {
            Issue.record("expected unavailable, got \(reports.all)")
            return
        }
        #expect(lost == "lo" && reason == "carrier lost")
        #expect(since == kill.eventTimestamp)

        // Logged once the closes completed on the event loop: give it a moment.
        for _ in 0..<100 where !capture.messages.contains(where: { $0.text.hasPrefix("kill switch:") }) {
            try await Task.sleep(for: .milliseconds(10))
        }
        let line = try #require(capture.messages.first { $0.text.hasPrefix("kill switch:") })
        #expect(line.level == .notice)
        #expect(line.text.wholeMatch(of: /kill switch: lo lost \(carrier lost\); closed \d+ sockets in \d+ µs/) != nil,
                "log line: \(line.text)")
        print("kill switch latency (scripted event → closes issued): \(kill.latencyMicroseconds) µs, sockets: \(kill.socketsClosed.map(String.init) ?? "?")")
        await sockets.shutdown()
    }

    @Test func losingOneAddressKillsSocketsButKeepsTheTunnelAvailable() async throws {
        let sockets = TestSockets(policy: .bound(interfacePatterns: ["lo"]))
        let source = ScriptedInterfaceSource(initial: [Self.loopbackState()])
        let tunnel = TunnelGuard(sockets: sockets.factory, monitor: source, logger: Logger(label: "test"))
        let reports = AvailabilityLog()
        tunnel.onChange { reports.record($0) }
        try tunnel.start()
        let application = ApplicationSide()
        let channels = try await Self.liveLoopbackChannels(sockets.factory, application: application)

        let remaining = Self.loopbackState(addresses: ["127.0.0.1"])
        let gone = InterfaceAddress(address: try SocketAddress(ipAddress: "::1", port: 0), prefixLength: 128)
        source.emit(.addressRemoved(remaining, gone))

        #expect(tunnel.lastKill?.reason == "address ::1 removed")
        try await Self.expectTakenFromApplication(channels, application)
        guard case .available(let interfaces, let changed)? = reports.last else {
            Issue.record("expected available, got \(reports.all)")
            return
        }
        #expect(interfaces.map(\.name) == ["lo"])
        #expect(interfaces.first?.addresses == [try SocketAddress(ipAddress: "127.0.0.1", port: 0)])
        #expect(changed == ["lo"])
        await sockets.shutdown()
    }

    @Test func startsUnavailableWithoutATunnelThenReportsItComingUpAndChangingAddress() async throws {
        let capture = LogCapture()
        let sockets = TestSockets(policy: .bound(interfacePatterns: ["wg*"]))
        let source = ScriptedInterfaceSource(initial: [Self.loopbackState(), interface("eth0", index: 2, addresses: ["192.0.2.5"])])
        let tunnel = TunnelGuard(sockets: sockets.factory, monitor: source, logger: capture.logger())
        let reports = AvailabilityLog()
        tunnel.onChange { reports.record($0) }
        try tunnel.start()
        guard case .unavailable(let lost, let reason, _) = tunnel.availability else {
            Issue.record("expected unavailable at start, got \(tunnel.availability)")
            return
        }
        #expect(lost == "wg*")
        #expect(reason.contains("no interface allowed by the policy"))
        #expect(tunnel.currentUsable().isEmpty)

        // Up without an address is not usable yet; a link-local address does not count either.
        source.emit(.linkUp(interface("wg0", index: 40, addresses: [])))
        source.emit(.addressAdded(interface("wg0", index: 40, addresses: ["fe80::1"]), InterfaceStateTableTests.address("fe80::1")))
        #expect(tunnel.currentUsable().isEmpty)
        source.emit(.addressAdded(
            interface("wg0", index: 40, addresses: ["fe80::1", "10.64.0.2"]), InterfaceStateTableTests.address("10.64.0.2")))
        #expect(tunnel.currentUsable().map(\.name) == ["wg0"])
        #expect(reports.last == .available(interfaces: tunnel.currentUsable(), changed: ["wg0"]))
        #expect(capture.messages.contains { $0.text == "tunnel up: wg0 10.64.0.2" && $0.level == .notice })

        // The tunnel reconnects with a new address: old one removed (kill), new one added (identity rotation).
        source.emit(.addressRemoved(interface("wg0", index: 40, addresses: ["fe80::1"]), InterfaceStateTableTests.address("10.64.0.2")))
        #expect(tunnel.lastKill?.reason == "last usable address 10.64.0.2 removed")
        #expect(!tunnel.availability.isAvailable)
        source.emit(.addressAdded(
            interface("wg0", index: 40, addresses: ["fe80::1", "10.64.0.9"]), InterfaceStateTableTests.address("10.64.0.9")))
        #expect(tunnel.currentUsable().first?.addresses == [try SocketAddress(ipAddress: "10.64.0.9", port: 0)])
        #expect(capture.messages.contains { $0.text == "tunnel up: wg0 10.64.0.9" })
        // The kill-switch line is logged once the event loops have closed the sockets: allow it a moment.
        var logged = false
        for _ in 0..<100 where !logged {
            logged = capture.messages.contains {
                $0.text.hasPrefix("kill switch: wg0 lost (last usable address 10.64.0.2 removed); closed ")
            }
            if !logged { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(logged)
        // Other interfaces never matter: eth0 going down changes nothing.
        let before = reports.all.count
        source.emit(.linkDown(interface("eth0", index: 2, up: false, addresses: ["192.0.2.5"]), reason: .adminDown))
        #expect(reports.all.count == before)
        await sockets.shutdown()
    }

    @Test func aMonitorFailureFailsClosed() async throws {
        let sockets = TestSockets(policy: .bound(interfacePatterns: ["lo"]))
        let source = ScriptedInterfaceSource(initial: [Self.loopbackState()])
        let tunnel = TunnelGuard(sockets: sockets.factory, monitor: source, logger: Logger(label: "test"))
        try tunnel.start()
        let application = ApplicationSide()
        let channels = try await Self.liveLoopbackChannels(sockets.factory, application: application)
        source.emit(.failed(reason: "recv(AF_NETLINK): Bad file descriptor (errno 9)"))
        #expect(tunnel.currentUsable().isEmpty)
        #expect(tunnel.lastKill?.reason == "interface monitor failed: recv(AF_NETLINK): Bad file descriptor (errno 9)")
        try await Self.expectTakenFromApplication(channels, application)
        // Even a later "up" cannot be trusted any more.
        source.emit(.linkUp(Self.loopbackState()))
        #expect(tunnel.currentUsable().isEmpty)
        await sockets.shutdown()
    }

    @Test func anOverrunResyncKillsWhatDisappearedUnseen() async throws {
        let sockets = TestSockets(policy: .bound(interfacePatterns: ["lo"]))
        let source = ScriptedInterfaceSource(initial: [Self.loopbackState()])
        let tunnel = TunnelGuard(sockets: sockets.factory, monitor: source, logger: Logger(label: "test"))
        try tunnel.start()
        let application = ApplicationSide()
        let channels = try await Self.liveLoopbackChannels(sockets.factory, application: application)
        source.emit(.resync([Self.loopbackState().with(isUp: false, isRunning: false)], reason: .overrun))
        #expect(tunnel.lastKill?.reason == "admin down, found on resync after overrun")
        try await Self.expectTakenFromApplication(channels, application)
        await sockets.shutdown()
    }

    @Test func theUnboundPolicyLeavesTheGuardInert() async throws {
        let sockets = TestSockets(policy: .unbound)
        let source = ScriptedInterfaceSource(initial: [])
        let tunnel = TunnelGuard(sockets: sockets.factory, monitor: source, logger: Logger(label: "test"))
        try tunnel.start()
        #expect(source.startCount == 0)
        #expect(tunnel.availability == .available(interfaces: [], changed: []))
        await sockets.shutdown()
    }
}
