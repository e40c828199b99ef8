/// Global IPv6 addresses outside the tunnel. Burrow never uses them when bound, but other software on the
/// machine may, and a swarm peer it talks to learns the machine's real address that way.
public struct IPv6ExposureCheck: Check {
    public let id = "ipv6-exposure"
    public let title = "IPv6 outside the tunnel"

    public init() {}

    public func evaluate(_ snapshot: SystemSnapshot, configuration: DoctorConfiguration) -> CheckResult {
        var exposed: [String] = []
        var tunnel: [String] = []
        for interface in snapshot.interfaces where interface.isUp {
            let global = interface.addresses.filter(\.isGlobalIPv6).map(\.text)
            guard !global.isEmpty else { continue }
            let entry = "\(interface.name) (\(global.joined(separator: ", ")))"
            if configuration.isBound(interfaceNamed: interface.name) {
                tunnel.append(entry)
            } else {
                exposed.append(entry)
            }
        }
        if !exposed.isEmpty {
            let who: String
            if case .bound? = configuration.policy {
                who = "Burrow never uses them, but other software may, revealing this machine"
            } else {
                who = "Burrow is not bound and may use them itself"
            }
            return warning(
                "global IPv6 on interfaces outside the tunnel: \(exposed.spokenList); \(who)",
                fix: "disable IPv6 on them (`sysctl -w net.ipv6.conf.<iface>.disable_ipv6=1`) or make your VPN route IPv6 too")
        }
        if !tunnel.isEmpty { return ok("global IPv6 only inside the tunnel: \(tunnel.spokenList)") }
        return ok("no global IPv6 address on any interface")
    }
}
