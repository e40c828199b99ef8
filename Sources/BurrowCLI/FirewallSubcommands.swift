import ArgumentParser
import Firewall

struct FirewallApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Install (or replace) Burrow's firewall in one atomic step; running it again changes nothing.")

    @OptionGroup var options: FirewallSpecOptions

    @Flag(help: "Print the rules instead of installing them.")
    var dryRun = false

    @Option(help: "With --dry-run: which rules to print, nft (Linux) or pf (macOS anchor).")
    var format: RulesFormat?

    enum RulesFormat: String, ExpressibleByArgument {
        case nft, pf
    }

    func validate() throws {
        if format != nil && !dryRun { throw ValidationError("--format only applies with --dry-run") }
    }

    func run() throws {
        let spec = try options.spec()
        if dryRun {
            #if os(macOS)
            let chosen = format ?? .pf
            #else
            let chosen = format ?? .nft
            #endif
            do {
                switch chosen {
                case .nft: print(try NftablesRuleset.batch(for: spec), terminator: "")
                case .pf:
                    print(try PfAnchor.rules(for: spec), terminator: "")
                    print("# apply with: pfctl \(PfAnchor.loadArguments.joined(separator: " "))")
                }
            } catch { throw FirewallFailure(error: error) }
            return
        }
        let status: FirewallStatus
        do { status = try FirewallController().apply(spec) } catch { throw FirewallFailure(error: error) }
        print("firewall: applied; \(status.verdict)")
        print("Burrow's packets (\(spec.match)) may leave only through \(spec.allowedInterfaces.joined(separator: ", "))")
        if status.state != .matching { throw ExitCode.failure }
    }
}

struct FirewallStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Compare the live firewall with the configuration and show how many leaks it blocked.",
        discussion: "Exit status: 0 active and matching, 1 active but differs, 3 not installed.")

    @OptionGroup var options: FirewallSpecOptions

    func run() throws {
        let spec = try options.spec()
        let status: FirewallStatus
        do { status = try FirewallController().status(expected: spec) } catch { throw FirewallFailure(error: error) }
        print("firewall: \(status.verdict)")
        print("configured: Burrow's packets (\(spec.match)) may leave only through \(spec.allowedInterfaces.joined(separator: ", "))")
        if let counters = status.countersLine { print(counters) }
        if let loopback = status.loopbackLine { print(loopback) }
        switch status.state {
        case .matching: return
        case .differs: throw ExitCode.failure
        case .notInstalled: throw ExitCode(3)
        }
    }
}

struct FirewallRemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Delete Burrow's firewall (its table or anchor only); nothing else is touched.")

    func run() throws {
        let existed: Bool
        do { existed = try FirewallController().remove() } catch { throw FirewallFailure(error: error) }
        print(existed ? "firewall: removed" : "firewall: not installed; nothing to remove")
    }
}
