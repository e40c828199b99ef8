/// One fact the kernel reported, already decoded from its wire format (netlink or PF_ROUTE).
enum KernelRecord: Sendable, Hashable {
    case link(index: Int, name: String, isUp: Bool, isRunning: Bool, hasCarrier: Bool)
    case linkRemoved(index: Int)
    case address(index: Int, InterfaceAddress)
    case addressRemoved(index: Int, InterfaceAddress)
    case defaultRoute(DefaultRouteKey)
    case defaultRouteRemoved(DefaultRouteKey)
}

/// Identifies one default route (a route may be deleted while another default via the same interface stays).
struct DefaultRouteKey: Sendable, Hashable {
    let ipv6: Bool
    let table: UInt32
    let priority: UInt32
    let interfaceIndex: Int
}

/// The interface table as a pure state machine: kernel records in, changes out. Platform-neutral, so the
/// monitor's bookkeeping is tested without a kernel.
struct InterfaceStateTable: Sendable {
    /// Invariant: keyed by interface index; each state's default-route flags agree with `defaultRoutes`.
    private(set) var interfaces: [Int: InterfaceState] = [:]
    /// Default routes seen, including ones whose interface is not (yet) known.
    private var defaultRoutes: Set<DefaultRouteKey> = []

    var snapshot: [InterfaceState] { interfaces.values.sorted { $0.index < $1.index } }

    mutating func apply(_ record: KernelRecord) -> [InterfaceChange] {
        switch record {
        case let .link(index, name, isUp, isRunning, hasCarrier):
            return applyLink(index: index, name: name, isUp: isUp, isRunning: isRunning, hasCarrier: hasCarrier)
        case .linkRemoved(let index):
            defaultRoutes = defaultRoutes.filter { $0.interfaceIndex != index }
            guard let old = interfaces.removeValue(forKey: index) else { return [] }
            return [.linkDown(old, reason: .removed)]
        case let .address(index, address):
            guard let old = interfaces[index] else { return [] }
            var addresses = old.addresses
            if let existing = addresses.firstIndex(where: { $0.sameAddress(as: address) }) {
                if addresses[existing] == address { return [] }
                addresses[existing] = address
            } else {
                addresses.append(address)
            }
            let new = old.with(addresses: addresses)
            interfaces[index] = new
            return [.addressAdded(new, address)]
        case let .addressRemoved(index, address):
            guard let old = interfaces[index],
                  let existing = old.addresses.firstIndex(where: { $0.sameAddress(as: address) })
            else { return [] }
            var addresses = old.addresses
            let removed = addresses.remove(at: existing)
            let new = old.with(addresses: addresses)
            interfaces[index] = new
            return [.addressRemoved(new, removed)]
        case .defaultRoute(let key):
            defaultRoutes.insert(key)
            return refreshDefaultRouteFlags(index: key.interfaceIndex)
        case .defaultRouteRemoved(let key):
            defaultRoutes.remove(key)
            return refreshDefaultRouteFlags(index: key.interfaceIndex)
        }
    }

    private mutating func applyLink(
        index: Int, name: String, isUp: Bool, isRunning: Bool, hasCarrier: Bool
    ) -> [InterfaceChange] {
        let routes = defaultRouteFlags(index: index)
        guard let old = interfaces[index] else {
            let new = InterfaceState(
                name: name, index: index, isUp: isUp, isRunning: isRunning, hasCarrier: hasCarrier, addresses: [],
                hasDefaultRouteIPv4: routes.v4, hasDefaultRouteIPv6: routes.v6)
            interfaces[index] = new
            return new.isOperational ? [.linkUp(new)] : []
        }
        let new = old.with(name: name, isUp: isUp, isRunning: isRunning, hasCarrier: hasCarrier)
        interfaces[index] = new
        if old.name != name {
            // A rename is, for anyone holding sockets by name, the old interface vanishing.
            var changes: [InterfaceChange] = [.linkDown(old, reason: .removed)]
            if new.isOperational { changes.append(.linkUp(new)) }
            return changes
        }
        switch (old.isOperational, new.isOperational) {
        case (false, true): return [.linkUp(new)]
        case (true, false): return [.linkDown(new, reason: new.downReason ?? .carrierLost)]
        default: return []
        }
    }

    private func defaultRouteFlags(index: Int) -> (v4: Bool, v6: Bool) {
        var flags = (v4: false, v6: false)
        for key in defaultRoutes where key.interfaceIndex == index {
            if key.ipv6 { flags.v6 = true } else { flags.v4 = true }
        }
        return flags
    }

    private mutating func refreshDefaultRouteFlags(index: Int) -> [InterfaceChange] {
        guard let old = interfaces[index] else { return [] }
        let flags = defaultRouteFlags(index: index)
        guard flags.v4 != old.hasDefaultRouteIPv4 || flags.v6 != old.hasDefaultRouteIPv6 else { return [] }
        let new = old.with(hasDefaultRouteIPv4: flags.v4, hasDefaultRouteIPv6: flags.v6)
        interfaces[index] = new
        return [.defaultRouteChanged(new)]
    }
}
