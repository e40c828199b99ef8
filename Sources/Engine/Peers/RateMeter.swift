import NIOCore

/// Bytes per second over a sliding window of one-second buckets.
struct RateMeter {
    private static let windowSeconds = 5
    /// buckets[i] holds bytes counted in second `startSecond + i`; older seconds are dropped.
    private var buckets = [Int](repeating: 0, count: windowSeconds)
    private var currentSecond: Int64 = 0
    private(set) var total: Int64 = 0

    mutating func add(_ bytes: Int, now: NIODeadline) {
        advance(to: now)
        buckets[Int(currentSecond % Int64(Self.windowSeconds))] += bytes
        total += Int64(bytes)
    }

    /// Average over the completed seconds of the window, plus the current partial second.
    mutating func rate(now: NIODeadline) -> Int {
        advance(to: now)
        let sum = buckets.reduce(0, +)
        return sum / Self.windowSeconds
    }

    private mutating func advance(to now: NIODeadline) {
        let second = Int64(now.uptimeNanoseconds / 1_000_000_000)
        if second == currentSecond { return }
        if second - currentSecond >= Int64(Self.windowSeconds) {
            for i in buckets.indices { buckets[i] = 0 }
        } else {
            var s = currentSecond + 1
            while s <= second {
                buckets[Int(s % Int64(Self.windowSeconds))] = 0
                s += 1
            }
        }
        currentSecond = second
    }
}
