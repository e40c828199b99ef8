import Sockets

/// Where do peers and trackers say they see us? If that is the address of an interface outside the tunnel,
/// traffic got out in the clear somewhere — the leak alarm's condition, checked here against the current
/// interfaces too (an address can move between runs of the client's own check).
public struct ExternalAddressCheck: Check {
    public let id = "external-address"
    public let title = "Address the swarm sees"

    public init() {}

    public func evaluate(_ snapshot: SystemSnapshot, configuration: DoctorConfiguration) -> CheckResult {
        let report: RuntimeReport
        var prefix = ""
        switch snapshot.runtime {
        case .notRunning:
            return ok("Burrow is not running")
        case .unreadable(let why):
            return warning("cannot tell: \(why)", fix: "remove the file if no burrow is running; it is rewritten while one runs")
        case .stale(let old):
            guard old.lastExternalAddress != nil else {
                return ok("Burrow is not running (stale report from pid \(old.pid))")
            }
            report = old
            prefix = "last run (pid \(old.pid), no longer running): "
        case .running(let live):
            report = live
        }
        guard let external = report.lastExternalAddress else {
            return ok("no peer or tracker has reported our address yet")
        }
        guard let seen = AddressText.canonical(external.address) else {
            return warning("\(prefix)\(external.reporter) reported \"\(external.address)\", which is not an IP address",
                           fix: nil)
        }
        let policy = report.policy.networkPolicy
        let tunnelAddresses = Set(report.tunnel.interfaces.flatMap(\.addresses).compactMap(AddressText.canonical))
        for interface in snapshot.interfaces where interface.addresses.contains(where: { $0.text == seen }) {
            if policy.allows(interfaceNamed: interface.name), case .bound = policy {
                return ok("\(prefix)\(external.reporter) sees us at \(seen), the tunnel's own address (\(interface.name))")
            }
            let detail = "\(prefix)\(external.reporter) sees us at \(seen), the address of \(interface.name), which is outside the tunnel"
            if case .unbound = policy {
                return warning(detail + " (Burrow runs unbound)", fix: "bind to your VPN interface with --bind")
            }
            return problem(detail + ": traffic leaked in the clear",
                           fix: "stop Burrow, check `burrow doctor` is clean (firewall layer active, DNS through the tunnel), then restart it")
        }
        if tunnelAddresses.contains(seen) {
            return ok("\(prefix)\(external.reporter) sees us at \(seen), the tunnel's address")
        }
        return ok("\(prefix)\(external.reporter) sees us at \(seen): not an address of this machine (the VPN's exit address)")
    }
}
