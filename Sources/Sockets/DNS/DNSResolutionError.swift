import NIOCore

/// Why a host name could not be resolved. Every case names the host, and the server where one answered.
public enum DNSResolutionError: Error, Equatable, CustomStringConvertible {
    case invalidName(DNSNameError)
    case noServers(host: String)
    /// NXDOMAIN: the server says the name does not exist.
    case nameDoesNotExist(host: String, server: String)
    /// The name exists but has no A or AAAA records (also after following CNAMEs).
    case noAddresses(host: String, server: String)
    /// No server gave a usable answer; one entry per try ("10.0.0.1:53 A: timed out after 2 s").
    case allServersFailed(host: String, failures: [String])

    public var description: String {
        switch self {
        case .invalidName(let error):
            return "could not resolve: \(error)"
        case .noServers(let host):
            return "could not resolve \(host): no DNS servers are configured"
        case .nameDoesNotExist(let host, let server):
            return "could not resolve \(host): \(server) says the name does not exist (NXDOMAIN)"
        case .noAddresses(let host, let server):
            return "could not resolve \(host): \(server) has no IPv4 or IPv6 address for it"
        case .allServersFailed(let host, let failures):
            return "could not resolve \(host): no DNS server answered usefully (\(failures.joined(separator: "; ")))"
        }
    }
}

/// One failed try against one server; becomes a line of `allServersFailed`.
struct DNSTryFailure: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}

extension SocketAddress {
    /// "10.0.0.1:53" or "[fd00::1]:53", for error messages.
    var dnsServerText: String {
        let ip = ipAddress ?? "\(self)"
        let port = self.port ?? 53
        return self.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
