import NIOCore

/// Addresses refused for a while, and the protocol violations that lead there.
///
/// Bans expire (`until`): an address reused by someone else, or a client fixed meanwhile, gets another
/// chance. Violations are remembered per IP across connections for `violationMemory`, so a peer that
/// reconnects after every bad message still adds up to a ban.
///
/// Bounded: at most `capacity` bans and `capacity` violation records; when full, expired entries go
/// first, then the one closest to expiry (a flood of addresses cannot grow memory).
struct PeerBans {
    static let capacity = 1024
    static let violationMemory = TimeAmount.minutes(60)

    struct Ban {
        var until: NIODeadline
        var reason: String
    }
    private struct Violations {
        var count: Int
        var last: NIODeadline
    }

    /// Invariant: `bans.count <= capacity`; `violations.count <= capacity`.
    private var bans: [[UInt8]: Ban] = [:]
    private var violations: [[UInt8]: Violations] = [:]

    /// Bans `ip` until `now + duration` (an existing longer ban stays).
    mutating func ban(_ ip: [UInt8], for duration: TimeAmount, reason: String, now: NIODeadline) {
        let until = now + duration
        if let existing = bans[ip], existing.until >= until { return }
        if bans[ip] == nil && bans.count >= Self.capacity {
            bans = bans.filter { $0.value.until > now }
            if bans.count >= Self.capacity, let soonest = bans.min(by: { $0.value.until < $1.value.until })?.key {
                bans[soonest] = nil
            }
        }
        bans[ip] = Ban(until: until, reason: reason)
        violations[ip] = nil
    }

    /// The ban in force on `ip` at `now`, if any.
    func ban(on ip: [UInt8], now: NIODeadline) -> Ban? {
        guard let ban = bans[ip], ban.until > now else { return nil }
        return ban
    }

    func isBanned(_ ip: [UInt8], now: NIODeadline) -> Bool { ban(on: ip, now: now) != nil }

    /// How many addresses are banned at `now`.
    func activeCount(now: NIODeadline) -> Int { bans.values.filter { $0.until > now }.count }

    /// Records one protocol violation by `ip`; returns how many it has committed within `violationMemory`.
    mutating func recordViolation(by ip: [UInt8], now: NIODeadline) -> Int {
        var record = violations[ip] ?? Violations(count: 0, last: now)
        if now - record.last > Self.violationMemory { record.count = 0 }
        record.count += 1
        record.last = now
        if violations[ip] == nil && violations.count >= Self.capacity {
            violations = violations.filter { now - $0.value.last <= Self.violationMemory }
            if violations.count >= Self.capacity, let oldest = violations.min(by: { $0.value.last < $1.value.last })?.key {
                violations[oldest] = nil
            }
        }
        violations[ip] = record
        return record.count
    }

    var recordCount: (bans: Int, violations: Int) { (bans.count, violations.count) }
}
