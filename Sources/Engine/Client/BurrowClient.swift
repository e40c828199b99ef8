import Diagnostics
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PeerWire
import Sockets
import TorrentModel

/// Client-wide settings.
public struct ClientConfiguration: Sendable {
    public var networkPolicy: NetworkPolicy
    /// One listen port shared by every allowed interface.
    public var listenPort: Int
    /// Threads for disk I/O and hashing.
    public var diskThreads: Int
    /// DNS servers to ask (through the tunnel). Empty: the nameservers of /etc/resolv.conf.
    public var dnsServers: [SocketAddress]
    /// SO_MARK for every socket (the firewall layer's match); nil when the process may not set marks.
    public var socketMark: UInt32?
    /// Where to keep a runtime report for `burrow doctor` (nil: none, e.g. in tests).
    public var runtimeReportPath: String?
    /// How long a peer socket may stay connected without completing the handshake.
    public var handshakeTimeout: TimeAmount = .seconds(10)
    /// Caps on peer sockets of all torrents together, and on those not handshaken yet; nil: what the
    /// descriptor budget allows (see `DescriptorBudget`).
    public var peerConnectionLimit: Int?
    public var halfOpenLimit: Int?

    public init(networkPolicy: NetworkPolicy, listenPort: Int = 6881, diskThreads: Int = 2,
                dnsServers: [SocketAddress] = [], socketMark: UInt32? = nil) {
        self.networkPolicy = networkPolicy
        self.listenPort = listenPort
        self.diskThreads = diskThreads
        self.dnsServers = dnsServers
        self.socketMark = socketMark
    }
}

/// The API facade shared by the CLI (and, later, the daemon, RPC and web UI): add torrents, watch them,
/// stop them. Owns the event loop, the disk thread pool, the socket seam and the tunnel guard.
public final class BurrowClient: Sendable {
    public let configuration: ClientConfiguration
    private let group: MultiThreadedEventLoopGroup
    private let threadPool: NIOThreadPool
    public let sockets: SocketFactory
    /// The kill switch; nil with `.unbound`.
    public let tunnelGuard: TunnelGuard?
    private let logger: Logger
    /// Peer traffic runs on one loop: the sessions and their channels share it, so peer events need no hops.
    private let loop: any EventLoop
    private let sessions = NIOLockedValueBox<[InfoHash: TorrentSession]>([:])
    /// Peer sockets of every torrent and listener against the descriptor budget (raised at init).
    let connectionBudget: ConnectionBudget

    /// State owned by `loop`. Invariant: `listeners[name]` holds the live listening sockets on interface
    /// `name`; `identityAddress` is the source address the swarm last saw us at (nil before the first tunnel).
    private struct LoopState {
        var listeners: [String: [any Channel]] = [:]
        /// Interfaces whose listeners are being (re)opened; never two binds at once for one interface.
        var listening: Set<String> = []
        var identityAddress: SocketAddress?
        var leakAlarm: String?
        var lastExternal: ReportedExternalAddress?
        var reportTask: RepeatedTask?
    }
    private let started = Date()
    private let loopState: NIOLoopBoundBox<LoopState>
    /// Held while this client owns `configuration.runtimeReportPath`; nil: it writes no report.
    private let reportLock = NIOLockedValueBox<RuntimeReportLock?>(nil)

