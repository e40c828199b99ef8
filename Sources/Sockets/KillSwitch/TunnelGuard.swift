import Logging
import NIOConcurrencyHelpers

/// The kill switch. Keeps the set of usable allowed interfaces (allowed by the policy, up, running, with
/// carrier, with at least one non-link-local address) from the interface monitor's events and, the moment
/// one stops being usable or loses an address, closes every socket pinned to it — synchronously, on the
/// monitor thread, before logging or notifying anyone.
///
/// With `.unbound` policy the guard is inert: it watches nothing and reports `.available` with no interfaces.
public final class TunnelGuard: Sendable {
    public let policy: NetworkPolicy
    private let sockets: SocketFactory
    private let monitor: any InterfaceEventSource
    private let logger: Logger

    private struct State {
        /// The monitor's view, rebuilt from the post-change state each event carries. Keyed by index.
        var interfaces: [Int: InterfaceState] = [:]
        /// Invariant: exactly the interfaces `usableInterfaces(in: interfaces)` derives, in index order.
        var usable: [UsableInterface] = []
        var availability: TunnelAvailability
        var subscribers: [Int: @Sendable (TunnelAvailability) -> Void] = [:]
        var nextSubscriber = 0
        var lastKill: KillRecord?
        var killCount = 0
        /// The monitor reported it can no longer see changes: nothing counts as usable until restart.
        var monitorFailed = false
    }

    private let state: NIOLockedValueBox<State>

    /// The guard works under `sockets.policy`: the same policy the factory pins sockets with.
    public init(sockets: SocketFactory, monitor: any InterfaceEventSource, logger: Logger) {
        self.policy = sockets.policy
        self.sockets = sockets
        self.monitor = monitor
        self.logger = logger
        let initial: TunnelAvailability
        if case .unbound = sockets.policy {
            initial = .available(interfaces: [], changed: [])
        } else {
            initial = .unavailable(lost: Self.patternList(sockets.policy), reason: "not started", since: .now())
        }
        self.state = NIOLockedValueBox(State(availability: initial))
    }

    /// Starts watching. Returns once the initial state is known (a missing tunnel is not an error: the guard
    /// reports `.unavailable` and the engine waits).
    public func start() throws {
        guard case .bound = policy else { return }
        try monitor.start { [self] event in self.handle(event) }
    }

    public func stop() {
        guard case .bound = policy else { return }
        monitor.stop()
    }

    /// The usable allowed interfaces right now, for the socket factory to pin new sockets to.
    public func currentUsable() -> [UsableInterface] {
        state.withLockedValue { $0.usable }
    }

    public var availability: TunnelAvailability { state.withLockedValue { $0.availability } }
    public var lastKill: KillRecord? { state.withLockedValue { $0.lastKill } }
    public var killCount: Int { state.withLockedValue { $0.killCount } }

    /// Calls `callback` on every availability change, on the monitor thread, after sockets were closed.
    /// To avoid missing a change, subscribe first, then read `availability`.
    @discardableResult
    public func onChange(_ callback: @escaping @Sendable (TunnelAvailability) -> Void) -> Int {
        state.withLockedValue { state in
            let id = state.nextSubscriber
            state.nextSubscriber += 1
            state.subscribers[id] = callback
            return id
        }
    }

    public func removeSubscriber(_ id: Int) {
        _ = state.withLockedValue { $0.subscribers.removeValue(forKey: id) }
    }

    // MARK: - Event handling (monitor thread)

    private struct Loss {
        let name: String
        let reason: String
    }

    private struct Decision {
        var losses: [Loss] = []
        var raised: [UsableInterface] = []
        var availability: TunnelAvailability?
        var subscribers: [@Sendable (TunnelAvailability) -> Void] = []
    }

    func handle(_ event: InterfaceEvent) {
        let decision = state.withLockedValue { state in decide(event, state: &state) }
        guard !decision.losses.isEmpty || decision.availability != nil else { return }

        // Close first: nothing (logging, callbacks) may delay the sockets' death.
        var closed: [(loss: Loss, closing: SocketsClosing)] = []
        for loss in decision.losses {
            closed.append((loss, sockets.closeAll(onInterface: loss.name)))
        }
        let issued = MonotonicTimestamp.now()
        let latency = event.timestamp.microseconds(until: issued)

        if !closed.isEmpty {
            state.withLockedValue { state in
                state.killCount += closed.count
                if let last = closed.last {
                    state.lastKill = KillRecord(
                        interface: last.loss.name, reason: last.loss.reason, socketsClosed: last.closing.count,
                        latencyMicroseconds: latency, eventTimestamp: event.timestamp)
                }
            }
        }
        for (loss, closing) in closed {
            // Logged once the event loops actually closed them: the figure is kernel event → last close.
            let logger = self.logger
            closing.done.whenComplete { _ in
                let total = event.timestamp.microseconds(until: .now())
                logger.notice("kill switch: \(loss.name) lost (\(loss.reason)); closed \(closing.count) sockets in \(Int(total.rounded())) µs")
            }
        }
        for interface in decision.raised {
            logger.notice("tunnel up: \(interface.name) \(interface.addressList)")
        }
        if let availability = decision.availability {
            for subscriber in decision.subscribers { subscriber(availability) }
        }
    }

