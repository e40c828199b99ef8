import NIOCore
import Sockets

/// Everything the checks look at, gathered once (by `SystemSnapshotCollector`, or by hand in tests).
/// Plain data: no check ever asks the system anything itself.
public struct SystemSnapshot: Sendable, Equatable {
    /// The kernel's interface table: names, flags, addresses.
    public var interfaces: [InterfaceState]
    /// resolv.conf's nameservers, or why they could not be read.
    public var resolvConf: ResolvConfObservation
    /// The kernel's route to each DNS server that is in use, keyed by the server's address text.
    public var routes: [String: RouteObservation]
    /// Live query results per DNS server address text; empty when no probe name was given.
    public var dnsQueries: [String: DNSQueryOutcome]
    public var firewall: FirewallObservation
    public var runtime: RuntimeObservation

    public init(
        interfaces: [InterfaceState], resolvConf: ResolvConfObservation = .unavailable("not read"),
        routes: [String: RouteObservation] = [:], dnsQueries: [String: DNSQueryOutcome] = [:],
        firewall: FirewallObservation = .absent, runtime: RuntimeObservation = .notRunning
    ) {
        self.interfaces = interfaces
        self.resolvConf = resolvConf
        self.routes = routes
        self.dnsQueries = dnsQueries
        self.firewall = firewall
        self.runtime = runtime
    }

    /// The DNS servers Burrow would ask: `--dns` when given, else resolv.conf's (none if unreadable).
    public func dnsServers(for configuration: DoctorConfiguration) -> [SocketAddress] {
        if !configuration.dnsServers.isEmpty { return configuration.dnsServers }
        if case .parsed(let conf) = resolvConf { return conf.nameservers }
        return []
    }
}

public enum ResolvConfObservation: Sendable, Equatable {
    case parsed(ResolvConf)
    /// The file could not be read; the reason names the path.
    case unavailable(String)
}

/// The route the kernel picks for one destination (`ip route get`).
public struct KernelRoute: Sendable, Equatable {
    public let destination: String
    /// The interface packets leave through.
    public let device: String
    public let gateway: String?
    /// The source address the kernel would choose.
    public let preferredSource: String?
    /// `unicast`, `local`, ... when the kernel says (absent for ordinary unicast routes).
    public let type: String?

    public init(destination: String, device: String, gateway: String? = nil, preferredSource: String? = nil, type: String? = nil) {
        self.destination = destination
        self.device = device
        self.gateway = gateway
        self.preferredSource = preferredSource
        self.type = type
    }
}

public enum RouteObservation: Sendable, Equatable {
    case route(KernelRoute)
    /// No route, or the lookup itself failed; the text says which.
    case failed(String)
}

/// How a live query for the probe name went against one server.
public enum DNSQueryOutcome: Sendable, Equatable {
    case answered(addresses: [String])
    /// The server answered, through the tunnel, that the name has no address (NXDOMAIN or no data):
    /// reachable, but the probe name was a poor choice.
    case answeredNoAddress(String)
    /// No usable answer (timeout, refused, no socket); the text says why.
    case failed(String)
}

/// The `inet burrow` firewall table, as the firewall layer reports it.
public enum FirewallObservation: Sendable, Equatable {
    /// No Burrow table is loaded.
    case absent
    case active(FirewallTable)
    /// The state could not be read (not root, nft missing, ...); the text says why.
    case unreadable(String)
}

/// A loaded firewall table: the firewall layer's own verdict on it, and its drop counters.
public struct FirewallTable: Sendable, Equatable {
    public enum Comparison: Sendable, Equatable {
        /// The table is exactly what the configuration generates.
        case matching
        /// Each entry is one way it differs, in the configuration's terms.
        case differs([String])
        /// There was nothing to compare with (no binding configured, or unbound).
        case notCompared
    }

    public var comparison: Comparison
    /// Interface names or patterns the table lets Burrow's packets out through, when known.
    public var allowedInterfaces: [String]
    /// How the table recognises Burrow's packets ("mark 0x42525700", "uid 1001"), when known.
    public var identity: String?
    /// Packets and bytes of Burrow's the table dropped since it was applied, when it counts them.
    public var droppedPackets: UInt64?
    public var droppedBytes: UInt64?

    public init(comparison: Comparison, allowedInterfaces: [String], identity: String? = nil,
                droppedPackets: UInt64? = nil, droppedBytes: UInt64? = nil) {
        self.comparison = comparison
        self.allowedInterfaces = allowedInterfaces
        self.identity = identity
        self.droppedPackets = droppedPackets
        self.droppedBytes = droppedBytes
    }
}

/// Whether a Burrow client is running, as its runtime report says.
public enum RuntimeObservation: Sendable, Equatable {
    /// No report file: nothing is running.
    case notRunning
    /// A report whose process is alive.
    case running(RuntimeReport)
    /// A report left behind by a process that is gone.
    case stale(RuntimeReport)
    /// A report exists but could not be read or decoded; the text names the path and the reason.
    case unreadable(String)
}
