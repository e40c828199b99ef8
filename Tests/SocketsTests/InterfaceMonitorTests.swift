#if os(Linux)
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing
@testable import Sockets

/// Root-only: the real rtnetlink monitor against a throwaway interface. Under CI=true these tests run (and
/// fail when not root) instead of being skipped silently.
enum RootTests {
    static var isRoot: Bool { getuid() == 0 }
    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }
    static var shouldRun: Bool { isRoot || isCI }

    static func requireRoot() throws {
        try #require(isRoot, "interface monitor tests need root (they create network interfaces); CI=true forbids skipping them")
    }

    /// Runs `ip` with `arguments`; throws with its stderr on failure.
    @discardableResult
    static func ip(_ arguments: String...) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        if !FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") {
            process.executableURL = URL(fileURLWithPath: "/sbin/ip")
        }
        process.arguments = arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        process.waitUntilExit()
        let stdout = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw TestInterfaceError(command: "ip " + arguments.joined(separator: " "), output: stderr)
        }
        return stdout
    }
}

struct TestInterfaceError: Error, CustomStringConvertible {
    let command: String
    let output: String
    var description: String { "\(command) failed: \(output)" }
}

/// A throwaway interface: a dummy when the kernel has the module, else one end of a veth pair (whose peer
/// also lets a test take the carrier away).
struct TestInterface {
    let name: String
    let peer: String?

    static func create(_ name: String, needCarrierControl: Bool = false) throws -> TestInterface {
        _ = try? RootTests.ip("link", "del", name)
        if !needCarrierControl, (try? RootTests.ip("link", "add", name, "type", "dummy")) != nil {
            return TestInterface(name: name, peer: nil)
        }
        let peer = name + "p"
        try RootTests.ip("link", "add", name, "type", "veth", "peer", "name", peer)
        return TestInterface(name: name, peer: peer)
    }

    func up() throws {
        if let peer { try RootTests.ip("link", "set", peer, "up") }
        try RootTests.ip("link", "set", name, "up")
    }

    func remove() {
        _ = try? RootTests.ip("link", "del", name)
    }
}

/// Events received from the monitor, with waiting.
final class EventRecorder: Sendable {
    private let box = NIOLockedValueBox<[InterfaceEvent]>([])
    private let threads = NIOLockedValueBox<Set<String>>([])

    var events: [InterfaceEvent] { box.withLockedValue { $0 } }
    var threadNames: Set<String> { threads.withLockedValue { $0 } }

    func record(_ event: InterfaceEvent) {
        box.withLockedValue { $0.append(event) }
        // The kernel's name for the calling thread.
        let comm = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "?"
        let name = comm.trimmingCharacters(in: .whitespacesAndNewlines)
        threads.withLockedValue { _ = $0.insert(name) }
    }

    /// Waits up to `timeout` for an event (after index `from`) that `matches`.
    func waitFor(
        _ what: String, after from: Int = 0, timeout: Duration = .seconds(5),
        _ matches: (InterfaceChange) -> Bool
    ) async throws -> InterfaceEvent {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let current = events
            if from < current.count, let hit = current[from...].first(where: { matches($0.change) }) { return hit }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw TestInterfaceError(command: "waiting for \(what)", output: "not seen in \(timeout); got \(events.map(\.change))")
    }
}

@Suite(.serialized, .enabled(if: RootTests.shouldRun, "needs root (set CI=true to make it mandatory)"))
struct InterfaceMonitorTests {
    @Test func reportsLinkAddressAndRouteChangesOfARealInterface() async throws {
        try RootTests.requireRoot()
        let test = try TestInterface.create("bw-test0")
        defer { test.remove() }
        let monitor = InterfaceMonitor()
        let recorder = EventRecorder()
        try monitor.start { recorder.record($0) }
        defer { monitor.stop() }

        // The initial resync arrives before start returns and lists the (still down) interface.
        guard case .resync(let initial, .initial)? = recorder.events.first?.change else {
            Issue.record("first event should be the initial resync: \(recorder.events)")
            return
        }
        let created = try #require(initial.first { $0.name == "bw-test0" })
        #expect(!created.isOperational)
        #expect(initial.contains { $0.name == "lo" && $0.isOperational })

        try test.up()
        let up = try await recorder.waitFor("link up") { if case .linkUp(let s) = $0 { s.name == "bw-test0" } else { false } }
        #expect(up.timestamp <= MonotonicTimestamp.now())

        var mark = recorder.events.count
        try RootTests.ip("addr", "add", "10.251.0.1/24", "dev", "bw-test0")
        let added = try await recorder.waitFor("IPv4 address added", after: mark) {
            if case .addressAdded(let s, let a) = $0 { s.name == "bw-test0" && a.description == "10.251.0.1" } else { false }
        }
        if case .addressAdded(_, let address) = added.change { #expect(address.prefixLength == 24) }

        try RootTests.ip("-6", "addr", "add", "fd51::1/64", "dev", "bw-test0", "nodad")
        _ = try await recorder.waitFor("IPv6 address added", after: mark) {
            if case .addressAdded(let s, let a) = $0 { s.name == "bw-test0" && a.description == "fd51::1" && a.isUsableSource } else { false }
        }

        // A default route in a side table (never the main one: this is the test machine's network).
        mark = recorder.events.count
        try RootTests.ip("route", "add", "default", "via", "10.251.0.2", "dev", "bw-test0", "table", "251")
        _ = try await recorder.waitFor("default route", after: mark) {
            if case .defaultRouteChanged(let s) = $0 { s.name == "bw-test0" && s.hasDefaultRouteIPv4 } else { false }
        }
        #expect(monitor.snapshot().first { $0.name == "bw-test0" }?.hasDefaultRouteIPv4 == true)

        mark = recorder.events.count
        try RootTests.ip("addr", "del", "10.251.0.1/24", "dev", "bw-test0")
        _ = try await recorder.waitFor("IPv4 address removed", after: mark) {
            if case .addressRemoved(let s, let a) = $0 { s.name == "bw-test0" && a.description == "10.251.0.1" } else { false }
        }
        #expect(monitor.snapshot().first { $0.name == "bw-test0" }?.addresses.map(\.description) == ["fd51::1"]
                || monitor.snapshot().first { $0.name == "bw-test0" }?.addresses.map(\.description).contains("fd51::1") == true)

        mark = recorder.events.count
        try RootTests.ip("link", "set", "bw-test0", "down")
        _ = try await recorder.waitFor("admin down", after: mark) {
            if case .linkDown(let s, .adminDown) = $0 { s.name == "bw-test0" } else { false }
        }

        mark = recorder.events.count
        test.remove()
        _ = try await recorder.waitFor("removed", after: mark) {
            if case .linkDown(let s, .removed) = $0 { s.name == "bw-test0" } else { false }
        }
        #expect(!monitor.snapshot().contains { $0.name == "bw-test0" })
        #expect(recorder.threadNames.contains(InterfaceMonitor.threadName))
        // Timestamps are monotonic in delivery order.
        let stamps = recorder.events.dropFirst().map(\.timestamp)
        #expect(zip(stamps, stamps.dropFirst()).allSatisfy { $0 <= $1 })
    }