    /// Updates the state for `event` and says what to close, log and report. Runs under the state lock.
    private func decide(_ event: InterfaceEvent, state: inout State) -> Decision {
        var reasons: [Int: String] = [:]  // why an interface index may have become unusable
        switch event.change {
        case .linkUp(let interface), .defaultRouteChanged(let interface):
            state.interfaces[interface.index] = interface
        case .linkDown(let interface, let reason):
            if reason == .removed {
                state.interfaces.removeValue(forKey: interface.index)
            } else {
                state.interfaces[interface.index] = interface
            }
            reasons[interface.index] = reason.description
        case .addressAdded(let interface, _):
            state.interfaces[interface.index] = interface
        case .addressRemoved(let interface, let address):
            state.interfaces[interface.index] = interface
            reasons[interface.index] = interface.usableAddresses.isEmpty
                ? "last usable address \(address) removed" : "address \(address) removed"
        case .resync(let all, let why):
            state.interfaces = Dictionary(all.map { ($0.index, $0) }, uniquingKeysWith: { $1 })
            if why != .initial {
                for old in state.usable {
                    let now = state.interfaces[old.index]
                    let cause = now.map { $0.downReason?.description ?? "no usable address" } ?? "removed"
                    reasons[old.index] = "\(cause), found on resync after \(why)"
                }
            }
        case .failed(let why):
            state.monitorFailed = true
            for old in state.usable { reasons[old.index] = "interface monitor failed: \(why)" }
        }

        let previous = state.usable
        let current = state.monitorFailed ? [] : usableInterfaces(in: state.interfaces)
        state.usable = current

        var decision = Decision()
        var changed = Set<String>()
        for old in previous {
            guard let now = current.first(where: { $0.index == old.index && $0.name == old.name }) else {
                decision.losses.append(Loss(name: old.name, reason: reasons[old.index] ?? "no longer usable"))
                changed.insert(old.name)
                continue
            }
            // Sockets bound to a vanished address must die even though the interface lives on.
            if old.addresses.contains(where: { !now.addresses.contains($0) }) {
                let gone = old.addresses.filter { !now.addresses.contains($0) }.map { $0.ipAddress ?? "\($0)" }
                decision.losses.append(Loss(
                    name: old.name, reason: reasons[old.index] ?? "address \(gone.joined(separator: ", ")) removed"))
            }
            if now.addresses != old.addresses {
                changed.insert(now.name)
                decision.raised.append(now)
            }
        }
        for new in current where !previous.contains(where: { $0.index == new.index && $0.name == new.name }) {
            changed.insert(new.name)
            decision.raised.append(new)
        }

        let availability: TunnelAvailability
        if !current.isEmpty {
            availability = .available(interfaces: current, changed: changed)
        } else if let loss = decision.losses.last {
            availability = .unavailable(lost: loss.name, reason: loss.reason, since: event.timestamp)
        } else if case .unavailable = state.availability, !isInitial(event), !isFailure(event) {
            availability = state.availability  // still down; keep the original cause and time
        } else {
            availability = .unavailable(
                lost: Self.patternList(policy),
                reason: state.monitorFailed
                    ? "the interface monitor failed"
                    : "no interface allowed by the policy (\(policy)) is up with a usable address",
                since: event.timestamp)
        }
        let differs: Bool
        switch (availability, state.availability) {
        case (.available(let now, _), .available(let before, _)):
            differs = now != before || !changed.isEmpty
        default:
            differs = availability != state.availability
        }
        if differs || isInitial(event) {
            state.availability = availability
            decision.availability = availability
            decision.subscribers = Array(state.subscribers.sorted { $0.key < $1.key }.map(\.value))
        }
        return decision
    }

    private func isFailure(_ event: InterfaceEvent) -> Bool {
        if case .failed = event.change { return true }
        return false
    }

    private func isInitial(_ event: InterfaceEvent) -> Bool {
        if case .resync(_, .initial) = event.change { return true }
        return false
    }

    /// Allowed, operational interfaces with at least one usable source address (IPv4 listed first).
    private func usableInterfaces(in interfaces: [Int: InterfaceState]) -> [UsableInterface] {
        interfaces.values.sorted { $0.index < $1.index }.compactMap { interface in
            guard policy.allows(interfaceNamed: interface.name), interface.isOperational else { return nil }
            let sources = interface.usableAddresses.map(\.address)
            guard !sources.isEmpty else { return nil }
            let ordered = sources.filter { $0.protocol == .inet } + sources.filter { $0.protocol != .inet }
            return UsableInterface(name: interface.name, index: interface.index, addresses: ordered)
        }
    }

    private static func patternList(_ policy: NetworkPolicy) -> String {
        if case .bound(let patterns) = policy { return patterns.joined(separator: ",") }
        return "any"
    }
}
