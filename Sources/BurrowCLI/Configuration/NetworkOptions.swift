import ArgumentParser
import Firewall
import Foundation
import NIOCore
import Sockets

/// The network flags every networked command shares (`@OptionGroup var network: NetworkOptions`), merged
/// over the configuration file: a flag given on the command line wins over the file's value.
struct NetworkOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Interfaces to bind every socket to: names or patterns, comma-separated (wg0,tun*).",
                               valueName: "iface[,iface...]"))
    var bind: String?

    @Flag(help: "Use any interface (no binding). Your real address may leak; every progress line warns.")
    var allowUnbound = false

    @Option(help: ArgumentHelp("DNS servers to use, reached through the tunnel (default: resolv.conf's).",
                               valueName: "ip[,ip...]"))
    var dns: String?

    @Option(help: "Listen port, shared by all bound interfaces (default 6881).")
    var port: Int?

    @Option(help: ArgumentHelp("Configuration file (default \(ConfigFile.defaultPath), read when it exists).",
                               valueName: "path"))
    var config: String?

    static let defaultPort = 6881

    /// Checks the flags on their own; the file is checked when `resolve()` reads it.
    func validate() throws {
        if bind != nil && allowUnbound {
            throw ValidationError("--bind and --allow-unbound contradict each other; pass one")
        }
        if let bind {
            let names = Self.patterns(bind)
            if names.isEmpty { throw ValidationError("--bind: no interface named") }
            for name in names {
                if let problem = InterfacePattern.validate(name) { throw ValidationError("--bind: \(problem)") }
            }
        }
        if let port, !(1...65535).contains(port) { throw ValidationError("--port must be 1-65535, got \(port)") }
        if let dns {
            for text in dns.split(separator: ",") where DNSServerText.parse(String(text)) == nil {
                throw ValidationError("--dns: \"\(text)\" is not a numeric IP address (expected ip[,ip...])")
            }
        }
    }

    /// The configuration file to read: --config (must exist), else the default path if it exists.
    func loadConfigFile() throws -> ConfigFile? {
        if let config {
            do { return try ConfigFile.load(path: config) } catch { throw ValidationError("\(error)") }
        }
        guard FileManager.default.fileExists(atPath: ConfigFile.defaultPath) else { return nil }
        do { return try ConfigFile.load(path: ConfigFile.defaultPath) } catch { throw ValidationError("\(error)") }
    }

    /// Flags merged over the configuration file. `requireNetworkChoice`: refuse when neither a binding
    /// nor --allow-unbound is given anywhere (every command that touches the network wants that).
    func resolve(requireNetworkChoice: Bool = true) throws -> NetworkSettings {
        let file = try loadConfigFile()
        let source = config ?? (file == nil ? nil : ConfigFile.defaultPath)
        let policy: NetworkPolicy?
        if let bind {
            policy = .bound(interfacePatterns: Self.patterns(bind))
        } else if allowUnbound {
            policy = .unbound
        } else if let patterns = file?.bind {
            policy = .bound(interfacePatterns: patterns)
        } else if file?.allowUnbound == true {
            policy = .unbound
        } else {
            policy = nil
        }
        if requireNetworkChoice && policy == nil {
            throw ValidationError("""
                refusing to touch the network: no interface to bind to.
                Pass --bind IFACE with your VPN interface (for example --bind wg0), set bind = ["wg0"] under \
                [network] in \(source ?? ConfigFile.defaultPath), or pass --allow-unbound to accept that traffic \
                may leave through any interface.
                """)
        }
        let dnsServers = dns.map { $0.split(separator: ",").compactMap { DNSServerText.parse(String($0)) } }
            ?? file?.dns ?? []
        return NetworkSettings(policy: policy ?? .unbound, policyWasChosen: policy != nil,
                               port: port ?? file?.port ?? Self.defaultPort, dnsServers: dnsServers,
                               firewallMatch: file?.firewallMatch, configSource: source)
    }

    static func patterns(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}

/// The effective network settings after merging flags over the configuration file.
struct NetworkSettings: Equatable {
    var policy: NetworkPolicy
    /// False only when `resolve(requireNetworkChoice: false)` found neither a binding nor --allow-unbound.
    var policyWasChosen: Bool
    var port: Int
    var dnsServers: [SocketAddress]
    /// `[firewall] match` from the file; commands with `--match` let the flag win.
    var firewallMatch: FirewallMatch?
    /// The file that was read, if any.
    var configSource: String?
}
