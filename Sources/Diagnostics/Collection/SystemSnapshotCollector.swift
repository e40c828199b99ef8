#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore
import Sockets

/// Gathers a `SystemSnapshot` from the live system, through replaceable sources.
public struct SystemSnapshotCollector: Sendable {
    public var interfaces: any InterfaceListing
    public var routes: any RouteLookup
    public var firewall: any FirewallStatusReading
    public var dnsProbe: any DNSProbing
    public var resolvConfPath: String
    public var runtimeReportPath: String
    /// Whether a process id belongs to a live process (the runtime report's writer).
    public var isProcessAlive: @Sendable (Int32) -> Bool

    public init(
        interfaces: any InterfaceListing, routes: any RouteLookup, firewall: any FirewallStatusReading,
        dnsProbe: any DNSProbing, resolvConfPath: String = "/etc/resolv.conf",
        runtimeReportPath: String = RuntimeReport.defaultPath(),
        isProcessAlive: @escaping @Sendable (Int32) -> Bool = SystemSnapshotCollector.processExists
    ) {
        self.interfaces = interfaces
        self.routes = routes
        self.firewall = firewall
        self.dnsProbe = dnsProbe
        self.resolvConfPath = resolvConfPath
        self.runtimeReportPath = runtimeReportPath
        self.isProcessAlive = isProcessAlive
    }

    /// Reads everything the checks need for `configuration`. Throws only when the interface table cannot
    /// be read (nothing meaningful can be said without it); every other failure becomes part of the snapshot.
    public func collect(for configuration: DoctorConfiguration) async throws -> SystemSnapshot {
        var snapshot = SystemSnapshot(interfaces: try interfaces.interfaces())
        do {
            snapshot.resolvConf = .parsed(try ResolvConf.load(path: resolvConfPath))
        } catch {
            snapshot.resolvConf = .unavailable("\(error)")
        }
        let servers = snapshot.dnsServers(for: configuration)
        for server in servers {
            snapshot.routes[AddressText.key(server)] = routes.route(to: server)
        }
        if let name = configuration.probeName, let policy = configuration.policy, case .bound = policy {
            snapshot.dnsQueries = await query(name, servers: servers, policy: policy)
        }
        snapshot.firewall = await firewall.observe()
        snapshot.runtime = observeRuntime()
        return snapshot
    }

    /// Asks every server at once: the doctor waits for the slowest timeout, not for their sum.
    private func query(_ name: String, servers: [SocketAddress], policy: NetworkPolicy) async -> [String: DNSQueryOutcome] {
        let probe = dnsProbe
        return await withTaskGroup(of: (String, DNSQueryOutcome).self) { group in
            for server in servers {
                group.addTask { (AddressText.key(server), await probe.query(name, server: server, policy: policy)) }
            }
            var outcomes: [String: DNSQueryOutcome] = [:]
            for await (key, outcome) in group { outcomes[key] = outcome }
            return outcomes
        }
    }

    private func observeRuntime() -> RuntimeObservation {
        do {
            let report = try RuntimeReport.read(from: runtimeReportPath)
            return isProcessAlive(report.pid) ? .running(report) : .stale(report)
        } catch let error as RuntimeReportError where error.isMissing {
            return .notRunning
        } catch {
            return .unreadable("\(error)")
        }
    }

    /// kill(pid, 0): delivers nothing, only asks whether the process exists (EPERM: it does, as another user).
    public static let processExists: @Sendable (Int32) -> Bool = { pid in
        guard pid > 0 else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }
}
