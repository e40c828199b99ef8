#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import Diagnostics
import Firewall
import SafeText
import Sockets

/// `burrow doctor`: checks that this machine keeps Burrow's traffic in the tunnel, and says what to fix.
struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that this machine keeps Burrow's traffic in the tunnel, and explain what to fix.",
        discussion: """
            Checks the binding, the bound interfaces, the firewall layer, the DNS servers' routes (and, with \
            --probe-name, a live query through the tunnel), IPv6 outside the tunnel, and what a running burrow \
            reports (the address the swarm sees, the leak alarm, the kill switch). Run it as root to include \
            the firewall. Exit status: 0 when no check finds a problem (warnings allowed), 1 otherwise.
            """)

    @OptionGroup var network: NetworkOptions

    @Flag(help: "Print the results as JSON instead of one line per check.")
    var json = false

    @Option(help: ArgumentHelp("A name to resolve live through the tunnel with each DNS server (default: no live query).",
                               valueName: "host"))
    var probeName: String?

    @Option(help: ArgumentHelp("Runtime report of a running burrow (default \(RuntimeReport.defaultPath())).",
                               valueName: "path"))
    var statusFile: String?

    func validate() throws {
        if let probeName {
            do { _ = try DNSName(parsing: probeName) } catch { throw ValidationError("--probe-name: \(error)") }
        }
    }

    func run() async throws {
        // Unlike `download`, a missing binding is not refused here: it is the first thing the doctor reports.
        let settings = try network.resolve(requireNetworkChoice: false)
        let configuration = DoctorConfiguration(
            policy: settings.policyWasChosen ? settings.policy : nil, dnsServers: settings.dnsServers,
            listenPort: settings.port, probeName: probeName)
        // As root Burrow marks its sockets; routes and probes then see what Burrow's packets would.
        let mark: UInt32? = geteuid() == 0 ? SocketMark.burrow : nil
        let collector = SystemSnapshotCollector(
            interfaces: KernelInterfaceListing(),
            routes: IPRouteLookup(mark: mark),
            firewall: FirewallLayerReader(policy: configuration.policy, match: settings.firewallMatch ?? .burrowMark),
            dnsProbe: SocketSeamDNSProbe(socketMark: mark),
            runtimeReportPath: statusFile ?? RuntimeReport.defaultPath())
        let snapshot: SystemSnapshot
        do {
            snapshot = try await collector.collect(for: configuration)
        } catch {
            throw CLIError("burrow doctor: cannot read the interface table: \(error)")
        }
        let report = CheckSuite.run(on: snapshot, configuration: configuration)
        // The report quotes what the running client recorded (a leak alarm names the tracker that saw us).
        print(json ? try report.json() : ControlCharacters.escapeLines(report.humanReadable()))
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}

/// The firewall layer's own status (`burrow firewall status`), as the doctor's snapshot needs it.
struct FirewallLayerReader: FirewallStatusReading {
    /// nil: no binding configured.
    let policy: NetworkPolicy?
    let match: FirewallMatch

    func observe() async -> FirewallObservation {
        let controller = FirewallController()
        guard let policy, let spec = try? FirewallSpec(policy: policy, match: match) else {
            return uncompared(controller)
        }
        let status: FirewallStatus
        do { status = try controller.status(expected: spec) } catch { return .unreadable("\(error)") }
        let dropped = status.leakAttempts
        switch status.state {
        case .notInstalled:
            return .absent
        case .matching:
            return .active(FirewallTable(
                comparison: .matching, allowedInterfaces: spec.allowedInterfaces, identity: spec.match.description,
                droppedPackets: dropped.packets, droppedBytes: dropped.bytes))
        case .differs(let differences):
            return .active(FirewallTable(
                comparison: .differs(differences), allowedInterfaces: [],
                droppedPackets: status.counters.isEmpty ? nil : dropped.packets,
                droppedBytes: status.counters.isEmpty ? nil : dropped.bytes))
        }
    }

    /// Nothing configured to compare with (unbound, or no --bind): only whether a table is loaded and what
    /// it allows, read from the live table.
    private func uncompared(_ controller: FirewallController) -> FirewallObservation {
        #if os(Linux)
        guard NetAdminCapability.isHeld() else {
            return .unreadable("\(FirewallError.needsNetAdmin(action: "reading table inet burrow", detail: nil))")
        }
        let live: LiveTable?
        do { live = try controller.nftables.liveTable() } catch { return .unreadable("\(error)") }
        guard let live else { return .absent }
        let rules = live.rules[BurrowTable.chain] ?? []
        var allowed: [String] = []
        var identities: [String] = []
        for rule in rules {
            switch rule {
            case .allowInterface(let name): allowed.append(name)
            case .ignoreUnless(let match): identities.append(match.description)
            default: break
            }
        }
        return .active(FirewallTable(
            comparison: .notCompared, allowedInterfaces: allowed,
            identity: identities.isEmpty ? nil : identities.joined(separator: " and "),
            droppedPackets: live.leakAttempts.packets, droppedBytes: live.leakAttempts.bytes))
        #else
        return .unreadable("without --bind there is nothing to compare the pf anchor with")
        #endif
    }
}
