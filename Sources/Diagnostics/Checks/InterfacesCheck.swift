import Sockets

/// Do the bound interfaces exist, carry packets and have an address Burrow can bind to?
public struct InterfacesCheck: Check {
    public let id = "interfaces"
    public let title = "Bound interfaces up"

    public init() {}

    public func evaluate(_ snapshot: SystemSnapshot, configuration: DoctorConfiguration) -> CheckResult {
        let patterns = configuration.boundPatterns
        guard !patterns.isEmpty else {
            return ok("not applicable: no interface is bound (see the binding check)")
        }
        var usable: [String] = []
        var trouble: [String] = []
        var fixes: [String] = []
        for pattern in patterns {
            let matches = snapshot.interfaces.filter { InterfacePattern.matches(pattern: pattern, name: $0.name) }
            if matches.isEmpty {
                trouble.append("no interface matches \(pattern)")
                fixes.append("bring the VPN up (e.g. `wg-quick up \(pattern)`) or correct --bind; `ip link` lists the interfaces")
                continue
            }
            for interface in matches {
                if let reason = interface.downReason {
                    trouble.append("\(interface.name) is down (\(reason))")
                    fixes.append(reason == .adminDown
                        ? "`ip link set \(interface.name) up`, or restart the VPN"
                        : "the tunnel's link has no carrier: restart the VPN")
                } else if interface.usableAddresses.isEmpty {
                    let unusable = interface.addresses.isEmpty
                        ? "has no address"
                        : "has only unusable addresses (\(interface.addresses.map(\.text).spokenList): link-local or tentative)"
                    trouble.append("\(interface.name) \(unusable)")
                    fixes.append("the VPN did not configure \(interface.name): restart it, or assign its address")
                } else {
                    usable.append("\(interface.name) (\(interface.usableAddresses.map(\.text).joined(separator: ", ")))")
                }
            }
        }
        let fix = fixes.uniqued().joined(separator: "; ")
        if usable.isEmpty {
            return problem(trouble.joined(separator: "; ") + ": Burrow has no tunnel to use and will wait", fix: fix)
        }
        if !trouble.isEmpty {
            return warning("usable: \(usable.spokenList); but \(trouble.joined(separator: "; "))", fix: fix)
        }
        return ok("usable: \(usable.spokenList)")
    }
}

extension Array where Element: Hashable {
    /// The elements in order, each only once.
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
