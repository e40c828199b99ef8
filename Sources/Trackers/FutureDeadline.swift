import NIOCore

extension TimeAmount {
    /// NIO's time type from Swift's; saturates instead of overflowing for absurd durations.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        self = overflow ? .nanoseconds(seconds < 0 ? .min : .max) : .nanoseconds(whole &+ attoseconds / 1_000_000_000)
    }
}

extension Duration {
    /// "15 s", "250 ms": for error messages.
    var shortText: String {
        let milliseconds = components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
    }
}

extension EventLoopFuture where Value: Sendable {
    /// Awaits the future, giving up with `timeoutError` at `deadline`; task cancellation ends the wait
    /// at once with `CancellationError`. The underlying work is not stopped: callers close their channel.
    func value(before deadline: NIODeadline, orThrow timeoutError: TrackerError) async throws -> Value {
        let promise = eventLoop.makePromise(of: Value.self)
        let timer = eventLoop.scheduleTask(deadline: deadline) { promise.fail(timeoutError) }
        cascade(to: promise)
        promise.futureResult.whenComplete { _ in timer.cancel() }
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            promise.fail(CancellationError())
        }
    }
}
