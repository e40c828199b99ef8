import NIOCore

/// One address assigned to an interface, as the kernel reports it.
public struct InterfaceAddress: Sendable, Hashable, CustomStringConvertible {
    /// The local address (port 0). For point-to-point links this is our end, not the peer's.
    public let address: SocketAddress
    public let prefixLength: Int
    /// IPv6 duplicate address detection has not finished (or failed): the kernel refuses to bind to it.
    public let isTentative: Bool

    public init(address: SocketAddress, prefixLength: Int, isTentative: Bool = false) {
        self.address = address
        self.prefixLength = prefixLength
        self.isTentative = isTentative
    }

    /// fe80::/10 or 169.254.0.0/16: never reaches a swarm, so never counts as usable.
    public var isLinkLocal: Bool {
        switch address {
        case .v4(let v4):
            let raw = UInt32(bigEndian: v4.address.sin_addr.s_addr)
            return raw >> 16 == 0xA9FE
        case .v6(let v6):
            return UsableInterface.isLinkLocal(v6)
        default:
            return false
        }
    }

    /// An address a socket may be bound to as its source.
    public var isUsableSource: Bool { !isLinkLocal && !isTentative }

    /// Same address, whatever the prefix or flags (what identifies it for add/remove).
    func sameAddress(as other: InterfaceAddress) -> Bool { address == other.address }

    public var description: String { address.ipAddress ?? "\(address)" }
}

/// What the kernel says about one network interface right now.
public struct InterfaceState: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let index: Int
    /// Administratively up (IFF_UP).
    public let isUp: Bool
    /// The kernel considers it operational (IFF_RUNNING).
    public let isRunning: Bool
    /// The physical/virtual carrier is present (IFF_LOWER_UP on Linux; IFF_RUNNING on macOS, which has no
    /// separate carrier flag).
    public let hasCarrier: Bool
    /// In the order the kernel announced them. Invariant: no two entries share an address.
    public let addresses: [InterfaceAddress]
    /// A default route (0.0.0.0/0 or ::/0, any routing table but `local`) points at this interface.
    public let hasDefaultRouteIPv4: Bool
    public let hasDefaultRouteIPv6: Bool

    public init(
        name: String, index: Int, isUp: Bool, isRunning: Bool, hasCarrier: Bool,
        addresses: [InterfaceAddress], hasDefaultRouteIPv4: Bool = false, hasDefaultRouteIPv6: Bool = false
    ) {
        self.name = name
        self.index = index
        self.isUp = isUp
        self.isRunning = isRunning
        self.hasCarrier = hasCarrier
        self.addresses = addresses
        self.hasDefaultRouteIPv4 = hasDefaultRouteIPv4
        self.hasDefaultRouteIPv6 = hasDefaultRouteIPv6
    }

    /// Up, running and with carrier: packets can flow.
    public var isOperational: Bool { isUp && isRunning && hasCarrier }

    /// Why the link cannot carry packets, or nil when it can.
    public var downReason: LinkDownReason? {
        if !isUp { return .adminDown }
        if !isRunning || !hasCarrier { return .carrierLost }
        return nil
    }

    public var usableAddresses: [InterfaceAddress] { addresses.filter(\.isUsableSource) }

    func with(
        name: String? = nil, isUp: Bool? = nil, isRunning: Bool? = nil, hasCarrier: Bool? = nil,
        addresses: [InterfaceAddress]? = nil, hasDefaultRouteIPv4: Bool? = nil, hasDefaultRouteIPv6: Bool? = nil
    ) -> InterfaceState {
        InterfaceState(
            name: name ?? self.name, index: index, isUp: isUp ?? self.isUp, isRunning: isRunning ?? self.isRunning,
            hasCarrier: hasCarrier ?? self.hasCarrier, addresses: addresses ?? self.addresses,
            hasDefaultRouteIPv4: hasDefaultRouteIPv4 ?? self.hasDefaultRouteIPv4,
            hasDefaultRouteIPv6: hasDefaultRouteIPv6 ?? self.hasDefaultRouteIPv6)
    }

    public var description: String {
        var flags: [String] = []
        if isUp { flags.append("UP") }
        if isRunning { flags.append("RUNNING") }
        if hasCarrier { flags.append("CARRIER") }
        if hasDefaultRouteIPv4 { flags.append("DEFAULT4") }
        if hasDefaultRouteIPv6 { flags.append("DEFAULT6") }
        let addrs = addresses.map { "\($0)/\($0.prefixLength)" }.joined(separator: " ")
        return "\(name)#\(index) <\(flags.joined(separator: ","))> \(addrs)"
    }
}
