import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Sockets
import Testing
@testable import Diagnostics

struct FixedInterfaces: InterfaceListing {
    let states: [InterfaceState]
    func interfaces() throws -> [InterfaceState] { states }
}

struct FixedRoutes: RouteLookup {
    let devices: [String: String]
    func route(to destination: SocketAddress) -> RouteObservation {
        let key = destination.ipAddress ?? ""
        guard let device = devices[key] else { return .failed("no route to \(key)") }
        return .route(KernelRoute(destination: key, device: device))
    }
}

struct FixedFirewall: FirewallStatusReading {
    let observation: FirewallObservation
    func observe() async -> FirewallObservation { observation }
}

/// Records which servers were asked, and answers from a table.
final class RecordingProbe: DNSProbing {
    let answers: [String: DNSQueryOutcome]
    private let asked = NIOLockedValueBox<[String]>([])

    init(answers: [String: DNSQueryOutcome]) { self.answers = answers }

    var servers: [String] { asked.withLockedValue { $0.sorted() } }

    func query(_ name: String, server: SocketAddress, policy: NetworkPolicy) async -> DNSQueryOutcome {
        asked.withLockedValue { $0.append(server.ipAddress ?? "") }
        return answers[server.ipAddress ?? ""] ?? .failed("unexpected server")
    }
}

@Suite struct SnapshotCollectorTests {
    func collector(
        scratch: ScratchDirectory, probe: RecordingProbe = RecordingProbe(answers: [:]),
        alive: @escaping @Sendable (Int32) -> Bool = { _ in true }
    ) throws -> SystemSnapshotCollector {
        try "nameserver 10.64.0.1\nnameserver 192.0.2.1\n".write(toFile: scratch.path + "/resolv.conf", atomically: true, encoding: .utf8)
        return SystemSnapshotCollector(
            interfaces: FixedInterfaces(states: Machine.interfaces),
            routes: FixedRoutes(devices: ["10.64.0.1": "wg0", "192.0.2.1": "eth0"]),
            firewall: FixedFirewall(observation: .active(Machine.healthyFirewall)),
            dnsProbe: probe, resolvConfPath: scratch.path + "/resolv.conf",
            runtimeReportPath: scratch.path + "/status.json", isProcessAlive: alive)
    }

    @Test func routesAndQueriesCoverExactlyTheServersInUse() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let probe = RecordingProbe(answers: ["10.64.0.1": .answered(addresses: ["93.184.215.14"]), "192.0.2.1": .failed("timed out")])
        let configuration = DoctorConfiguration(policy: .bound(interfacePatterns: ["wg0"]), probeName: "example.org")
        let snapshot = try await collector(scratch: scratch, probe: probe).collect(for: configuration)

        #expect(snapshot.routes == ["10.64.0.1": Machine.route("10.64.0.1", via: "wg0"), "192.0.2.1": Machine.route("192.0.2.1", via: "eth0")])
        #expect(probe.servers == ["10.64.0.1", "192.0.2.1"])
        #expect(snapshot.dnsQueries["192.0.2.1"] == .failed("timed out"))
        #expect(snapshot.firewall == .active(Machine.healthyFirewall))
        #expect(snapshot.runtime == .notRunning)

