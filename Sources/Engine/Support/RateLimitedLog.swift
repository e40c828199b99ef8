import Logging
import NIOCore

/// Logs at most one line per key (a reason, such as "unrequested data") every `interval`; the next line
/// logged for that key says how many similar ones were held back in between. For events a hostile swarm
/// can trigger at will, so they stay visible at the default level without flooding the log.
///
/// Bounded: at most `maxKeys` keys are remembered (callers use a few fixed reasons, never addresses);
/// past that, the stalest key is forgotten.
struct RateLimitedLog {
    static let maxKeys = 64
    let interval: TimeAmount

    private struct Entry {
        var lastLogged: NIODeadline
        var suppressed: Int
    }
    private var entries: [String: Entry] = [:]

    init(interval: TimeAmount = .seconds(30)) {
        self.interval = interval
    }

    /// The line to log now for `key`, or nil when it is held back (and counted).
    mutating func admit(key: String, _ message: @autoclosure () -> String, now: NIODeadline) -> String? {
        if var entry = entries[key], now - entry.lastLogged < interval {
            entry.suppressed += 1
            entries[key] = entry
            return nil
        }
        let suppressed = entries[key]?.suppressed ?? 0
        if entries[key] == nil, entries.count >= Self.maxKeys,
           let stalest = entries.min(by: { $0.value.lastLogged < $1.value.lastLogged })?.key {
            entries[stalest] = nil
        }
        entries[key] = Entry(lastLogged: now, suppressed: 0)
        return suppressed == 0 ? message() : "\(message()) (\(suppressed) more like it held back since the last)"
    }

    mutating func log(_ logger: Logger, _ level: Logger.Level, key: String, _ message: @autoclosure () -> String,
                      now: NIODeadline = .now()) {
        guard logger.logLevel <= level, let line = admit(key: key, message(), now: now) else { return }
        logger.log(level: level, "\(line)")
    }
}
