import Foundation

/// Burrow's table in the kernel's nftables, through the `nft` tool.
public struct Nftables: Sendable {
    public var runner: CommandRunner

    public init(runner: CommandRunner = CommandRunner()) {
        self.runner = runner
    }

    /// Replaces Burrow's table with the one `spec` generates, in one atomic batch (`nft -f -`).
    public func apply(_ spec: FirewallSpec) throws(FirewallError) {
        let batch = try NftablesRuleset.batch(for: spec)
        try check(run(["-f", "-"], input: batch), action: "apply Burrow's ruleset")
    }

    /// The live table, or nil when it does not exist.
    public func liveTable() throws(FirewallError) -> LiveTable? {
        let result = try run(["-j", "list", "table", BurrowTable.family, BurrowTable.name])
        if !result.succeeded && result.standardError.contains("No such file or directory") { return nil }
        try check(result, action: "list table \(BurrowTable.family) \(BurrowTable.name)")
        return try NftablesListing.parse(result.standardOutput)
    }

    /// Deletes Burrow's table (and only it) if it exists. Returns whether it existed.
    @discardableResult
    public func remove() throws(FirewallError) -> Bool {
        let existed = try liveTable() != nil
        try check(run(["-f", "-"], input: NftablesRuleset.removalBatch), action: "delete table inet burrow")
        return existed
    }

    /// `nft list ruleset`: everything in the namespace's packet filter (tests compare it around apply/remove).
    public func ruleset() throws(FirewallError) -> String {
        let result = try run(["list", "ruleset"])
        try check(result, action: "list the ruleset")
        return String(decoding: result.standardOutput, as: UTF8.self)
    }

    private func run(_ arguments: [String], input: String? = nil) throws(FirewallError) -> CommandResult {
        guard let nft = CommandRunner.locate("nft") else {
            throw .toolMissing(tool: "nft", hint: "install nftables (Debian: apt-get install nftables)")
        }
        return try runner.run(nft, arguments, input: input)
    }

    private func check(_ result: CommandResult, action: String) throws(FirewallError) {
        if result.succeeded { return }
        let text = result.standardError.isEmpty ? String(decoding: result.standardOutput, as: UTF8.self) : result.standardError
        if text.contains("Operation not permitted") {
            throw .needsNetAdmin(action: "nft: \(action)", detail: text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        throw .toolFailed(tool: "nft", action: action, status: result.status, output: text)
    }
}

/// Whether this process may change the packet filter.
public enum NetAdminCapability {
    /// Linux: CAP_NET_ADMIN (bit 12) in the effective set from /proc/self/status. Elsewhere: root.
    public static func isHeld() -> Bool {
        #if os(Linux)
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return geteuid() == 0 }
        return hasNetAdmin(procStatus: status)
        #else
        return geteuid() == 0
        #endif
    }

    /// Reads the `CapEff:` line of a /proc/<pid>/status text.
    static func hasNetAdmin(procStatus: String) -> Bool {
        for line in procStatus.split(separator: "\n") where line.hasPrefix("CapEff:") {
            let hex = line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces)
            guard let bits = UInt64(hex, radix: 16) else { return false }
            return bits & (1 << 12) != 0
        }
        return false
    }
}