        let report = CheckSuite.run(on: snapshot, configuration: configuration)
        #expect(report.result(id: "dns-route")?.status == .problem)
        #expect(report.result(id: "dns-query")?.status == .warning)
    }

    @Test func configuredServersReplaceResolvConfAndNoProbeNameMeansNoQuery() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let probe = RecordingProbe(answers: [:])
        let snapshot = try await collector(scratch: scratch, probe: probe).collect(for: Machine.bound)
        #expect(Array(snapshot.routes.keys) == ["10.64.0.1"])
        #expect(probe.servers.isEmpty)
        #expect(snapshot.dnsQueries.isEmpty)
    }

    @Test func unboundNeverQueries() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let probe = RecordingProbe(answers: [:])
        _ = try await collector(scratch: scratch, probe: probe)
            .collect(for: DoctorConfiguration(policy: .unbound, probeName: "example.org"))
        #expect(probe.servers.isEmpty)
    }

    @Test func aReportOfALiveProcessIsRunningAndOfADeadOneStale() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let report = Machine.report(external: "198.51.100.7")
        try report.write(to: scratch.path + "/status.json")
        let live = try await collector(scratch: scratch, alive: { $0 == 4242 }).collect(for: Machine.bound)
        #expect(live.runtime == .running(report))
        let dead = try await collector(scratch: scratch, alive: { _ in false }).collect(for: Machine.bound)
        #expect(dead.runtime == .stale(report))
    }

    @Test func aCorruptReportIsUnreadableNotAbsent() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        try "not json".write(toFile: scratch.path + "/status.json", atomically: true, encoding: .utf8)
        let snapshot = try await collector(scratch: scratch).collect(for: Machine.bound)
        guard case .unreadable(let why) = snapshot.runtime else {
            Issue.record("expected .unreadable, got \(snapshot.runtime)")
            return
        }
        #expect(why.contains("status.json"))
    }

    @Test func aMissingResolvConfIsRecordedWithItsPath() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        var collector = try collector(scratch: scratch)
        collector.resolvConfPath = scratch.path + "/missing.conf"
        let snapshot = try await collector.collect(for: DoctorConfiguration(policy: .bound(interfacePatterns: ["wg0"])))
        guard case .unavailable(let why) = snapshot.resolvConf else {
            Issue.record("expected .unavailable, got \(snapshot.resolvConf)")
            return
        }
        #expect(why.contains("missing.conf"))
        #expect(snapshot.routes.isEmpty)
    }

    @Test func theProcessProbeKnowsThisProcessAndRejectsNonsense() {
        #expect(SystemSnapshotCollector.processExists(getpid()))
        #expect(!SystemSnapshotCollector.processExists(0))
        #expect(!SystemSnapshotCollector.processExists(-1))
    }
}

@Suite struct IPRouteLookupTests {
    @Test func parsesTheKernelsAnswer() {
        let json = #"[{"dst":"10.64.0.1","gateway":"192.0.2.1","dev":"eth0","prefsrc":"192.0.2.2","flags":[],"uid":0,"cache":[]}]"#
        #expect(IPRouteLookup.parse(json, destination: "10.64.0.1")
                == .route(KernelRoute(destination: "10.64.0.1", device: "eth0", gateway: "192.0.2.1", preferredSource: "192.0.2.2")))
    }

    @Test func parsesALocalRoute() {
        let json = #"[{"type":"local","dst":"127.0.0.53","dev":"lo","prefsrc":"127.0.0.1","flags":[],"uid":0,"cache":["local"]}]"#
        #expect(IPRouteLookup.parse(json, destination: "127.0.0.53")
                == .route(KernelRoute(destination: "127.0.0.53", device: "lo", preferredSource: "127.0.0.1", type: "local")))
    }

    @Test func rejectsOutputThatIsNotARoute() {
        guard case .failed(let why) = IPRouteLookup.parse("RTNETLINK answers", destination: "10.0.0.1") else {
            Issue.record("garbage parsed as a route")
            return
        }
        #expect(why.contains("not route JSON"))
        #expect(IPRouteLookup.parse("[]", destination: "10.0.0.1") == .failed("`ip route get 10.0.0.1` returned no route"))
    }

    @Test func withoutTheToolTheLookupSaysSo() throws {
        let lookup = IPRouteLookup(executable: nil, mark: nil)
        #expect(lookup.route(to: try SocketAddress(ipAddress: "10.0.0.1", port: 53))
                == .failed("the `ip` tool (iproute2) is not installed"))
    }

    @Test func asksTheRealKernelForLoopback() throws {
        let lookup = IPRouteLookup()
        try #require(lookup.executable != nil, "iproute2's ip is needed for this test")
        guard case .route(let route) = lookup.route(to: try SocketAddress(ipAddress: "127.0.0.1", port: 53)) else {
            Issue.record("no route to 127.0.0.1")
            return
        }
        #expect(route.device == "lo")
    }
}
