#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Sockets

/// What `applyIfPermitted` did.
public enum FirewallApplyOutcome: Sendable, Equatable {
    /// The firewall is in place; the status read back after applying.
    case applied(FirewallStatus)
    /// Not attempted, and why (unbound, no CAP_NET_ADMIN, a match this system cannot express).
    case skipped(String)
    /// Attempted and failed.
    case failed(FirewallError)
}

/// Applies, checks and removes Burrow's firewall: nftables on Linux, pf on macOS.
public struct FirewallController: Sendable {
    public var nftables: Nftables
    /// Check CAP_NET_ADMIN before touching the packet filter, for a clear error instead of nft's.
    public var requiresNetAdmin: Bool

    public init(nftables: Nftables = Nftables(), requiresNetAdmin: Bool = true) {
        self.nftables = nftables
        self.requiresNetAdmin = requiresNetAdmin
    }

    /// Installs (or replaces) the firewall for `spec`, then reads it back: the returned status is
    /// `.matching` unless something changed it in between.
    @discardableResult
    public func apply(_ spec: FirewallSpec) throws(FirewallError) -> FirewallStatus {
        try checkPrivileges("burrow firewall apply")
        #if os(Linux)
        try nftables.apply(spec)
        return try status(expected: spec)
        #elseif os(macOS)
        try PfControl.apply(spec)
        return try PfControl.status(expected: spec)
        #else
        throw .unsupportedPlatform("the firewall layer supports Linux (nftables) and macOS (pf)")
        #endif
    }

    /// The live firewall compared with `spec`, with its drop counters.
    public func status(expected spec: FirewallSpec) throws(FirewallError) -> FirewallStatus {
        try checkPrivileges("burrow firewall status")
        #if os(Linux)
        return FirewallStatus(live: try nftables.liveTable(), expected: spec)
        #elseif os(macOS)
        return try PfControl.status(expected: spec)
        #else
        throw .unsupportedPlatform("the firewall layer supports Linux (nftables) and macOS (pf)")
        #endif
    }

    /// Deletes Burrow's table (pf: flushes the anchor) and nothing else. Returns whether it was there.
    @discardableResult
    public func remove() throws(FirewallError) -> Bool {
        try checkPrivileges("burrow firewall remove")
        #if os(Linux)
        return try nftables.remove()
        #elseif os(macOS)
        return try PfControl.remove()
        #else
        throw .unsupportedPlatform("the firewall layer supports Linux (nftables) and macOS (pf)")
        #endif
    }

    private func checkPrivileges(_ action: String) throws(FirewallError) {
        if requiresNetAdmin && !NetAdminCapability.isHeld() { throw .needsNetAdmin(action: action, detail: nil) }
    }

    /// For `burrow download` at start: applies the firewall when Burrow may (bound, CAP_NET_ADMIN held, a
    /// match this system can express), logs what happened, and never throws: the socket seam's pinning
    /// still protects when the second layer cannot be set up.
    @discardableResult
    public static func applyIfPermitted(policy: NetworkPolicy, match: FirewallMatch = .burrowMark,
                                        logger: Logger) -> FirewallApplyOutcome {
        FirewallController().applyIfPermitted(policy: policy, match: match, logger: logger)
    }

    @discardableResult
    public func applyIfPermitted(policy: NetworkPolicy, match: FirewallMatch, logger: Logger) -> FirewallApplyOutcome {
        let outcome = decideAndApply(policy: policy, match: match)
        switch outcome {
        case .applied(let status) where status.state == .matching:
            logger.notice("firewall layer active (table inet burrow): Burrow's packets (\(match)) may leave only through \(policy)")
        case .applied(let status):
            logger.error("firewall layer applied but the live table \(status.verdict)")
        case .skipped(let reason):
            logger.notice("firewall layer not applied: \(reason)")
        case .failed(let error):
            logger.error("firewall layer NOT applied: \(error)")
        }
        return outcome
    }

    private func decideAndApply(policy: NetworkPolicy, match: FirewallMatch) -> FirewallApplyOutcome {
        guard case .bound = policy else { return .skipped("running unbound, there are no interfaces to enforce") }
        if requiresNetAdmin && !NetAdminCapability.isHeld() {
            return .skipped("needs CAP_NET_ADMIN (run as root, or install it once with `burrow firewall apply`)")
        }
        #if os(macOS)
        if case .mark = match { return .skipped("pf cannot see socket marks; use `burrow firewall apply --match uid:NAME`") }
        #endif
        do {
            let spec = try FirewallSpec(policy: policy, match: match)
            return .applied(try apply(spec))
        } catch {
            return .failed(error)
        }
    }
}

#if os(macOS)
/// The apply path for pf: `pfctl -a burrow -f -` and friends (needs a Mac; the rule text is unit-tested anywhere).
enum PfControl {
    static func apply(_ spec: FirewallSpec) throws(FirewallError) {
        try check(run(PfAnchor.loadArguments, input: try PfAnchor.rules(for: spec)), action: "load anchor burrow")
    }

    static func status(expected spec: FirewallSpec) throws(FirewallError) -> FirewallStatus {
        let rules = try run(["-a", PfAnchor.name, "-sr"])
        try check(rules, action: "list the rules of anchor burrow")
        let state = try PfAnchor.state(fromRules: String(decoding: rules.standardOutput, as: UTF8.self), expected: spec)
        if state == .notInstalled { return FirewallStatus(state: .notInstalled, counters: [:]) }
        let labels = try run(["-a", PfAnchor.name, "-sl"])
        try check(labels, action: "list the labels of anchor burrow")
        return FirewallStatus(state: state, counters: PfAnchor.counters(fromLabels: String(decoding: labels.standardOutput, as: UTF8.self)))
    }

    static func remove() throws(FirewallError) -> Bool {
        let rules = try run(["-a", PfAnchor.name, "-sr"])
        try check(rules, action: "list the rules of anchor burrow")
        try check(run(PfAnchor.flushArguments), action: "flush anchor burrow")
        return !rules.standardOutput.isEmpty
    }

    private static func run(_ arguments: [String], input: String? = nil) throws(FirewallError) -> CommandResult {
        guard let pfctl = CommandRunner.locate("pfctl") else {
            throw .toolMissing(tool: "pfctl", hint: "pf's control tool ships with macOS in /sbin")
        }
        return try CommandRunner().run(pfctl, arguments, input: input)
    }

    private static func check(_ result: CommandResult, action: String) throws(FirewallError) {
        if result.succeeded { return }
        if result.standardError.contains("Permission denied") || result.standardError.contains("Operation not permitted") {
            throw .needsNetAdmin(action: "pfctl: \(action)", detail: result.standardError)
        }
        throw .toolFailed(tool: "pfctl", action: action, status: result.status, output: result.standardError)
    }
}
#endif