    public init(configuration: ClientConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.threadPool = NIOThreadPool(numberOfThreads: max(1, configuration.diskThreads))
        self.threadPool.start()
        self.loop = group.next()
        self.loopState = NIOLoopBoundBox.makeBoxSendingValue(LoopState(), eventLoop: loop)
        let descriptors = DescriptorBudget.raisingProcessLimit()
        self.connectionBudget = ConnectionBudget(
            descriptors: descriptors, peerLimit: configuration.peerConnectionLimit,
            halfOpenLimit: configuration.halfOpenLimit, handshakeTimeout: configuration.handshakeTimeout)
        logger.debug("descriptor budget: \(descriptors)")
        let sockets = SocketFactory(policy: configuration.networkPolicy, group: group, threadPool: threadPool, logger: logger,
                                    socketMark: configuration.socketMark)
        self.sockets = sockets
        if !configuration.dnsServers.isEmpty { sockets.useDNSServers(configuration.dnsServers) }
        if case .bound = configuration.networkPolicy {
            let tunnelGuard = TunnelGuard(sockets: sockets, monitor: InterfaceMonitor(), logger: logger)
            sockets.useInterfaces { tunnelGuard.currentUsable() }
            self.tunnelGuard = tunnelGuard
        } else {
            self.tunnelGuard = nil
        }
    }

    /// Starts the tunnel guard and accepts peers on the listen port. With no tunnel up yet this succeeds:
    /// everything waits until one appears.
    public func start() async throws {
        if let path = configuration.runtimeReportPath, claimRuntimeReport(at: path) {
            try await loop.submit {
                self.loopState.value.reportTask = self.loop.scheduleRepeatedTask(initialDelay: .zero, delay: .seconds(2)) { _ in
                    self.writeRuntimeReport()
                }
            }.get()
        }
        if let tunnelGuard {
            tunnelGuard.onChange { [self] availability in
                loop.execute { self.tunnelChanged(availability) }
            }
            try tunnelGuard.start()
            let availability = tunnelGuard.availability
            guard case .available(let interfaces, _) = availability else {
                if case .unavailable(let lost, let reason, _) = availability {
                    logger.notice("waiting for tunnel: no interface matching \(lost) is usable (\(reason))")
                }
                return
            }
            try await loop.flatSubmit {
                self.loopState.value.identityAddress = Self.identityAddress(of: interfaces)
                return self.reconcileListeners(usable: Set(interfaces.map(\.name)), changed: [])
            }.get()
            return
        }
        try await loop.flatSubmit { self.listen(onlyInterfaces: nil, as: "*") }.get()
    }

    /// Makes sure every usable interface has listeners; interfaces in `changed` get fresh ones (their old
    /// sockets were killed or bound to an address that is gone). Runs on `loop`.
    private func reconcileListeners(usable: Set<String>, changed: Set<String>) -> EventLoopFuture<Void> {
        var state = loopState.value
        for name in state.listeners.keys where !usable.contains(name) { state.listeners[name] = nil }
        var stale: [any Channel] = []
        var opening: Set<String> = []
        for name in usable where !state.listening.contains(name) {
            if changed.contains(name) {
                stale += state.listeners[name] ?? []
                state.listeners[name] = nil
            }
            if state.listeners[name] == nil { opening.insert(name) }
        }
        state.listening.formUnion(opening)
        loopState.value = state
        let toOpen = opening
        guard !toOpen.isEmpty else { return loop.makeSucceededVoidFuture() }
        let closed = EventLoopFuture.andAllComplete(stale.map { $0.close() }, on: loop)
        let opened = closed.flatMap { self.listen(onlyInterfaces: toOpen, as: nil) }
        opened.whenComplete { result in
            self.loopState.value.listening.subtract(toOpen)
            if case .failure(let error) = result {
                self.logger.error("could not listen on \(toOpen.sorted().joined(separator: ",")): \(error)")
            }
        }
        return opened
    }

