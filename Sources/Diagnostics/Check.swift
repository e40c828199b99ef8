import NIOCore
import Sockets

/// The settings `burrow doctor` judges the machine against: the same network options `download` takes.
public struct DoctorConfiguration: Sendable, Equatable {
    /// nil when neither `--bind` nor `--allow-unbound` was given (Burrow would refuse to run).
    public var policy: NetworkPolicy?
    /// `--dns`; empty means resolv.conf's nameservers are used.
    public var dnsServers: [SocketAddress]
    /// `--port`, when known.
    public var listenPort: Int?
    /// `--probe-name`: a name to resolve live through the tunnel; nil skips the live query.
    public var probeName: String?

    public init(policy: NetworkPolicy?, dnsServers: [SocketAddress] = [], listenPort: Int? = nil, probeName: String? = nil) {
        self.policy = policy
        self.dnsServers = dnsServers
        self.listenPort = listenPort
        self.probeName = probeName
    }

    /// The interface patterns Burrow is bound to; empty when unbound or unconfigured.
    public var boundPatterns: [String] {
        if case .bound(let patterns)? = policy { return patterns }
        return []
    }

    /// True when `name` is a tunnel interface under this configuration. Unbound or unconfigured: none is.
    public func isBound(interfaceNamed name: String) -> Bool {
        guard case .bound? = policy else { return false }
        return policy?.allows(interfaceNamed: name) ?? false
    }
}

/// One diagnosis. Pure: it reads the snapshot and the configuration and touches nothing else, so every
/// broken setup it claims to detect can be reproduced with a hand-made snapshot.
public protocol Check: Sendable {
    var id: String { get }
    var title: String { get }
    func evaluate(_ snapshot: SystemSnapshot, configuration: DoctorConfiguration) -> CheckResult
}

extension Check {
    func ok(_ detail: String) -> CheckResult {
        CheckResult(id: id, title: title, status: .ok, detail: detail)
    }

    func warning(_ detail: String, fix: String?) -> CheckResult {
        CheckResult(id: id, title: title, status: .warning, detail: detail, fix: fix)
    }

    func problem(_ detail: String, fix: String?) -> CheckResult {
        CheckResult(id: id, title: title, status: .problem, detail: detail, fix: fix)
    }
}
