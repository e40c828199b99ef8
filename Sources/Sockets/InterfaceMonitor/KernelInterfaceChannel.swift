/// What one blocking read of the kernel's interface-change socket produced.
enum KernelReceive {
    /// Decoded facts, stamped right after the read returned.
    case records([KernelRecord], at: MonotonicTimestamp)
    /// Notifications were lost; the whole table must be re-read.
    case overrun(at: MonotonicTimestamp)
    /// Nothing to act on (interrupted read, acknowledgement, message types we do not track).
    case nothing
    /// The socket is unusable; no further changes can be seen.
    case failed(String)
}

/// The platform half of the interface monitor: a kernel socket subscribed to interface changes.
/// (Linux: rtnetlink, `NetlinkRouteChannel`; macOS: PF_ROUTE, `RoutingSocketChannel`.)
///
/// Invariant: `readTable` and `receive` are never called concurrently (the monitor calls them from `start`,
/// before its thread exists, and then only from its thread); `wake` may be called from any thread.
protocol KernelInterfaceChannel: Sendable {
    static func open() throws -> Self
    /// Reads the complete interface table. Changes that arrive interleaved with the dump are applied to
    /// the result and also passed to `live`, in arrival order.
    func readTable(buffer: inout [UInt8], live: (KernelRecord, MonotonicTimestamp) -> Void) throws -> InterfaceStateTable
    /// Blocks until the kernel says something.
    func receive(buffer: inout [UInt8]) -> KernelReceive
    /// Makes a `receive` blocked on another thread return soon.
    func wake()
    func close()
}
