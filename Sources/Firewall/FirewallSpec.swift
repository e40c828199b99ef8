import Sockets

/// What the firewall enforces: Burrow's packets (identified by `match`) may leave only through
/// interfaces matching `allowedInterfaces`; everything else of Burrow's is dropped and counted.
/// Other programs' traffic is never matched.
public struct FirewallSpec: Sendable, Equatable {
    /// Interface names and glob patterns, in the order given, without duplicates. Invariant: not empty,
    /// every entry passed `InterfacePattern.validate`.
    public let allowedInterfaces: [String]
    public let match: FirewallMatch

    public init(allowedInterfaces: [String], match: FirewallMatch) throws(FirewallError) {
        var unique: [String] = []
        for pattern in allowedInterfaces where !unique.contains(pattern) {
            if let problem = InterfacePattern.validate(pattern) { throw .nothingToEnforce(problem) }
            if pattern.allSatisfy({ $0 == "*" }) {
                throw .nothingToEnforce("pattern \"\(pattern)\" allows every interface, so nothing would be blocked")
            }
            unique.append(pattern)
        }
        if unique.isEmpty { throw .nothingToEnforce("no interface to allow; pass --bind IFACE") }
        self.allowedInterfaces = unique
        self.match = match
    }

    /// The firewall for a network policy: the interfaces the sockets are bound to are the only way out.
    public init(policy: NetworkPolicy, match: FirewallMatch) throws(FirewallError) {
        guard case .bound(let patterns) = policy else {
            throw .nothingToEnforce("Burrow runs unbound (--allow-unbound); pass --bind with the tunnel interfaces")
        }
        try self.init(allowedInterfaces: patterns, match: match)
    }
}

/// IP families the firewall counts separately.
public enum IPFamily: String, Sendable, CaseIterable, CustomStringConvertible {
    case ipv4, ipv6

    public var description: String { self == .ipv4 ? "IPv4" : "IPv6" }
}

/// One rule of Burrow's output chain, by meaning: the generator produces these, and the live table's
/// JSON listing is read back into them, so "does the kernel hold what the configuration says" is an
/// equality of two lists.
public enum FirewallRule: Sendable, Equatable, CustomStringConvertible {
    /// Packets that are not Burrow's leave the chain untouched (`meta mark != X return`).
    case ignoreUnless(FirewallMatch)
    /// Burrow's packets may leave through interfaces matching this name or pattern.
    case allowInterface(String)
    /// Burrow's packets to this machine's own addresses (oifname "lo") are dropped, counted apart from
    /// leaks: they never reach a wire (typically Burrow dialling its own tunnel address, learnt from a
    /// tracker), but a local proxy or resolver could forward them out of the clear interface.
    case dropLoopback(counter: String)
    /// Burrow's packets of this family that got this far are counted and dropped.
    case countAndDrop(IPFamily, counter: String)
    /// A rule of another shape (edited by hand, or by another version); described in nft syntax.
    case unrecognized(String)

    public var description: String {
        switch self {
        case .ignoreUnless(let match): return "only \(match) is filtered"
        case .allowInterface(let pattern): return "allow out \(pattern)"
        case .dropLoopback(let counter): return "drop loopback (counter \(counter))"
        case .countAndDrop(let family, let counter): return "drop \(family) (counter \(counter))"
        case .unrecognized(let text): return "unrecognized rule: \(text)"
        }
    }
}

/// Names shared by the nft generator, the status reader and the remover.
public enum BurrowTable {
    public static let family = "inet"
    public static let name = "burrow"
    public static let chain = "output"
    /// Counter names by family; `burrow firewall status` sums them as "leak attempts blocked".
    public static func counter(_ family: IPFamily) -> String { "leak_attempts_\(family.rawValue)" }
    /// Loopback drops are not leaks (nothing reaches a wire), so they have a counter of their own.
    public static let loopbackCounter = "loopback_dropped"
    /// Every named counter of the table, in the order the batch declares them.
    public static var counterNames: [String] { IPFamily.allCases.map(counter) + [loopbackCounter] }

    /// The rules, in order, that `spec` stands for.
    public static func rules(for spec: FirewallSpec) -> [FirewallRule] {
        [.ignoreUnless(spec.match)]
            + spec.allowedInterfaces.map { .allowInterface($0) }
            + [.dropLoopback(counter: loopbackCounter)]
            + IPFamily.allCases.map { .countAndDrop($0, counter: counter($0)) }
    }
}