    private func listen(onlyInterfaces: Set<String>?, as fixedName: String?) -> EventLoopFuture<Void> {
        let lookup: @Sendable (InfoHash) -> TorrentSession? = { [sessions] hash in
            sessions.withLockedValue { $0[hash] }
        }
        let budget = connectionBudget
        let logger = self.logger
        return sockets.listenTCP(port: configuration.listenPort, on: loop, onlyInterfaces: onlyInterfaces) { channel in
            // Over the budget, an incoming socket is closed at once: a flood of connections that never
            // handshake cannot take the descriptors storage and trackers need.
            guard let slot = budget.reserve(.incoming) else {
                logger.trace("refusing incoming connection from \(channel.remoteAddress.map { "\($0)" } ?? "?"): peer slots full")
                return channel.eventLoop.makeFailedFuture(ClientError.peerSlotsFull)  // NIO closes it
            }
            return PeerPipeline.install(on: channel, route: .incoming(lookup: lookup), slot: slot,
                                        handshakeTimeout: budget.handshakeTimeout)
        }.map { channels in
            for channel in channels {
                let name = fixedName ?? self.sockets.interface(of: channel) ?? "*"
                self.loopState.value.listeners[name, default: []].append(channel)
                self.logger.info("listening on \(channel.localAddress.map { "\($0)" } ?? "?") (\(name))")
            }
        }
    }

    // MARK: - Tunnel events (on `loop`)

    private func tunnelChanged(_ availability: TunnelAvailability) {
        guard loopState.value.leakAlarm == nil else { return }
        let all = sessions.withLockedValue { Array($0.values) }
        switch availability {
        case .unavailable(let lost, let reason, _):
            loopState.value.listeners.removeAll()
            for session in all { session.tunnelLost(interface: lost, reason: reason, allDown: true) }
        case .available(let interfaces, let changed):
            let usable = Set(interfaces.map(\.name))
            for name in changed where !usable.contains(name) {
                for session in all { session.tunnelLost(interface: name, reason: "no longer usable", allDown: false) }
            }
            // Before anyone redials: let peers forget our connections from before the outage.
            for interface in interfaces where changed.contains(interface.name) {
                sockets.finishRetired(on: interface)
            }
            _ = reconcileListeners(usable: usable, changed: changed)
            let identity = Self.identityAddress(of: interfaces)
            let previous = loopState.value.identityAddress
            loopState.value.identityAddress = identity
            let rotate = previous != nil && identity != previous
            for session in all { session.tunnelAvailable(rotateIdentity: rotate) }
        }
    }

    /// The address outgoing connections use (the first usable interface's IPv4, else IPv6 address).
    private static func identityAddress(of interfaces: [UsableInterface]) -> SocketAddress? {
        guard let first = interfaces.first else { return nil }
        return first.firstAddress(ipv6: false) ?? first.firstAddress(ipv6: true)
    }

    // MARK: - Runtime report (for `burrow doctor`)

    /// Takes ownership of the report path (see `RuntimeReportLock`); false, with a notice, if another
    /// burrow owns it.
    private func claimRuntimeReport(at path: String) -> Bool {
        do {
            let lock = try RuntimeReportLock.acquire(for: path)
            reportLock.withLockedValue { $0 = lock }
            return true
        } catch {
            logger.notice("\(error)")
            return false
        }
    }

    /// Writes the report off the loop (file I/O): tunnel state, kill switch, external address, leak alarm.
    private func writeRuntimeReport() {
        guard let path = reportLock.withLockedValue({ $0?.reportPath }) else { return }
        let state = loopState.value
        let report = RuntimeReport(
            started: started, policy: configuration.networkPolicy,
            availability: tunnelGuard?.availability ?? .available(interfaces: [], changed: []),
            lastExternalAddress: state.lastExternal, leakAlarm: state.leakAlarm,
            killCount: tunnelGuard?.killCount ?? 0, lastKill: tunnelGuard?.lastKill)
        let logger = self.logger
        _ = threadPool.runIfActive(eventLoop: loop) {
            do { try report.write(to: path) } catch { logger.debug("could not write the runtime report: \(error)") }
        }
    }

    // MARK: - Leak alarm

