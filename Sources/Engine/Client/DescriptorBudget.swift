#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the process's file descriptors are shared out, from the soft RLIMIT_NOFILE in effect.
///
/// Peers are what a stranger can multiply, so they get what is left after the others' shares and are
/// refused first: `peers` caps peer sockets of every torrent together (dialling, unhandshaken and
/// established), `halfOpen` caps those not handshaken yet. `storage` is how many files one torrent keeps
/// open (its `DescriptorCache`); `reservedForOthers` covers listeners, DNS and tracker sockets, the event
/// loop's own descriptors, netlink, stdio, resume journals and the runtime report. Invariant:
/// reservedForOthers + storage + peers ≤ limit whenever limit ≥ `minimumLimit`.
public struct DescriptorBudget: Sendable, Equatable, CustomStringConvertible {
    public static let reservedForOthers = 64
    public static let minimumLimit = reservedForOthers + 32
    /// Never raise the soft limit beyond this: more descriptors than this buy nothing but memory.
    public static let sensibleLimit = 8192

    public let limit: Int
    public let storage: Int
    public let peers: Int
    public let halfOpen: Int

    public init(limit: Int) {
        self.limit = limit
        let usable = max(limit - Self.reservedForOthers, 32)
        storage = min(256, max(8, usable / 4))
        peers = usable - storage
        halfOpen = min(64, max(4, peers / 4))
    }

    public var description: String {
        "\(limit) descriptors: \(peers) for peers (\(halfOpen) unhandshaken), \(storage) open files per torrent, \(Self.reservedForOthers) for the rest"
    }

    /// Raises the soft RLIMIT_NOFILE to the hard limit (at most `sensibleLimit`; never lowers it) and
    /// returns the budget for the limit now in effect.
    public static func raisingProcessLimit() -> DescriptorBudget {
        var limits = rlimit()
        guard getrlimit(Self.resource, &limits) == 0 else { return DescriptorBudget(limit: 1024) }
        let wanted = min(limits.rlim_max, rlim_t(sensibleLimit))
        if limits.rlim_cur < wanted {
            var raised = limits
            raised.rlim_cur = wanted
            if setrlimit(Self.resource, &raised) == 0 { limits = raised }
        }
        return DescriptorBudget(limit: Int(clamping: limits.rlim_cur))
    }

    #if canImport(Glibc)
    private static var resource: __rlimit_resource_t { __rlimit_resource_t(RLIMIT_NOFILE.rawValue) }
    #else
    private static var resource: Int32 { RLIMIT_NOFILE }
    #endif
}
