/// How the live firewall compares with what the configuration would generate.
public enum FirewallState: Sendable, Equatable {
    case notInstalled
    case matching
    /// Each entry says one way the live table differs, in the configuration's terms.
    case differs([String])
}

/// `burrow firewall status`: the comparison and the drop counters.
public struct FirewallStatus: Sendable, Equatable {
    public var state: FirewallState
    /// Per-family leak counters of the live table (empty when not installed).
    public var counters: [IPFamily: LiveTable.Counter]
    /// Burrow's packets to its own machine, dropped on lo (nil when absent); not counted as leaks.
    public var loopback: LiveTable.Counter?

    public var leakAttempts: LiveTable.Counter {
        counters.values.reduce(LiveTable.Counter(packets: 0, bytes: 0)) {
            LiveTable.Counter(packets: $0.packets + $1.packets, bytes: $0.bytes + $1.bytes)
        }
    }

    public init(state: FirewallState, counters: [IPFamily: LiveTable.Counter], loopback: LiveTable.Counter? = nil) {
        self.state = state
        self.counters = counters
        self.loopback = loopback
    }

    /// Compares a live table (nil: the table does not exist) with `spec`.
    public init(live: LiveTable?, expected spec: FirewallSpec) {
        guard let live else {
            self.init(state: .notInstalled, counters: [:])
            return
        }
        var counters: [IPFamily: LiveTable.Counter] = [:]
        for family in IPFamily.allCases {
            counters[family] = live.counters[BurrowTable.counter(family)]
        }
        let differences = Self.differences(live: live, expected: spec)
        self.init(state: differences.isEmpty ? .matching : .differs(differences), counters: counters,
                  loopback: live.counters[BurrowTable.loopbackCounter])
    }

    /// The one-line verdict: "active and matching", "active but differs: …" or "not installed".
    public var verdict: String {
        switch state {
        case .notInstalled: return "not installed"
        case .matching: return "active and matching"
        case .differs(let differences): return "active but differs: " + differences.joined(separator: "; ")
        }
    }

    /// "leak attempts blocked: N packets, B bytes (IPv4 …, IPv6 …)"; nil when not installed.
    public var countersLine: String? {
        if state == .notInstalled { return nil }
        let total = leakAttempts
        let perFamily = IPFamily.allCases.map { family -> String in
            guard let counter = counters[family] else { return "\(family) counter missing" }
            return "\(family) \(counter.packets) packets, \(counter.bytes) bytes"
        }
        return "leak attempts blocked: \(total.packets) packets, \(total.bytes) bytes (\(perFamily.joined(separator: "; ")))"
    }

    /// "loopback packets dropped: …"; nil when not installed or without that counter.
    public var loopbackLine: String? {
        guard state != .notInstalled, let loopback else { return nil }
        return "loopback packets dropped (to this machine's own addresses, not leaks): "
            + "\(loopback.packets) packets, \(loopback.bytes) bytes"
    }

    static func differences(live: LiveTable, expected spec: FirewallSpec) -> [String] {
        var found: [String] = []
        // The chain: one output filter hook that accepts by default (it only drops Burrow's leaks).
        if let chain = live.chains.first(where: { $0.name == BurrowTable.chain }) {
            let shape = (chain.type, chain.hook, chain.priority, chain.policy)
            if shape != ("filter", "output", 0, "accept") {
                found.append("chain \(chain.name) is type \(chain.type ?? "?") hook \(chain.hook ?? "?") priority "
                             + "\(chain.priority.map(String.init) ?? "?") policy \(chain.policy ?? "?") "
                             + "(expected filter, output, 0, accept)")
            }
        } else {
            found.append("chain \(BurrowTable.chain) is missing")
        }
        for chain in live.chains where chain.name != BurrowTable.chain {
            found.append("extra chain \(chain.name)")
        }
        // Counters.
        let expectedCounters = BurrowTable.counterNames
        for name in expectedCounters where live.counters[name] == nil {
            found.append("counter \(name) is missing")
        }
        for name in live.counters.keys.sorted() where !expectedCounters.contains(name) {
            found.append("extra counter \(name)")
        }
        // Rules, in the configuration's terms.
        let rules = live.rules[BurrowTable.chain] ?? []
        let expectedRules = BurrowTable.rules(for: spec)
        if rules == expectedRules { return found }
        var ruleDifferences: [String] = []
        let identities = rules.compactMap { rule -> FirewallMatch? in
            if case .ignoreUnless(let match) = rule { return match } else { return nil }
        }
        if identities.isEmpty {
            ruleDifferences.append("no rule limits the chain to Burrow's traffic (configured: \(spec.match))")
        } else if identities != [spec.match] {
            ruleDifferences.append("identifies Burrow's traffic by \(identities.map(\.description).joined(separator: " and ")) "
                         + "(configured: \(spec.match))")
        }
        let allowed = rules.compactMap { rule -> String? in
            if case .allowInterface(let name) = rule { return name } else { return nil }
        }
        for name in allowed where !spec.allowedInterfaces.contains(name) {
            ruleDifferences.append("allows \(name) (not configured)")
        }
        for name in spec.allowedInterfaces where !allowed.contains(name) {
            ruleDifferences.append("does not allow \(name) (configured)")
        }
        for family in IPFamily.allCases {
            let expected = FirewallRule.countAndDrop(family, counter: BurrowTable.counter(family))
            if !rules.contains(expected) { ruleDifferences.append("\(family) leaks are not dropped and counted") }
        }
        let loopbackDrop = FirewallRule.dropLoopback(counter: BurrowTable.loopbackCounter)
        if !rules.contains(loopbackDrop) { ruleDifferences.append("loopback is not dropped (the configuration drops it)") }
        for case .unrecognized(let text) in rules {
            ruleDifferences.append("unexpected rule \(text)")
        }
        for rule in rules where !expectedRules.contains(rule) {
            if case .countAndDrop(let family, let counter) = rule {
                ruleDifferences.append("drops \(family) with counter \(counter) (expected \(BurrowTable.counter(family)))")
            }
        }
        if ruleDifferences.isEmpty {
            // Same rules, other order or repeated: the first-match semantics may differ.
            ruleDifferences.append("rules are in a different order or repeated: " + rules.map(\.description).joined(separator: ", "))
        }
        return found + ruleDifferences
    }
}
