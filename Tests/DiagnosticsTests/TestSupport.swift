import Foundation
import NIOCore
import Sockets
@testable import Diagnostics

/// An interface as the kernel would report it; `up: false` is admin down, `carrier: false` a lost carrier.
func interface(_ name: String, index: Int, up: Bool = true, carrier: Bool = true, addresses: [String] = []) -> InterfaceState {
    InterfaceState(
        name: name, index: index, isUp: up, isRunning: up && carrier, hasCarrier: carrier,
        addresses: addresses.map { text in
            InterfaceAddress(address: try! SocketAddress(ipAddress: text, port: 0),
                             prefixLength: text.contains(":") ? 64 : 24)
        })
}

func dnsServer(_ text: String) -> SocketAddress { try! SocketAddress(ipAddress: text, port: 53) }

/// A typical healthy machine: a physical eth0 with the real address, a WireGuard tunnel wg0, loopback.
enum Machine {
    static let loopback = interface("lo", index: 1, addresses: ["127.0.0.1", "::1"])
    static let ethernet = interface("eth0", index: 2, addresses: ["192.0.2.2", "fe80::1"])
    static let tunnel = interface("wg0", index: 3, addresses: ["10.64.0.2"])
    static let interfaces = [loopback, ethernet, tunnel]

    static let bound = DoctorConfiguration(policy: .bound(interfacePatterns: ["wg0"]), dnsServers: [dnsServer("10.64.0.1")])

    static func route(_ destination: String, via device: String, gateway: String? = nil) -> RouteObservation {
        .route(KernelRoute(destination: destination, device: device, gateway: gateway))
    }

    static let healthyFirewall = FirewallTable(comparison: .matching, allowedInterfaces: ["wg0"],
                                               identity: "mark 0x42525700", droppedPackets: 0, droppedBytes: 0)

    /// Every check passes on this snapshot with `bound`.
    static var healthy: SystemSnapshot {
        SystemSnapshot(
            interfaces: interfaces,
            resolvConf: .parsed(ResolvConf.parse("nameserver 192.0.2.1\n")),
            routes: ["10.64.0.1": route("10.64.0.1", via: "wg0")],
            firewall: .active(healthyFirewall),
            runtime: .notRunning)
    }

    static func report(
        policy: NetworkPolicy = .bound(interfacePatterns: ["wg0"]), available: Bool = true,
        external: String? = nil, leakAlarm: String? = nil, kills: ReportedKillSwitch = ReportedKillSwitch(count: 0)
    ) -> RuntimeReport {
        RuntimeReport(
            pid: 4242, started: Date(timeIntervalSince1970: 1_700_000_000),
            updated: Date(timeIntervalSince1970: 1_700_000_060), policy: ReportedPolicy(policy),
            tunnel: available
                ? ReportedTunnel(available: true, interfaces: [ReportedInterface(name: "wg0", addresses: ["10.64.0.2"])])
                : ReportedTunnel(available: false, interfaces: [], unavailableReason: "wg0: carrier lost"),
            lastExternalAddress: external.map {
                ReportedExternalAddress(address: $0, reporter: "tracker udp://tracker.example:6969",
                                        at: Date(timeIntervalSince1970: 1_700_000_030))
            },
            leakAlarm: leakAlarm, killSwitch: kills)
    }
}

/// A fresh directory under the system's temporary directory, removed by `remove()`.
struct ScratchDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "burrow-diagnostics-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}
