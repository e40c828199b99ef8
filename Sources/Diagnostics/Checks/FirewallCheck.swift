/// Is the second layer (the `inet burrow` nftables table) loaded, and does it enforce what Burrow is
/// configured to do? Without it, a bug in the application layer would be a leak; with a different
/// configuration it either lets traffic out elsewhere or drops Burrow's own. The comparison itself is the
/// firewall layer's (`burrow firewall status`); this check only judges its verdict.
public struct FirewallCheck: Check {
    public let id = "firewall"
    public let title = "Firewall layer"

    public init() {}

    public func evaluate(_ snapshot: SystemSnapshot, configuration: DoctorConfiguration) -> CheckResult {
        let applyCommand = "burrow firewall apply" + bindArguments(configuration)
        switch snapshot.firewall {
        case .unreadable(let why):
            return warning("could not read the firewall state: \(why)",
                           fix: "run `burrow doctor` as root so it can read the nftables ruleset")
        case .absent:
            if case .unbound? = configuration.policy {
                return warning("no firewall layer; while unbound there is nothing it could enforce",
                               fix: "bind to your VPN interface, then run `\(applyCommand)`")
            }
            return problem(
                "the `inet burrow` nftables table is not loaded: only the application layer keeps traffic in the tunnel",
                fix: "run `\(applyCommand)` as root")
        case .active(let table):
            let enforced = describe(table)
            switch (table.comparison, configuration.policy) {
            case (.differs(let differences), _):
                return problem("active but differs from the configuration: \(differences.joined(separator: "; "))",
                               fix: "re-apply it with the current settings: `\(applyCommand)`")
            case (_, .unbound?):
                return problem("active (\(enforced)), but Burrow runs unbound: its traffic elsewhere is dropped",
                               fix: "bind to the interfaces the firewall allows, or remove it: `burrow firewall remove`")
            case (.notCompared, _):
                return ok("active, \(enforced) (no --bind given to compare it with)")
            case (.matching, _):
                return ok("active and matching: \(enforced)")
            }
        }
    }

    private func describe(_ table: FirewallTable) -> String {
        let who = table.identity.map { "Burrow's packets (\($0))" } ?? "Burrow's packets"
        guard !table.allowedInterfaces.isEmpty else { return "\(who) may leave through no interface" }
        return "\(who) may leave only through \(table.allowedInterfaces.spokenList)"
    }

    private func bindArguments(_ configuration: DoctorConfiguration) -> String {
        let patterns = configuration.boundPatterns
        return patterns.isEmpty ? " --bind IFACE" : " --bind " + patterns.joined(separator: ",")
    }
}
