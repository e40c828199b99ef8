import Sockets
import Testing
@testable import Diagnostics

@Suite struct ExternalAddressCheckTests {
    let check = ExternalAddressCheck()

    func evaluate(_ runtime: RuntimeObservation) -> CheckResult {
        var snapshot = Machine.healthy
        snapshot.runtime = runtime
        return check.evaluate(snapshot, configuration: Machine.bound)
    }

    @Test func noReportMeansNotRunningAndIsNoProblem() {
        let result = evaluate(.notRunning)
        #expect(result.status == .ok)
        #expect(result.detail == "Burrow is not running")
    }

    @Test func theVPNExitAddressIsOk() {
        let result = evaluate(.running(Machine.report(external: "198.51.100.7")))
        #expect(result.status == .ok)
        #expect(result.detail.contains("sees us at 198.51.100.7: not an address of this machine"))
    }

    @Test func theTunnelAddressIsOk() {
        let result = evaluate(.running(Machine.report(external: "10.64.0.2")))
        #expect(result.status == .ok)
        #expect(result.detail.contains("the tunnel's own address (wg0)"))
    }

    @Test func aClearInterfaceAddressIsAProblem() {
        let result = evaluate(.running(Machine.report(external: "192.0.2.2")))
        #expect(result.status == .problem)
        #expect(result.detail == "tracker udp://tracker.example:6969 sees us at 192.0.2.2, the address of eth0, which is outside the tunnel: traffic leaked in the clear")
        #expect(result.fix != nil)
    }

    @Test func addressesCompareByValueNotSpelling() {
        var snapshot = Machine.healthy
        snapshot.interfaces[1] = interface("eth0", index: 2, addresses: ["2001:db8::2"])
        snapshot.runtime = .running(Machine.report(external: "2001:DB8:0:0::2"))
        let result = check.evaluate(snapshot, configuration: Machine.bound)
        #expect(result.status == .problem)
        #expect(result.detail.contains("2001:db8::2, the address of eth0"))
    }

    @Test func aStaleReportStillShowsALeakOfTheLastRun() {
        let result = evaluate(.stale(Machine.report(external: "192.0.2.2")))
        #expect(result.status == .problem)
        #expect(result.detail.hasPrefix("last run (pid 4242, no longer running): "))
    }

    @Test func anUnreadableReportIsAWarning() {
        let result = evaluate(.unreadable("runtime report /run/burrow/status.json is not a Burrow runtime report: not valid JSON"))
        #expect(result.status == .warning)
        #expect(result.detail.contains("not valid JSON"))
    }
}

@Suite struct LeakAlarmCheckTests {
    let check = LeakAlarmCheck()

    func evaluate(_ runtime: RuntimeObservation) -> CheckResult {
        var snapshot = Machine.healthy
        snapshot.runtime = runtime
        return check.evaluate(snapshot, configuration: Machine.bound)
    }

    @Test func noReportMeansNotRunning() {
        let result = evaluate(.notRunning)
        #expect(result.status == .ok)
        #expect(result.detail == "Burrow is not running")
    }

    @Test func aRunningClientWithoutAlarmIsOkAndShowsKillSwitchHistory() {
        let kills = ReportedKillSwitch(count: 2, lastInterface: "wg0", lastReason: "carrier lost", lastLatencyMicroseconds: 41.6)
        let result = evaluate(.running(Machine.report(kills: kills)))
        #expect(result.status == .ok)
        #expect(result.detail == "no leak alarm; pid 4242 running via wg0; kill switch fired 2 times, last on wg0 (carrier lost) in 42 µs")
    }

    @Test func aFiredLeakAlarmIsAProblem() {
        let alarm = "LEAK ALARM: peer 203.0.113.9:51413 sees us at 192.0.2.2, the address of eth0, which is not a bound interface; all traffic halted"
        let result = evaluate(.running(Machine.report(leakAlarm: alarm)))
        #expect(result.status == .problem)
        #expect(result.detail.hasPrefix(alarm))
        #expect(result.fix != nil)
    }

    @Test func aClientWaitingForTheTunnelIsAWarning() {
        let result = evaluate(.running(Machine.report(available: false)))
        #expect(result.status == .warning)
        #expect(result.detail.contains("waiting for the tunnel (wg0: carrier lost)"))
    }

    @Test func aStaleReportWithAnAlarmIsAWarning() {
        let result = evaluate(.stale(Machine.report(leakAlarm: "LEAK ALARM: ...")))
        #expect(result.status == .warning)
        #expect(result.detail.contains("last run (pid 4242) raised the leak alarm"))
    }
}

@Suite struct BlockedPacketsCheckTests {
    let check = BlockedPacketsCheck()

    @Test func zeroDropsIsOk() {
        #expect(check.evaluate(Machine.healthy, configuration: Machine.bound).status == .ok)
    }

    @Test func dropsAreAWarningWithCounts() {
        var snapshot = Machine.healthy
        snapshot.firewall = .active(FirewallTable(comparison: .matching, allowedInterfaces: ["wg0"], droppedPackets: 3, droppedBytes: 180))
        let result = check.evaluate(snapshot, configuration: Machine.bound)
        #expect(result.status == .warning)
        #expect(result.detail.contains("dropped 3 packets (180 bytes)"))
    }

    @Test func withoutAFirewallThereAreNoCounters() {
        var snapshot = Machine.healthy
        snapshot.firewall = .absent
        let result = check.evaluate(snapshot, configuration: Machine.bound)
        #expect(result.status == .ok)
        #expect(result.detail.contains("not active"))
    }
}

@Suite struct CheckSuiteTests {
    @Test func aHealthyMachinePassesEveryCheck() {
        let report = CheckSuite.run(on: Machine.healthy, configuration: Machine.bound)
        #expect(report.checks.map(\.id) == [
            "binding", "interfaces", "firewall", "dns-route", "dns-query", "ipv6-exposure",
            "external-address", "leak-alarm", "blocked-packets",
        ])
        #expect(report.checks.filter { $0.status != .ok } == [])
        #expect(report.exitCode == 0)
    }

    @Test func checkIdsAreUnique() {
        let ids = CheckSuite.standard.map(\.id)
        #expect(Set(ids).count == ids.count)
    }
}
