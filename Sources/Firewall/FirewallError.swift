import Foundation

/// Why the firewall layer could not be built, applied, read or removed. Every case names what was wrong.
public enum FirewallError: Error, Equatable, CustomStringConvertible {
    /// `--match` / `[firewall] match` did not parse.
    case invalidMatch(String, reason: String)
    /// The policy gives the firewall nothing to enforce (unbound), or no interface at all.
    case nothingToEnforce(String)
    /// An interface pattern the packet filter cannot express (nft only has a trailing `*`).
    case unsupportedPattern(String, filter: String, reason: String)
    /// The match kind does not exist on this packet filter (pf has no socket marks or cgroups).
    case unsupportedMatch(FirewallMatch, filter: String, reason: String)
    /// The packet filter's command line tool is not installed.
    case toolMissing(tool: String, hint: String)
    /// Changing or reading the kernel's packet filter needs CAP_NET_ADMIN.
    case needsNetAdmin(action: String, detail: String?)
    /// The tool ran and failed; its own error text is kept verbatim.
    case toolFailed(tool: String, action: String, status: Int32, output: String)
    /// The tool could not be started at all.
    case launchFailed(tool: String, reason: String)
    /// `nft -j` produced something that is not the JSON we expect.
    case unreadableListing(String)
    /// Not available on this operating system.
    case unsupportedPlatform(String)

    public var description: String {
        switch self {
        case .invalidMatch(let text, let reason):
            return "invalid firewall match \"\(text)\": \(reason)"
        case .nothingToEnforce(let reason):
            return "the firewall has nothing to enforce: \(reason)"
        case .unsupportedPattern(let pattern, let filter, let reason):
            return "interface pattern \"\(pattern)\" cannot be expressed in \(filter): \(reason)"
        case .unsupportedMatch(let match, let filter, let reason):
            return "\(filter) cannot identify Burrow's traffic by \(match): \(reason)"
        case .toolMissing(let tool, let hint):
            return "\(tool) is not installed (looked in PATH, /usr/sbin, /sbin): \(hint)"
        case .needsNetAdmin(let action, let detail):
            return "\(action) needs CAP_NET_ADMIN (run as root)" + (detail.map { ": \($0)" } ?? "")
        case .toolFailed(let tool, let action, let status, let output):
            let text = output.trimmingCharacters(in: .whitespacesAndNewlines)
            return "\(tool) failed to \(action) (exit status \(status))" + (text.isEmpty ? "" : ":\n\(text)")
        case .launchFailed(let tool, let reason):
            return "could not run \(tool): \(reason)"
        case .unreadableListing(let reason):
            return "could not read nft's JSON listing of table inet burrow: \(reason)"
        case .unsupportedPlatform(let what):
            return what
        }
    }
}
