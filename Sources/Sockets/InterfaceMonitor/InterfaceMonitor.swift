#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOConcurrencyHelpers

/// Watches the kernel's interface table and reports changes as they happen, with no polling: a dedicated
/// thread blocks in recv on an rtnetlink (Linux) or PF_ROUTE (macOS) socket and calls the handler
/// synchronously, on that thread, right after decoding — so a kill switch can act within microseconds.
public final class InterfaceMonitor: InterfaceEventSource, Sendable {
    #if os(Linux)
    typealias Channel = NetlinkRouteChannel
    #elseif os(macOS)
    typealias Channel = RoutingSocketChannel
    #endif

    private enum Phase {
        case idle
        case running(Running)
        /// `stop` was called; the thread is finishing its current delivery.
        case stopping
    }

    private struct Running {
        let channel: Channel
        let handler: @Sendable (InterfaceEvent) -> Void
        /// Becomes true when the monitor thread has left its loop.
        let exited: ConditionLock<Bool>
        let thread: ObjectIdentifier
    }

    private struct State {
        var phase: Phase = .idle
        /// Invariant: what the kernel last told us, updated before the matching event is delivered.
        var table = InterfaceStateTable()
        /// Set by `stop`: the thread must deliver nothing more and leave its loop.
        var stopRequested = false
        /// Set when `stop` was called on the monitor thread itself: the thread closes the socket on exit,
        /// since nobody is left to join it.
        var closeOnExit = false
    }

    private let state = NIOLockedValueBox(State())
    /// Large enough for any rtnetlink datagram (dumps use up to 32 KiB per message batch).
    private static let receiveBufferSize = 64 * 1024

    /// Linux limits thread names to 15 bytes.
    public static let threadName = "burrow-ifmon"

    public init() {}

    /// Opens the kernel socket, reads the current table, delivers it as `.resync(_, reason: .initial)` on the
    /// calling thread, then starts the monitor thread. Throws if already running or the socket fails.
    public func start(handler: @escaping @Sendable (InterfaceEvent) -> Void) throws {
        let alreadyRunning = state.withLockedValue { state -> Bool in
            if case .idle = state.phase { return false }
            return true
        }
        if alreadyRunning {
            throw InterfaceMonitorError(operation: "start", errno: EALREADY, detail: "the monitor is already running")
        }
        let channel = try Channel.open()
        var buffer = [UInt8](repeating: 0, count: Self.receiveBufferSize)
        let table: InterfaceStateTable
        do {
            table = try channel.readTable(buffer: &buffer, live: { _, _ in })
        } catch {
            channel.close()
            throw error
        }
        let exited = ConditionLock(value: false)
        let thread = Thread { [self] in
            // Named from inside, at the OS level (Foundation's Thread.name does not reliably reach it on Linux),
            // so the thread is recognisable in debuggers, `top -H` and crash reports.
            #if os(Linux)
            // Glibc's module does not export pthread_setname_np; the kernel takes the name here.
            let comm = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
            if comm >= 0 {
                _ = Self.threadName.withCString { write(comm, $0, strlen($0)) }
                _ = Glibc.close(comm)
            }
            #elseif os(macOS)
            _ = pthread_setname_np(Self.threadName)
            #endif
            self.run(channel: channel, handler: handler, exited: exited)
        }
        state.withLockedValue { state in
            state.table = table
            state.stopRequested = false
            state.closeOnExit = false
            state.phase = .running(Running(
                channel: channel, handler: handler, exited: exited, thread: ObjectIdentifier(thread)))
        }
        handler(InterfaceEvent(.resync(table.snapshot, reason: .initial), at: MonotonicTimestamp.now()))
        thread.start()
    }

    /// The current table (interfaces sorted by index).
    public func snapshot() -> [InterfaceState] {
        state.withLockedValue { $0.table.snapshot }
    }

    /// Stops the thread and closes the socket. From another thread, returns after the thread has exited
    /// (no event is delivered after that). From the handler, the thread exits after the handler returns.
    public func stop() {
        let onMonitorThread = ObjectIdentifier(Thread.current)
        let running = state.withLockedValue { state -> Running? in
            guard case .running(let running) = state.phase else { return nil }
            state.stopRequested = true
            state.phase = .stopping
            if running.thread == onMonitorThread {
                state.closeOnExit = true
                return nil
            }
            return running
        }
        guard let running else { return }
        running.channel.wake()
        running.exited.lock(whenValue: true)
        running.exited.unlock()
        running.channel.close()
        state.withLockedValue { $0.phase = .idle }
    }

    // MARK: - Monitor thread

    private func run(channel: Channel, handler: @Sendable (InterfaceEvent) -> Void, exited: ConditionLock<Bool>) {
        var buffer = [UInt8](repeating: 0, count: Self.receiveBufferSize)
        loop: while !stopRequested {
            let received = channel.receive(buffer: &buffer)
            if stopRequested { break }
            switch received {
            case .nothing:
                continue
            case .records(let records, let timestamp):
                for record in records where !deliver(record, at: timestamp, to: handler) { break loop }
            case .overrun:
                guard resync(channel: channel, buffer: &buffer, handler: handler) else { break loop }
            case .failed(let reason):
                handler(InterfaceEvent(.failed(reason: reason), at: MonotonicTimestamp.now()))
                break loop
            }
        }
        let closeSelf = state.withLockedValue { state -> Bool in
            guard state.closeOnExit else { return false }
            state.phase = .idle
            return true
        }
        if closeSelf { channel.close() }
        exited.lock()
        exited.unlock(withValue: true)
    }

    private var stopRequested: Bool { state.withLockedValue { $0.stopRequested } }

    /// Applies one record to the table, then delivers the resulting changes. False once stop was requested.
    private func deliver(
        _ record: KernelRecord, at timestamp: MonotonicTimestamp, to handler: @Sendable (InterfaceEvent) -> Void
    ) -> Bool {
        let (changes, stopping) = state.withLockedValue { ($0.table.apply(record), $0.stopRequested) }
        if stopping { return false }
        for change in changes { handler(InterfaceEvent(change, at: timestamp)) }
        return true
    }

    /// Re-reads the table after lost notifications. Changes interleaved with the dump are still delivered
    /// one by one (a link going down must not wait for the dump); then the fresh table replaces ours and a
    /// `.resync` tells consumers to reconcile. False if the table could not be read (a `.failed` was sent).
    private func resync(
        channel: Channel, buffer: inout [UInt8], handler: @Sendable (InterfaceEvent) -> Void
    ) -> Bool {
        do {
            let fresh = try channel.readTable(buffer: &buffer) { record, timestamp in
                _ = deliver(record, at: timestamp, to: handler)
            }
            let stopping = state.withLockedValue { state -> Bool in
                state.table = fresh
                return state.stopRequested
            }
            if stopping { return false }
            handler(InterfaceEvent(.resync(fresh.snapshot, reason: .overrun), at: MonotonicTimestamp.now()))
            return true
        } catch {
            handler(InterfaceEvent(.failed(reason: "\(error)"), at: MonotonicTimestamp.now()))
            return false
        }
    }
}
