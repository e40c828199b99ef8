import NIOCore

/// Would the kernel send queries to each DNS server through the tunnel? A server reached over the clear
/// interface (or a local stub resolver that forwards wherever it likes) tells the ISP every name Burrow
/// looks up, and does not work at all from sockets pinned to the tunnel.
public struct DNSRouteCheck: Check {
    public let id = "dns-route"
    public let title = "DNS servers routed through the tunnel"

    public init() {}

    public func evaluate(_ snapshot: SystemSnapshot, configuration: DoctorConfiguration) -> CheckResult {
        let servers = snapshot.dnsServers(for: configuration)
        let origin = configuration.dnsServers.isEmpty ? "resolv.conf" : "--dns"
        guard !servers.isEmpty else {
            var why = "no DNS server is configured"
            if case .unavailable(let reason) = snapshot.resolvConf { why += " (\(reason))" }
            return problem(why + ": Burrow cannot resolve tracker names",
                           fix: "pass --dns with your VPN's DNS server (for example --dns 10.64.0.1)")
        }
        var good: [String] = []
        var bad: [String] = []
        for server in servers {
            let key = AddressText.key(server)
            switch snapshot.routes[key] {
            case nil:
                bad.append("\(key): route not looked up")
            case .failed(let why)?:
                bad.append("\(key): no route (\(why))")
            case .route(let route)?:
                if configuration.isBound(interfaceNamed: route.device) {
                    good.append("\(key) via \(route.device)")
                } else if route.device == "lo" || route.type == "local" {
                    bad.append("\(key) is a local resolver on this machine, which forwards queries outside Burrow's control")
                } else {
                    bad.append("\(key) is routed via \(route.device)\(route.gateway.map { " (gateway \($0))" } ?? ""), not a bound interface")
                }
            }
        }
        guard case .bound? = configuration.policy else {
            let seen = (good + bad).joined(separator: "; ")
            return warning("Burrow is not bound, so DNS is not confined to a tunnel (\(origin): \(seen))",
                           fix: "bind to your VPN interface with --bind")
        }
        if !bad.isEmpty {
            return problem(
                "\(origin): \(bad.joined(separator: "; "))" + (good.isEmpty ? "" : "; fine: \(good.joined(separator: ", "))"),
                fix: "pass --dns with a DNS server inside the tunnel (your VPN provider's, e.g. --dns 10.64.0.1), or route it through the tunnel")
        }
        return ok("\(origin): \(good.joined(separator: ", "))")
    }
}
