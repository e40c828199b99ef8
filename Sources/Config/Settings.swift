import Firewall
import NIOCore
import Sockets

/// Burrow's settings: one typed model, read from a TOML file, the environment and the command line.
///
/// Layers, lowest first: the file (`/etc/burrow/burrow.toml` or `--config FILE`), then environment variables
/// (`BURROW_<TABLE>_<KEY>`, see ``SettingKey/environmentVariable``), then flags. A value set in a higher layer wins;
/// a layer that leaves a key unset lets the layer below show through. Every layer is checked by the same value
/// parsers (``SettingKey``), so `port = 70000`, `BURROW_NETWORK_PORT=70000` and `--port 70000` fail alike, each
/// error naming the key, its source and, for the file, the line.
///
/// Why not swift-configuration: it has environment and command-line providers but no TOML provider, so the file
/// layer would be our own provider over TOMLKit anyway; its readers look keys up one by one and cannot tell a
/// misspelt key in the file or the environment from an absent one, which is the strictness we keep; flags are
/// already parsed (with help and validation) by ArgumentParser (its command-line provider is a non-default
/// trait, needing swift-tools-version 6.1). For six keys, three explicit layers over one typed model are
/// shorter, need no new package, and say exactly what wins. A server that wants a `ConfigReader` later can be
/// handed one built from `Settings`.
///
/// Only keys wired to behaviour exist: a key that did nothing would be a silent lie in the file.
public struct Settings: Sendable, Equatable {
    public var network = NetworkSettings()
    public var firewall = FirewallSettings()
    public var storage = StorageSettings()

    public init(network: NetworkSettings = NetworkSettings(), firewall: FirewallSettings = FirewallSettings(),
                storage: StorageSettings = StorageSettings()) {
        self.network = network
        self.firewall = firewall
        self.storage = storage
    }

    /// These settings with every key that `upper` sets taken from `upper`.
    public func overlaid(by upper: Settings) -> Settings {
        Settings(network: network.overlaid(by: upper.network), firewall: firewall.overlaid(by: upper.firewall),
                 storage: storage.overlaid(by: upper.storage))
    }
}

/// `[network]`: where Burrow's sockets may go.
public struct NetworkSettings: Sendable, Equatable {
    /// `bind`: interface names or glob patterns every socket is bound to. Never empty when set.
    public var bind: [String]?
    /// `allow_unbound`: true accepts any interface. Within one layer never true together with `bind`
    /// (the parsers refuse that); across layers the higher layer's choice replaces the lower one's.
    public var allowUnbound: Bool?
    /// `port`: the listen port, 1-65535.
    public var port: Int?
    /// `dns`: numeric DNS server addresses (port 53), reached through the tunnel.
    public var dns: [SocketAddress]?

    public static let defaultPort = 6881

    public init(bind: [String]? = nil, allowUnbound: Bool? = nil, port: Int? = nil, dns: [SocketAddress]? = nil) {
        self.bind = bind
        self.allowUnbound = allowUnbound
        self.port = port
        self.dns = dns
    }

    /// The binding chosen, or nil when no layer chose one: callers refuse to touch the network then
    /// (`bind` never silently defaults).
    public var policy: NetworkPolicy? {
        if let bind { return .bound(interfacePatterns: bind) }
        return allowUnbound == true ? .unbound : nil
    }

    /// A higher layer's `bind` replaces a lower `allow_unbound = true` and the other way round, so the
    /// highest layer that chose a binding decides it; `allow_unbound = false` withdraws a lower layer's
    /// permission without choosing interfaces.
    func overlaid(by upper: NetworkSettings) -> NetworkSettings {
        var merged = self
        if let bind = upper.bind {
            merged.bind = bind
            merged.allowUnbound = upper.allowUnbound
        } else if let allowUnbound = upper.allowUnbound {
            merged.allowUnbound = allowUnbound
            if allowUnbound { merged.bind = nil }
        }
        merged.port = upper.port ?? port
        merged.dns = upper.dns ?? dns
        return merged
    }
}

/// `[firewall]`: how the packet-filter layer recognises Burrow's packets.
public struct FirewallSettings: Sendable, Equatable {
    /// `match`: `mark`, `uid:NAME` or `cgroup:PATH`.
    public var match: FirewallMatch?

    public init(match: FirewallMatch? = nil) {
        self.match = match
    }

    func overlaid(by upper: FirewallSettings) -> FirewallSettings {
        FirewallSettings(match: upper.match ?? match)
    }
}

/// `[storage]`: where Burrow keeps its own files.
public struct StorageSettings: Sendable, Equatable {
    /// `state_dir`: Burrow's state folder (resume data below it), as `--state-dir`; unset: the platform default
    /// (`StateDirectory.defaultPath()`). A relative path is taken from the working folder, as the flag's is.
    public var stateDir: String?

    public init(stateDir: String? = nil) {
        self.stateDir = stateDir
    }

    func overlaid(by upper: StorageSettings) -> StorageSettings {
        StorageSettings(stateDir: upper.stateDir ?? stateDir)
    }
}
