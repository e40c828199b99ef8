/// Why a link stopped carrying packets.
public enum LinkDownReason: String, Sendable, Hashable, CustomStringConvertible {
    /// The interface no longer exists (deleted, or renamed away).
    case removed
    /// Someone set it down (`ip link set … down`, `ifconfig … down`).
    case adminDown = "admin down"
    /// It is up, but the carrier is gone (peer gone, cable out, tunnel driver stopped).
    case carrierLost = "carrier lost"

    public var description: String { rawValue }
}

/// Why the whole interface table was re-read.
public enum ResyncReason: String, Sendable, Hashable, CustomStringConvertible {
    /// The first state after `start`.
    case initial
    /// The kernel dropped notifications (socket buffer overrun); state may have changed unseen.
    case overrun

    public var description: String { rawValue }
}

/// A change in the interface table. Every case carries the post-change state, so a consumer never needs to
/// ask the monitor again (and never races it).
public enum InterfaceChange: Sendable, Hashable {
    /// The link became operational (up, running, carrier).
    case linkUp(InterfaceState)
    /// The link stopped being operational, or disappeared (then the state is its last known one).
    case linkDown(InterfaceState, reason: LinkDownReason)
    /// An address was assigned, or its flags changed (e.g. IPv6 duplicate address detection finished).
    case addressAdded(InterfaceState, InterfaceAddress)
    case addressRemoved(InterfaceState, InterfaceAddress)
    /// A default route started or stopped pointing at this interface.
    case defaultRouteChanged(InterfaceState)
    /// The complete table, re-read from the kernel. Anything not in it is gone.
    case resync([InterfaceState], reason: ResyncReason)
    /// The monitor can no longer see changes. Consumers must assume the worst (fail closed).
    case failed(reason: String)
}

/// A change, stamped with the monotonic time right after the kernel handed it over.
public struct InterfaceEvent: Sendable, Hashable {
    public let change: InterfaceChange
    public let timestamp: MonotonicTimestamp

    public init(_ change: InterfaceChange, at timestamp: MonotonicTimestamp) {
        self.change = change
        self.timestamp = timestamp
    }
}

/// Something that reports interface changes: the kernel-backed `InterfaceMonitor`, or a scripted source in tests.
///
/// Contract: `start` delivers `.resync(_, reason: .initial)` with the full table before it returns (on the
/// caller's thread); every later event is delivered in order, one at a time, never concurrently, on the
/// source's own thread. After `stop` returns no more events are delivered (unless `stop` is called from the
/// handler itself, in which case the current delivery finishes first).
public protocol InterfaceEventSource: AnyObject, Sendable {
    func start(handler: @escaping @Sendable (InterfaceEvent) -> Void) throws
    func snapshot() -> [InterfaceState]
    func stop()
}

/// Why the interface monitor could not start or keep going.
public struct InterfaceMonitorError: Error, Equatable, CustomStringConvertible {
    public let operation: String
    public let errno: Int32
    public let detail: String

    public init(operation: String, errno: Int32, detail: String) {
        self.operation = operation
        self.errno = errno
        self.detail = detail
    }

    public var description: String { "interface monitor: \(operation) failed: \(detail) (errno \(errno))" }
}
