import NIOCore

/// A byte-rate limiter shared by every peer it governs (one per direction per torrent, or one global).
/// Time is passed in (monotonic `NIODeadline`), so it is deterministic and free of clocks.
///
/// Reservations may overdraw the bucket: `consume` always books the bytes and answers how long the caller
/// must wait until the booking is paid for. Bookings are therefore served in the order they are made,
/// and the long-run rate is exact whatever the block size.
///
/// How the engine uses it (each peer asks before moving its next block, which makes sharing fair: a peer
/// cannot book block n+1 until it has waited out block n, so active peers take turns):
/// - **Upload**: before writing a `piece` message of `n` bytes, `consume(n)`; if the delay is non-zero,
///   schedule the write on the event loop after the delay, and do not serve that peer's next request until
///   it is written.
/// - **Download**: after reading `n` bytes from a peer's socket, `consume(n)`; if the delay is non-zero,
///   stop reading from that channel (don't call `read()`, autoRead off) and resume after the delay. TCP
///   flow control then slows the sender.
/// - **Nesting** (per-torrent and global limits): consume from both and wait for the longer delay.
/// - Asking for fewer bytes than are `available(now:)` never waits, so a caller can also size its next
///   batch of requests from it.
///
/// Settings come from validated configuration: a negative rate or burst is a programming error and stops
/// the process with a message naming it.
struct TokenBucket {
    /// nil when unlimited. Invariant: positive when set.
    private(set) var bytesPerSecond: Int?
    /// Most bytes that may pass at once after an idle spell. Invariant: positive.
    private(set) var burst: Int
    /// Bytes available now; negative while bookings are outstanding. Invariant: never above `burst`.
    private var tokens: Double
    /// The time `tokens` was last brought up to date; nil until the first call that passes a time (the
    /// bucket starts full). Never moves backwards.
    private var updatedAt: NIODeadline?

    /// - Parameters:
    ///   - bytesPerSecond: nil or 0 means unlimited.
    ///   - burst: defaults to a quarter second's worth, at least one 16 KiB block.
    init(bytesPerSecond: Int?, burst: Int? = nil) {
        self.bytesPerSecond = nil
        self.burst = 1
        tokens = 0
        updatedAt = nil
        configure(bytesPerSecond, burst: burst)
    }

    var isUnlimited: Bool { bytesPerSecond == nil }

    /// Changes the limit from `now` on. Bytes booked so far keep the delay they were given; later bookings
    /// are paced at the new rate.
    mutating func setRate(_ bytesPerSecond: Int?, burst: Int? = nil, now: NIODeadline) {
        refill(now: now)
        configure(bytesPerSecond, burst: burst)
    }

    private mutating func configure(_ bytesPerSecond: Int?, burst: Int?) {
        if let rate = bytesPerSecond {
            precondition(rate >= 0, "rate limit \(rate) bytes/s is negative (use 0 or nil for unlimited)")
        }
        if let burst { precondition(burst >= 0, "rate-limit burst \(burst) bytes is negative") }
        let wasUnlimited = isUnlimited
        let rate = bytesPerSecond.flatMap { $0 == 0 ? nil : $0 }
        self.bytesPerSecond = rate
        self.burst = max(1, burst ?? Self.defaultBurst(for: rate))
        if rate == nil || wasUnlimited {
            tokens = Double(self.burst)   // unlimited keeps no debt; a new limit starts full
        } else {
            tokens = min(tokens, Double(self.burst))
        }
    }

    /// Books `bytes` and returns how long to wait before moving them (zero when allowed now).
    mutating func consume(_ bytes: Int, now: NIODeadline) -> TimeAmount {
        guard let rate = bytesPerSecond, bytes > 0 else { return .zero }
        refill(now: now)
        tokens -= Double(bytes)
        guard tokens < 0 else { return .zero }
        let seconds = -tokens / Double(rate)
        return .nanoseconds(Int64((seconds * 1e9).rounded(.up)))
    }

    /// Whole bytes that may pass now without waiting (0 while bookings are outstanding); `Int.max` when
    /// unlimited.
    func available(now: NIODeadline) -> Int {
        guard bytesPerSecond != nil else { return .max }
        var copy = self
        copy.refill(now: now)
        return max(0, Int(copy.tokens.rounded(.down)))
    }

    /// How long until `bytes` could pass without waiting, booking nothing.
    func delay(for bytes: Int, now: NIODeadline) -> TimeAmount {
        guard let rate = bytesPerSecond, bytes > 0 else { return .zero }
        var copy = self
        copy.refill(now: now)
        let shortfall = Double(bytes) - copy.tokens
        guard shortfall > 0 else { return .zero }
        return .nanoseconds(Int64((shortfall / Double(rate) * 1e9).rounded(.up)))
    }

    private mutating func refill(now: NIODeadline) {
        guard let last = updatedAt else {
            updatedAt = now
            return
        }
        guard now > last else { return }
        if let rate = bytesPerSecond {
            let elapsed = Double((now - last).nanoseconds) / 1e9
            tokens = min(Double(burst), tokens + elapsed * Double(rate))
        }
        updatedAt = now
    }

    private static func defaultBurst(for rate: Int?) -> Int {
        guard let rate else { return PiecePicker.blockSize }
        return max(rate / 4, PiecePicker.blockSize)
    }
}
