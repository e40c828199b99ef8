#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A point on the monotonic clock (CLOCK_MONOTONIC), in nanoseconds. Never wall-clock: it does not jump when
/// the date is changed, so latencies and "unavailable since" stay meaningful.
public struct MonotonicTimestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let nanoseconds: UInt64

    public init(nanoseconds: UInt64) {
        self.nanoseconds = nanoseconds
    }

    public static func now() -> MonotonicTimestamp {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return MonotonicTimestamp(nanoseconds: UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec))
    }

    /// Microseconds from `self` to `later` (0 if `later` is earlier).
    public func microseconds(until later: MonotonicTimestamp) -> Double {
        later.nanoseconds >= nanoseconds ? Double(later.nanoseconds - nanoseconds) / 1000 : 0
    }

    public static func < (lhs: MonotonicTimestamp, rhs: MonotonicTimestamp) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }

    public var description: String { "monotonic \(nanoseconds) ns" }
}