    /// A peer or tracker reports the address it sees us at. If that is the address of an interface we are
    /// not bound to, our traffic is leaving outside the tunnel somewhere: halt everything and say so.
    private func externalAddressReported(_ ip: [UInt8], by reporter: String) {
        loopState.value.lastExternal = ReportedExternalAddress(
            address: PeerAddress(ip: ip, port: 0)?.ipString ?? "?", reporter: reporter, at: Date())
        guard case .bound = configuration.networkPolicy, loopState.value.leakAlarm == nil else { return }
        guard let clear = (try? InterfaceTable.usable(under: .unbound))?.first(where: { interface in
            !configuration.networkPolicy.allows(interfaceNamed: interface.name)
                && interface.addresses.contains { PeerAddress(socketAddress: $0)?.ip == ip }
        }) else { return }
        let shown = PeerAddress(ip: ip, port: 0)?.ipString ?? "?"
        let message = "LEAK ALARM: \(reporter) sees us at \(shown), the address of \(clear.name), which is not a bound interface; all traffic halted"
        loopState.value.leakAlarm = message
        logger.critical("\(message)")
        sockets.halt()
        for session in sessions.withLockedValue({ Array($0.values) }) { session.fail(message) }
        writeRuntimeReport()
    }

    // MARK: - Torrents

    /// Adds a torrent and starts it (checking existing data first). With no tunnel up, it waits for one.
    public func add(_ source: TorrentSource, options: SessionOptions) async throws -> TorrentHandle {
        let session = TorrentSession(source: source, options: options, listenPort: UInt16(configuration.listenPort),
                                     sockets: sockets, connectionBudget: connectionBudget, threadPool: threadPool, eventLoop: loop, logger: logger)
        session.onExternalAddress = { [self] ip, reporter in
            loop.execute { self.externalAddressReported(ip, by: reporter) }
        }
        try sessions.withLockedValue { table in
            if table[source.infoHash] != nil { throw ClientError.duplicateTorrent(source.infoHash) }
            table[source.infoHash] = session
        }
        do {
            try await loop.submit {
                if let alarm = self.loopState.value.leakAlarm { throw ClientError.halted(alarm) }
                if let tunnelGuard = self.tunnelGuard, case .unavailable(let lost, let reason, _) = tunnelGuard.availability {
                    session.tunnelLost(interface: lost, reason: reason, allDown: true)
                }
            }.get()
            try await session.start().get()
        } catch {
            _ = sessions.withLockedValue { $0.removeValue(forKey: source.infoHash) }
            throw error
        }
        return TorrentHandle(session: session)
    }

    /// Stops every torrent gracefully, closes every socket and releases the threads.
    public func shutdown() async {
        let all = sessions.withLockedValue { table in
            defer { table.removeAll() }
            return Array(table.values)
        }
        for session in all { try? await session.stop().get() }
        try? await loop.submit { self.loopState.value.reportTask?.cancel() }.get()
        if let path = reportLock.withLockedValue({ $0?.reportPath }) {
            // Remove before unlocking: a successor must not have its fresh report deleted.
            _ = RuntimeReport.remove(at: path)
            reportLock.withLockedValue { $0 = nil }
        }
        tunnelGuard?.stop()
        sockets.halt()
        try? await Task.sleep(for: .milliseconds(50))
        try? await threadPool.shutdownGracefully()
        try? await group.shutdownGracefully()
    }
}

public enum ClientError: Error, CustomStringConvertible {
    case duplicateTorrent(InfoHash)
    case halted(String)
    case peerSlotsFull

    public var description: String {
        switch self {
        case .peerSlotsFull: return "refused a peer connection: every peer slot of the descriptor budget is taken"
        case .duplicateTorrent(let hash): return "torrent \(hash) is already added"
        case .halted(let why): return why
        }
    }
}

/// A handle on one running torrent.
public struct TorrentHandle: Sendable {
    let session: TorrentSession

    public var infoHash: InfoHash { session.infoHash }

    public func status() async throws -> TorrentStatus { try await session.status().get() }

    /// Returns when every wanted piece is verified; throws if the torrent failed or was stopped.
    public func waitUntilComplete() async throws { try await session.completed.get() }

    public func stop() async throws { try await session.stop().get() }
}
