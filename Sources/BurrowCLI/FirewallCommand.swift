import ArgumentParser
import Config
import Firewall

/// `burrow firewall apply|status|remove`: the second leak layer, in the kernel's packet filter.
struct FirewallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "firewall",
        abstract: "Install, check or remove the packet-filter layer that keeps Burrow's traffic in the tunnel.",
        discussion: """
            Linux: one nftables table of Burrow's own (table inet burrow). Burrow's packets may leave only
            through the --bind interfaces (patterns such as wg* also cover interfaces created later); the
            rest of Burrow's packets, loopback included, are dropped and counted. Other programs are not
            affected. macOS: the same rules as pf anchor "burrow" (Burrow identified by --match uid:NAME).
            """,
        subcommands: [FirewallApplyCommand.self, FirewallStatusCommand.self, FirewallRemoveCommand.self])
}

/// The options `apply` and `status` share: what the firewall should look like.
struct FirewallSpecOptions: ParsableArguments {
    @OptionGroup var network: NetworkOptions

    @Option(help: ArgumentHelp("""
        How Burrow's packets are recognised: mark (the SO_MARK Burrow sets when it has CAP_NET_ADMIN, i.e. \
        runs as root; the default), uid:NAME (Burrow runs as its own user without CAP_NET_ADMIN; the only \
        choice with pf) or cgroup:PATH (a cgroup v2 path below /sys/fs/cgroup, e.g. \
        system.slice/burrow.service).
        """, valueName: "mark|uid:NAME|cgroup:PATH"))
    var match: String?

    func validate() throws {
        _ = try commandFlags()
    }

    /// `--match` as this command's flag layer for `firewall.match`, checked by the parser the file uses.
    private func commandFlags() throws -> Settings {
        var flags = Settings()
        do {
            if let match { try flags.set(.firewallMatch, text: match, from: .flag("--match")) }
        } catch {
            throw ValidationError("\(error)")
        }
        return flags
    }

    /// The firewall the flags, the environment and the configuration file describe.
    func spec() throws -> FirewallSpec {
        let settings = try network.resolve(requireNetworkChoice: false, commandFlags: try commandFlags())
        guard settings.policyWasChosen else {
            throw ValidationError("""
                no interfaces to allow: pass --bind IFACE[,IFACE...] (for example --bind wg0), or set \
                bind = ["wg0"] under [network] in \(settings.configSource ?? SettingsLoader.defaultPath) \
                (or \(SettingKey.networkBind.environmentVariable)=wg0)
                """)
        }
        let chosen = settings.firewallMatch ?? .burrowMark
        do { return try FirewallSpec(policy: settings.policy, match: chosen) } catch { throw ValidationError("\(error)") }
    }
}

/// Prints a firewall error the way the CLI prints every error, and fails.
struct FirewallFailure: Error, CustomStringConvertible {
    let error: FirewallError
    var description: String { "\(error)" }
}
