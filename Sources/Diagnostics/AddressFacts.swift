import NIOCore
import Sockets

extension InterfaceAddress {
    /// Global unicast IPv6 (2000::/3): reachable from the internet, so it identifies the machine.
    /// Link-local, unique-local (fc00::/7), loopback and multicast addresses do not.
    var isGlobalIPv6: Bool {
        guard case .v6(let v6) = address else { return false }
        var raw = v6.address.sin6_addr
        let first = withUnsafeBytes(of: &raw) { $0[0] }
        return first & 0xE0 == 0x20
    }

    var text: String { address.ipAddress ?? "\(address)" }
}

enum AddressText {
    /// The canonical text of an IP address ("2001:DB8::1" and "2001:db8:0::1" agree), or nil if it is none.
    static func canonical(_ text: String) -> String? {
        let bare = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        return (try? SocketAddress(ipAddress: bare, port: 0))?.ipAddress
    }

    /// The key under which snapshots file a server's route and query results.
    static func key(_ server: SocketAddress) -> String { server.ipAddress ?? "\(server)" }
}

extension Array where Element == String {
    /// "a, b and c" for sentences.
    var spokenList: String {
        switch count {
        case 0: return "none"
        case 1: return self[0]
        default: return dropLast().joined(separator: ", ") + " and " + last!
        }
    }
}
