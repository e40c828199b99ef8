import ArgumentParser
import Config
import Firewall
import Foundation
import NIOCore
import Sockets

/// The network flags every networked command shares (`@OptionGroup var network: NetworkOptions`): the top layer
/// of ``Settings``, over the environment (`BURROW_NETWORK_*`) and the configuration file.
struct NetworkOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Interfaces to bind every socket to: names or patterns, comma-separated (wg0,tun*).",
                               valueName: "iface[,iface...]"))
    var bind: String?

    @Flag(help: "Use any interface (no binding). Your real address may leak; every progress line warns.")
    var allowUnbound = false

    @Option(help: ArgumentHelp("DNS servers to use, reached through the tunnel (default: resolv.conf's).",
                               valueName: "ip[,ip...]"))
    var dns: String?

    @Option(help: "Listen port, shared by all bound interfaces (default \(NetworkSettings.defaultPort)).")
    var port: Int?

    @Option(help: ArgumentHelp("""
        Configuration file (default \(SettingsLoader.defaultPath), read when it exists). BURROW_NETWORK_*, \
        BURROW_FIREWALL_* and BURROW_STORAGE_* environment variables override it; flags override both.
        """, valueName: "path"))
    var config: String?

    /// Checks the flags on their own; the file and the environment are checked when `resolve()` reads them.
    func validate() throws {
        if bind != nil && allowUnbound {
            throw ValidationError("--bind and --allow-unbound contradict each other; pass one")
        }
        do { _ = try flagLayer() } catch { throw ValidationError("\(error)") }
    }

    /// The flags as a settings layer, each value checked by the parser the file and environment use.
    func flagLayer() throws(SettingsError) -> Settings {
        var layer = Settings()
        if let bind { try layer.set(.networkBind, text: bind, from: .flag("--bind")) }
        if allowUnbound { try layer.set(.networkAllowUnbound, text: "true", from: .flag("--allow-unbound")) }
        if let port { try layer.set(.networkPort, text: String(port), from: .flag("--port")) }
        if let dns { try layer.set(.networkDNS, text: dns, from: .flag("--dns")) }
        return layer
    }

    /// File, environment and flags merged. `requireNetworkChoice`: refuse when no layer chose a binding or
    /// --allow-unbound (every command that touches the network wants that). `commandFlags`: the settings a
    /// command's own flags set (`download --state-dir`), part of the flag layer.
    func resolve(requireNetworkChoice: Bool = true, commandFlags: Settings = Settings(),
                 environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ResolvedNetwork {
        let loaded: LoadedSettings
        do {
            loaded = try SettingsLoader.load(explicitPath: config, environment: environment,
                                             flags: commandFlags.overlaid(by: try flagLayer()))
        } catch {
            throw ValidationError("\(error)")
        }
        let network = loaded.settings.network
        if requireNetworkChoice && network.policy == nil {
            throw ValidationError("""
                refusing to touch the network: no interface to bind to.
                Pass --bind IFACE with your VPN interface (for example --bind wg0), set bind = ["wg0"] under \
                [network] in \(loaded.filePath ?? SettingsLoader.defaultPath) (or \
                \(SettingKey.networkBind.environmentVariable)=wg0), or pass --allow-unbound to accept that \
                traffic may leave through any interface.
                """)
        }
        return ResolvedNetwork(policy: network.policy ?? .unbound, policyWasChosen: network.policy != nil,
                               port: network.port ?? NetworkSettings.defaultPort, dnsServers: network.dns ?? [],
                               firewallMatch: loaded.settings.firewall.match, configSource: loaded.filePath,
                               settings: loaded.settings)
    }
}

/// The effective network settings after merging flags over the environment and the configuration file.
struct ResolvedNetwork: Equatable {
    var policy: NetworkPolicy
    /// False only when `resolve(requireNetworkChoice: false)` found neither a binding nor --allow-unbound.
    var policyWasChosen: Bool
    var port: Int
    var dnsServers: [SocketAddress]
    /// `[firewall] match` from the file, the environment or `firewall --match`.
    var firewallMatch: FirewallMatch?
    /// The file that was read, if any.
    var configSource: String?
    /// Every setting, merged (`storage.stateDir` among them).
    var settings: Settings
}
