import NIOCore

/// An interface allowed by the policy, with the addresses sockets may use as their source.
public struct UsableInterface: Sendable, Equatable {
    public let name: String
    public let index: Int
    public let addresses: [SocketAddress]

    public func firstAddress(ipv6: Bool) -> SocketAddress? {
        addresses.first { addr in
            switch addr {
            case .v4: return !ipv6
            case .v6(let v6):
                // Link-local addresses need a scope and never reach a swarm: skip them.
                return ipv6 && !UsableInterface.isLinkLocal(v6)
            default: return false
            }
        }
    }

    static func isLinkLocal(_ address: SocketAddress.IPv6Address) -> Bool {
        var addr = address.address.sin6_addr
        return withUnsafeBytes(of: &addr) { $0[0] == 0xfe && ($0[1] & 0xc0) == 0x80 }
    }
}

/// Reads the kernel's interface list (getifaddrs) and keeps those the policy allows.
public enum InterfaceTable {
    public static func usable(under policy: NetworkPolicy) throws -> [UsableInterface] {
        var byName: [String: (index: Int, addresses: [SocketAddress])] = [:]
        var order: [String] = []
        for device in try System.enumerateDevices() where policy.allows(interfaceNamed: device.name) {
            guard let address = device.address else { continue }
            switch address {
            case .v4, .v6: break
            default: continue
            }
            if byName[device.name] == nil {
                order.append(device.name)
                byName[device.name] = (device.interfaceIndex, [])
            }
            byName[device.name]!.addresses.append(address)
        }
        return order.map { UsableInterface(name: $0, index: byName[$0]!.index, addresses: byName[$0]!.addresses) }
    }
}
