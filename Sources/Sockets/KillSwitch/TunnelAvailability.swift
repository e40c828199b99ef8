/// Whether Burrow's traffic has somewhere to go, as the tunnel guard sees it.
public enum TunnelAvailability: Sendable, Equatable, CustomStringConvertible {
    /// At least one allowed interface is up with a usable address. `changed` names the interfaces that
    /// appeared, disappeared or changed addresses since the previous report (on an address change the
    /// engine should rotate its identity: peer id, announce, DHT node id).
    case available(interfaces: [UsableInterface], changed: Set<String>)
    /// Nothing usable. `lost` is the interface whose loss caused it (at start: the policy's patterns),
    /// `since` is on the monotonic clock.
    case unavailable(lost: String, reason: String, since: MonotonicTimestamp)

    public var isAvailable: Bool {
        if case .available = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .available(let interfaces, let changed):
            let list = interfaces.map { "\($0.name) \($0.addressList)" }.joined(separator: "; ")
            let delta = changed.isEmpty ? "" : " (changed: \(changed.sorted().joined(separator: ",")))"
            return "available: \(list)\(delta)"
        case .unavailable(let lost, let reason, _):
            return "unavailable: \(lost) lost (\(reason))"
        }
    }
}

/// One firing of the kill switch, for logs, metrics and tests.
public struct KillRecord: Sendable, Equatable {
    public let interface: String
    public let reason: String
    /// How many sockets were closed; nil when the socket factory does not report counts.
    public let socketsClosed: Int?
    /// Monotonic time from the kernel event (right after recv) to the last close being issued.
    public let latencyMicroseconds: Double
    public let eventTimestamp: MonotonicTimestamp
}

extension UsableInterface {
    /// "10.7.0.2, fd00::2": addresses without ports, for log lines.
    var addressList: String {
        addresses.map { $0.ipAddress ?? "\($0)" }.joined(separator: ", ")
    }
}
