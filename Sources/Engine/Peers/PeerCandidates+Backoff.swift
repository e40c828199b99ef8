import NIOCore

/// How an attempt to reach a candidate failed; each kind is held off on its own schedule.
enum ConnectFailure: Equatable, Sendable {
    /// No TCP connection: refused, unreachable, or the connect timed out. Likely gone or firewalled:
    /// retrying soon only wastes a slot.
    case unreachable
    /// TCP connected, then the peer closed it or stayed silent past the handshake timeout. The host is
    /// there; real clients do this under load (qBittorrent 4.5.2 closes about half of fresh incoming
    /// connections before the handshake), so a quick retry usually works.
    case closedBeforeHandshake
}

/// When a failed candidate may be dialled again, and when to give up on it.
///
/// `.closedBeforeHandshake`: 1 s, 2 s, 4 s … capped at 30 s, given up after 8 attempts (about 1.5 min
/// of trying, each attempt bounded by the handshake timeout). `.unreachable`: 30 s, 60 s, 120 s, 240 s,
/// given up after 5 attempts. `attempts` counts every failure of the address so far, this one included.
enum RetryBackoff {
    static let quickFirstDelay = TimeAmount.seconds(1)
    static let quickMaximumDelay = TimeAmount.seconds(30)
    static let quickAttempts = 8
    static let slowFirstDelay = TimeAmount.seconds(30)
    static let slowAttempts = 5

    /// The pause before the next attempt, or nil when the candidate should be forgotten.
    static func delay(after failure: ConnectFailure, attempts: Int) -> TimeAmount? {
        precondition(attempts >= 1, "a delay is asked for after a failure")
        switch failure {
        case .closedBeforeHandshake:
            guard attempts < quickAttempts else { return nil }
            return min(quickFirstDelay * (1 << Int64(min(attempts - 1, 16))), quickMaximumDelay)
        case .unreachable:
            guard attempts < slowAttempts else { return nil }
            return slowFirstDelay * (1 << Int64(min(attempts - 1, 4)))
        }
    }
}
