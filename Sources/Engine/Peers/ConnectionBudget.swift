import NIOConcurrencyHelpers
import NIOCore

/// The client-wide count of peer sockets, shared by every torrent and the listeners, against the
/// `DescriptorBudget`: a flood of connections, or of candidates to dial, runs out of peer slots long
/// before the process runs out of descriptors, so storage and trackers always find theirs.
///
/// Invariant: `counts.open` is the number of live `ConnectionSlot`s (a slot is taken before a socket is
/// dialled or right after one is accepted, and released when it closes), `counts.halfOpen` how many of
/// them are not handshaken yet, `counts.halfOpenIncoming` how many of those were accepted;
/// `open ≤ peerLimit`, `halfOpen ≤ halfOpenLimit` and `halfOpenIncoming ≤ incomingHalfOpenLimit` (half of
/// the half-open slots, so that a flood of silent incoming connections can never keep us from dialling)
/// always hold, because `reserve` refuses beyond them. Each slot is counted once and released once.
final class ConnectionBudget: Sendable {
    enum Direction: Sendable { case outgoing, incoming }

    struct Counts: Equatable, Sendable {
        var open = 0
        var halfOpen = 0
        var halfOpenIncoming = 0
    }

    let descriptors: DescriptorBudget
    let peerLimit: Int
    let halfOpenLimit: Int
    let incomingHalfOpenLimit: Int
    /// How long a peer socket may stay connected without a handshake (ours sent, theirs awaited).
    let handshakeTimeout: TimeAmount
    private let state = NIOLockedValueBox(Counts())

    init(descriptors: DescriptorBudget, peerLimit: Int? = nil, halfOpenLimit: Int? = nil,
         handshakeTimeout: TimeAmount = .seconds(10)) {
        self.descriptors = descriptors
        self.peerLimit = max(1, peerLimit ?? descriptors.peers)
        self.halfOpenLimit = max(2, min(halfOpenLimit ?? descriptors.halfOpen, self.peerLimit))
        self.incomingHalfOpenLimit = self.halfOpenLimit / 2
        self.handshakeTimeout = handshakeTimeout
    }

    var counts: Counts { state.withLockedValue { $0 } }

    /// How many more sockets may be dialled now.
    var freeOutgoingSlots: Int {
        state.withLockedValue { min(peerLimit - $0.open, halfOpenLimit - $0.halfOpen) }
    }

    /// A slot for one more unhandshaken peer socket, or nil when the budget is spent (then don't dial,
    /// or close the accepted socket at once).
    func reserve(_ direction: Direction) -> ConnectionSlot? {
        let granted = state.withLockedValue { counts -> Bool in
            guard counts.open < peerLimit, counts.halfOpen < halfOpenLimit else { return false }
            if direction == .incoming {
                guard counts.halfOpenIncoming < incomingHalfOpenLimit else { return false }
                counts.halfOpenIncoming += 1
            }
            counts.open += 1
            counts.halfOpen += 1
            return true
        }
        return granted ? ConnectionSlot(budget: self, direction: direction) : nil
    }

    fileprivate func handshaken(_ direction: Direction) {
        state.withLockedValue { counts in
            counts.halfOpen -= 1
            if direction == .incoming { counts.halfOpenIncoming -= 1 }
        }
    }

    fileprivate func released(_ direction: Direction, wasHalfOpen: Bool) {
        state.withLockedValue { counts in
            counts.open -= 1
            if wasHalfOpen {
                counts.halfOpen -= 1
                if direction == .incoming { counts.halfOpenIncoming -= 1 }
            }
        }
    }
}

/// One peer socket's place in the `ConnectionBudget`. Idempotent: `handshaken` and `release` count only
/// the first time, so every path that ends a connection may call `release`.
final class ConnectionSlot: Sendable {
    private enum Phase { case halfOpen, established, released }
    private let budget: ConnectionBudget
    private let direction: ConnectionBudget.Direction
    private let phase = NIOLockedValueBox(Phase.halfOpen)

    fileprivate init(budget: ConnectionBudget, direction: ConnectionBudget.Direction) {
        self.budget = budget
        self.direction = direction
    }

    /// The handshake completed: the socket no longer counts as half-open.
    func handshaken() {
        let changed = phase.withLockedValue { phase -> Bool in
            guard phase == .halfOpen else { return false }
            phase = .established
            return true
        }
        if changed { budget.handshaken(direction) }
    }

    /// The socket is closed (or was never opened).
    func release() {
        let previous = phase.withLockedValue { phase -> Phase in
            defer { phase = .released }
            return phase
        }
        if previous != .released { budget.released(direction, wasHalfOpen: previous == .halfOpen) }
    }
}
