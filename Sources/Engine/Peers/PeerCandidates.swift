import NIOCore
import TorrentModel

/// Addresses we might connect to, with back-off for ones that failed.
/// Invariant: an address is in `known` at most once; `connected` addresses are never handed out;
/// addresses of banned IPs are removed and not re-added while the ban lasts (bans expire, see `PeerBans`).
struct PeerCandidates {
    enum Source: String { case tracker, pex, magnet, incoming, user }

    private struct Entry {
        var source: Source
        /// The interface the address was learned through (tracker answer, PEX, incoming connection);
        /// nil for addresses the user gave. When that interface dies, the address is forgotten.
        var learnedVia: String?
        var failures = 0
        var notBefore: NIODeadline
    }

    private var known: [PeerAddress: Entry] = [:]
    private(set) var bans = PeerBans()
    /// Cap on remembered addresses, so a hostile PEX flood cannot grow memory without bound.
    let capacity = 2000

    var count: Int { known.count }

    func contains(_ address: PeerAddress) -> Bool { known[address] != nil }

    mutating func add(_ address: PeerAddress, source: Source, learnedVia: String?, now: NIODeadline) {
        guard address.port != 0, !bans.isBanned(address.ip, now: now), known[address] == nil, known.count < capacity else { return }
        known[address] = Entry(source: source, learnedVia: learnedVia, notBefore: now)
    }

    /// Up to `limit` addresses ready to dial now, skipping those in `busy`. Fewest failures first.
    mutating func takeReady(limit: Int, now: NIODeadline, busy: Set<PeerAddress>) -> [PeerAddress] {
        guard limit > 0 else { return [] }
        let ready = known.filter { $0.value.notBefore <= now && !busy.contains($0.key) }
            .sorted { $0.value.failures < $1.value.failures }
            .prefix(limit)
            .map(\.key)
        for address in ready {
            // Until the attempt resolves, keep it from being handed out again.
            known[address]!.notBefore = now + .seconds(3600)
        }
        return ready
    }

    /// A connect or handshake failed: retry after `RetryBackoff`'s pause for that kind of failure, or
    /// forget the address when it says so. While `resuming` after a tunnel outage, retry every second
    /// without counting: peers may still hold our dead connections and refuse a "duplicate" until their
    /// next retransmission draws our kernel's RST.
    mutating func failed(_ address: PeerAddress, _ failure: ConnectFailure, now: NIODeadline, resuming: Bool = false) {
        guard var entry = known[address] else { return }
        if resuming {
            entry.notBefore = now + .seconds(1)
            known[address] = entry
            return
        }
        entry.failures += 1
        guard let delay = RetryBackoff.delay(after: failure, attempts: entry.failures) else {
            known[address] = nil
            return
        }
        entry.notBefore = now + delay
        known[address] = entry
    }

    /// An address taken by `takeReady` that was not dialled after all (no connection slot free): it is
    /// ready again at once, with no failure counted.
    mutating func notDialled(_ address: PeerAddress, now: NIODeadline) {
        if known[address] != nil { known[address]!.notBefore = now }
    }

    /// A connection to it ended after working: it may be dialled again after a pause (short while resuming).
    mutating func disconnected(_ address: PeerAddress, now: NIODeadline, resuming: Bool = false) {
        if known[address] != nil { known[address]!.notBefore = now + .seconds(resuming ? 1 : 60) }
    }

    /// Refuses `ip` for `duration` and forgets its addresses.
    mutating func ban(ip: [UInt8], for duration: TimeAmount, reason: String, now: NIODeadline) {
        bans.ban(ip, for: duration, reason: reason, now: now)
        known = known.filter { $0.key.ip != ip }
    }

    func isBanned(_ ip: [UInt8], now: NIODeadline) -> Bool { bans.isBanned(ip, now: now) }

    /// One more protocol violation by `ip`; returns its count within `PeerBans.violationMemory`.
    mutating func recordViolation(by ip: [UInt8], now: NIODeadline) -> Int {
        bans.recordViolation(by: ip, now: now)
    }

    /// State hygiene: forget what was learned through `interface` (nil: through any interface), so that
    /// nothing learned on a dead path is retried on the next one. User-given addresses stay.
    mutating func forgetLearned(via interface: String?) {
        known = known.filter { entry in
            guard let via = entry.value.learnedVia else { return entry.value.source == .user || entry.value.source == .magnet }
            return interface != nil && via != interface
        }
    }
}