    @Test func reportsCarrierLoss() async throws {
        try RootTests.requireRoot()
        let test = try TestInterface.create("bw-test1", needCarrierControl: true)
        defer { test.remove() }
        try test.up()
        let monitor = InterfaceMonitor()
        let recorder = EventRecorder()
        try monitor.start { recorder.record($0) }
        defer { monitor.stop() }
        if monitor.snapshot().first(where: { $0.name == "bw-test1" })?.isOperational != true {
            _ = try await recorder.waitFor("link up") { if case .linkUp(let s) = $0 { s.name == "bw-test1" } else { false } }
        }
        let mark = recorder.events.count
        try RootTests.ip("link", "set", try #require(test.peer), "down")
        let lost = try await recorder.waitFor("carrier lost", after: mark) {
            if case .linkDown(let s, .carrierLost) = $0 { s.name == "bw-test1" } else { false }
        }
        if case .linkDown(let state, _) = lost.change {
            #expect(state.isUp && !state.hasCarrier)
        }
    }

    @Test func stopEndsTheThreadAndTheMonitorCanStartAgain() async throws {
        try RootTests.requireRoot()
        let monitor = InterfaceMonitor()
        let recorder = EventRecorder()
        try monitor.start { recorder.record($0) }
        #expect(throws: InterfaceMonitorError.self) { try monitor.start { _ in } }
        monitor.stop()
        let stoppedAt = recorder.events.count
        let test = try TestInterface.create("bw-test2")
        defer { test.remove() }
        try test.up()
        try await Task.sleep(for: .milliseconds(200))
        #expect(recorder.events.count == stoppedAt, "events delivered after stop: \(recorder.events[stoppedAt...].map(\.change))")

        let again = EventRecorder()
        try monitor.start { again.record($0) }
        defer { monitor.stop() }
        #expect(monitor.snapshot().contains { $0.name == "bw-test2" })
    }

    /// End to end: kernel event → monitor thread → guard → sockets closed. Measures the kill latency.
    @Test func theKillSwitchClosesSocketsWhenTheRealCarrierGoes() async throws {
        try RootTests.requireRoot()
        let test = try TestInterface.create("bw-test3", needCarrierControl: true)
        defer { test.remove() }
        try test.up()
        try RootTests.ip("addr", "add", "10.253.0.1/24", "dev", "bw-test3")

        let capture = LogCapture()
        let sockets = TestSockets(policy: .bound(interfacePatterns: ["bw-test3"]))
        let monitor = InterfaceMonitor()
        let tunnel = TunnelGuard(sockets: sockets.factory, monitor: monitor, logger: capture.logger())
        try tunnel.start()
        defer { tunnel.stop() }
        // The address may still be on its way from the kernel when start returns.
        for _ in 0..<200 where tunnel.currentUsable().isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        #expect(tunnel.currentUsable().map(\.name) == ["bw-test3"])

        let listeners = try await sockets.factory.listenTCP(port: 0) { $0.eventLoop.makeSucceededVoidFuture() }.get()
        #expect(!listeners.isEmpty)
        try RootTests.ip("link", "set", try #require(test.peer), "down")
        for listener in listeners { try await listener.closeFuture.get() }
        // The closes complete on the event loop, possibly before the monitor thread records the kill.
        for _ in 0..<100 where tunnel.lastKill == nil { try await Task.sleep(for: .milliseconds(5)) }
        let kill = try #require(tunnel.lastKill)
        #expect(kill.interface == "bw-test3" && kill.reason == "carrier lost")
        #expect(!tunnel.availability.isAvailable)
        for _ in 0..<100 where !capture.messages.contains(where: { $0.text.hasPrefix("kill switch:") }) {
            try await Task.sleep(for: .milliseconds(10))
        }
        let line = try #require(capture.messages.first { $0.text.hasPrefix("kill switch:") })
        #expect(line.text.wholeMatch(of: /kill switch: bw-test3 lost \(carrier lost\); closed \d+ sockets in \d+ µs/) != nil)
        print("kill switch latency (kernel event → closes issued): \(kill.latencyMicroseconds) µs; log: \(line.text)")
        await sockets.shutdown()
    }
}
#endif
