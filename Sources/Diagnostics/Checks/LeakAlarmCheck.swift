/// Did the running client's leak alarm fire (a peer or tracker saw us at a clear address, and the client
/// halted all traffic)? Also shows the tunnel state and kill-switch history, which explain stalls.
public struct LeakAlarmCheck: Check {
    public let id = "leak-alarm"
    public let title = "Leak alarm and kill switch"

    public init() {}

    public func evaluate(_ snapshot: SystemSnapshot, configuration: DoctorConfiguration) -> CheckResult {
        switch snapshot.runtime {
        case .notRunning:
            return ok("Burrow is not running")
        case .unreadable(let why):
            return warning("cannot tell: \(why)", fix: "remove the file if no burrow is running; it is rewritten while one runs")
        case .stale(let report):
            if let alarm = report.leakAlarm {
                return warning("Burrow is not running, but its last run (pid \(report.pid)) raised the leak alarm: \(alarm)",
                               fix: "fix the leak before starting Burrow again (see the other checks)")
            }
            return ok("Burrow is not running (stale report from pid \(report.pid))")
        case .running(let report):
            let history = killSwitchHistory(report.killSwitch)
            if let alarm = report.leakAlarm {
                return problem("\(alarm) (pid \(report.pid)); \(history)",
                               fix: "stop Burrow, fix the leak (see the other checks), then restart it")
            }
            guard report.tunnel.available else {
                return warning(
                    "pid \(report.pid) is waiting for the tunnel (\(report.tunnel.unavailableReason ?? "unavailable")); \(history)",
                    fix: "bring the VPN up; Burrow resumes by itself")
            }
            let via = report.policy.unbound
                ? "unbound (any interface)" : "via " + report.tunnel.interfaces.map(\.name).spokenList
            return ok("no leak alarm; pid \(report.pid) running \(via); \(history)")
        }
    }

    private func killSwitchHistory(_ killSwitch: ReportedKillSwitch) -> String {
        guard killSwitch.count > 0 else { return "kill switch never fired" }
        var text = "kill switch fired \(killSwitch.count) time\(killSwitch.count == 1 ? "" : "s")"
        if let interface = killSwitch.lastInterface {
            text += ", last on \(interface)"
            if let reason = killSwitch.lastReason { text += " (\(reason))" }
        }
        if let latency = killSwitch.lastLatencyMicroseconds { text += " in \(Int(latency.rounded())) µs" }
        return text
    }
}
