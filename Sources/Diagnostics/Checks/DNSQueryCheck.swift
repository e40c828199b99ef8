/// Does a real query for `--probe-name` get an answer from each DNS server, over sockets made by the socket
/// seam under the bound policy (so exactly as Burrow would ask)?
public struct DNSQueryCheck: Check {
    public let id = "dns-query"
    public let title = "DNS query through the tunnel"

    public init() {}

    public func evaluate(_ snapshot: SystemSnapshot, configuration: DoctorConfiguration) -> CheckResult {
        guard let name = configuration.probeName else {
            return ok("skipped: no live query without --probe-name (for example --probe-name example.org)")
        }
        guard case .bound? = configuration.policy else {
            return ok("skipped: a query through the tunnel needs --bind; see the binding check")
        }
        let servers = snapshot.dnsServers(for: configuration)
        guard !servers.isEmpty else {
            return problem("no DNS server to ask for \(name) (see the dns-route check)",
                           fix: "pass --dns with your VPN's DNS server")
        }
        var answered: [String] = []
        var withoutAddress: [String] = []
        var failed: [String] = []
        for server in servers {
            let key = AddressText.key(server)
            switch snapshot.dnsQueries[key] {
            case .answered(let addresses)?:
                answered.append("\(key) answered \(addresses.isEmpty ? "(no addresses)" : addresses.joined(separator: ", "))")
            case .answeredNoAddress(let why)?:
                withoutAddress.append(why)
            case .failed(let why)?:
                failed.append("\(key): \(why)")
            case nil:
                failed.append("\(key): not queried")
            }
        }
        if answered.isEmpty && !withoutAddress.isEmpty {
            let failures = failed.isEmpty ? "" : "; failed: \(failed.joined(separator: "; "))"
            return warning("reachable through the tunnel, but \(withoutAddress.joined(separator: "; "))\(failures)",
                           fix: "probe with a name that exists (for example --probe-name example.org)")
        }
        if answered.isEmpty {
            return problem("no DNS server answered \(name) through the tunnel: \(failed.joined(separator: "; "))",
                           fix: "check that the servers are reachable inside the VPN, or pass --dns with the VPN's DNS server")
        }
        if !failed.isEmpty {
            return warning("\(name): \(answered.joined(separator: "; ")); but \(failed.joined(separator: "; "))",
                           fix: "drop the failing servers from --dns / resolv.conf, or route them through the tunnel")
        }
        return ok("\(name): \(answered.joined(separator: "; "))")
    }
}
