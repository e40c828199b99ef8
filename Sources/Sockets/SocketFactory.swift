#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The one seam through which Burrow opens sockets: TCP out and in, UDP, and name resolution.
///
/// Every socket is made under the `NetworkPolicy`: with `.bound`, it is pinned at the kernel level to an
/// allowed interface and bound to that interface's own address; if that cannot be done the operation
/// fails — there is no fallback to an unbound socket. Every live channel is tracked so that all of them
/// can be closed at once (`closeAll`, and per interface for the kill switch).
public final class SocketFactory: Sendable {
    public let policy: NetworkPolicy
    public let group: any EventLoopGroup
    private let threadPool: NIOThreadPool
    private let logger: Logger
    /// Invariant: every channel this factory created (or accepted) and that is not yet closed is here,
    /// keyed by its ObjectIdentifier, with the interface it is pinned to (nil when unbound).
    private let liveChannels = NIOLockedValueBox<[ObjectIdentifier: TrackedChannel]>([:])
    private let isHalted = NIOLockedValueBox(false)
    /// Where usable interfaces come from: the tunnel guard once it runs (event-driven), else getifaddrs.
    private let interfaceSource = NIOLockedValueBox<(@Sendable () -> [UsableInterface])?>(nil)
    /// The DNS stub used for every name lookup (never the system resolver when bound).
    private let dnsResolver = NIOLockedValueBox<DNSResolver?>(nil)
    /// SO_MARK put on every socket so the firewall layer can tell Burrow's packets apart (nil: none).
    public let socketMark: UInt32?
    /// Test-only (BURROW_TEST_UNBOUND_SOCKETS=1): skip interface pinning to prove the firewall layer
    /// catches what the application layer lets through. Inert unless the variable is set.
    public let skipsPinningForTests: Bool

    public init(policy: NetworkPolicy, group: any EventLoopGroup, threadPool: NIOThreadPool, logger: Logger,
                socketMark: UInt32? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.policy = policy
        self.group = group
        self.threadPool = threadPool
        self.logger = logger
        self.socketMark = socketMark
        self.skipsPinningForTests = environment["BURROW_TEST_UNBOUND_SOCKETS"] == "1"
        if skipsPinningForTests {
            logger.critical("""
                BURROW_TEST_UNBOUND_SOCKETS=1: TEST MODE, sockets are NOT pinned to the tunnel interfaces. \
                Only the firewall layer stands between this process and a leak. Never use this outside tests.
                """)
        }
    }

    /// Peer traffic is bulk, so reads grow to 64 KiB — and no further: blocks are slices of these buffers
    /// and keep them alive until written, and malloc serves anything above 128 KiB with a fresh mmap,
    /// which the kernel zeroes page by page (measured: a 256 KiB maximum cost ~0.3 CPU-s per GiB in
    /// page faults). Reads happen up to four times per wakeup, so the syscall count barely matters.
    static let receiveAllocator = AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16 * 1024, maximum: 64 * 1024)

    /// The SO_MARK option (Linux only; needs CAP_NET_ADMIN). Setting it failing makes the socket fail.
    private var markOption: (option: ChannelOptions.Types.SocketOption, value: SocketOptionValue)? {
        #if os(Linux)
        guard let socketMark else { return nil }
        return (ChannelOptions.Types.SocketOption(level: .socket, name: NIOBSDSocket.Option(rawValue: 36)),
                SocketOptionValue(Int32(bitPattern: socketMark)))
        #else
        return nil
        #endif
    }

    /// Makes the tunnel guard the source of truth for which interfaces sockets may be pinned to.
    public func useInterfaces(from source: @escaping @Sendable () -> [UsableInterface]) {
        interfaceSource.withLockedValue { $0 = source }
    }

    /// Resolves names with these DNS servers, over sockets from this factory (so through the tunnel).
    public func useDNSServers(_ servers: [SocketAddress]) {
        dnsResolver.withLockedValue { $0 = DNSResolver(servers: servers, sockets: self) }
    }

    /// The allowed interfaces usable right now.
    public func usableInterfaces() throws -> [UsableInterface] {
        if let source = interfaceSource.withLockedValue({ $0 }) { return source() }
        return try InterfaceTable.usable(under: policy)
    }

    /// The interface a live channel of this factory is pinned to (nil when unbound or unknown).
    public func interface(of channel: any Channel) -> String? {
        liveChannels.withLockedValue { $0[ObjectIdentifier(channel)]?.interface }
    }

    // MARK: - TCP out

    /// Connects to `address`. The initializer adds handlers before any byte flows.
    public func connectTCP(
        to address: SocketAddress,
        on eventLoop: (any EventLoop)? = nil,
        timeout: TimeAmount = .seconds(10),
        initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<any Channel> {
        let loop = eventLoop ?? group.next()
        let pin: Pin?
        do { pin = try self.pin(forRemote: address) } catch { return loop.makeFailedFuture(error) }
        // Tracked from creation, so that a kill switch also aborts connects still in progress.
        var bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: Self.receiveAllocator)
            .channelInitializer { channel in
                self.track(channel, interface: pin?.interface.name).flatMap { initializer($0) }
            }
        if let mark = markOption { bootstrap = bootstrap.channelOption(mark.option, value: mark.value) }
        if let pin, !skipsPinningForTests {
            bootstrap = bootstrap
                .channelOption(InterfacePinning.option(ipv6: pin.ipv6), value: SocketOptionValue(pin.interface.index))
                .bind(to: pin.source)
        }
        return bootstrap.connect(to: address)
    }

    // MARK: - TCP in

    /// Listens on `port` on every allowed interface address (one listener per address, all on the same
    /// port). With `.unbound`, listens on the IPv4 and IPv6 wildcards.
    /// With `onlyInterfaces`, listens only on those of the usable interfaces (used when a tunnel comes
    /// back); without, on all of them, and an empty result is an error.
    public func listenTCP(
        port: Int,
        on eventLoop: (any EventLoop)? = nil,
        onlyInterfaces: Set<String>? = nil,
        childInitializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<[any Channel]> {
        let loop = eventLoop ?? group.next()
        var targets: [(address: SocketAddress, interface: UsableInterface?)] = []
        switch policy {
        case .unbound:
            targets = [(try! SocketAddress(ipAddress: "0.0.0.0", port: port), nil)]
        case .bound:
            var interfaces: [UsableInterface]
            do { interfaces = try usableInterfaces() } catch { return loop.makeFailedFuture(error) }
            if let onlyInterfaces {
                interfaces = interfaces.filter { onlyInterfaces.contains($0.name) }
                if interfaces.isEmpty { return loop.makeSucceededFuture([]) }
            }
            for interface in interfaces {
                for ipv6 in [false, true] {
                    if var source = interface.firstAddress(ipv6: ipv6) {
                        source.port = port
                        targets.append((source, interface))
                    }
                }
            }
            if targets.isEmpty {
                return loop.makeFailedFuture(SocketSeamError.noUsableInterface(policy: policy.description, family: "IP"))
            }
        }
        let listeners = targets.map { target in
            self.listen(at: target.address, interface: target.interface, on: loop, childInitializer: childInitializer)
        }
        return EventLoopFuture.whenAllSucceed(listeners, on: loop)
    }

    private func listen(
        at address: SocketAddress, interface: UsableInterface?, on loop: any EventLoop,
        childInitializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<any Channel> {
        var bootstrap = ServerBootstrap(group: loop, childGroup: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 128)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: Self.receiveAllocator)
            .childChannelInitializer { child in
                self.track(child, interface: interface?.name).flatMap { childInitializer($0) }
            }
        if let mark = markOption {
            bootstrap = bootstrap.serverChannelOption(mark.option, value: mark.value).childChannelOption(mark.option, value: mark.value)
        }
        if let interface, !skipsPinningForTests {
            bootstrap = bootstrap.serverChannelOption(
                InterfacePinning.option(ipv6: address.protocol == .inet6), value: SocketOptionValue(interface.index))
        }
        return bootstrap.bind(to: address).flatMap { self.track($0, interface: interface?.name, kind: .listener) }
    }

    // MARK: - UDP

    /// Opens a UDP socket able to reach `remote` (same address family), pinned like TCP sockets.
    public func openUDP(
        toReach remote: SocketAddress,
        on eventLoop: (any EventLoop)? = nil,
        initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<any Channel> {
        let loop = eventLoop ?? group.next()
        let pin: Pin?
        do { pin = try self.pin(forRemote: remote) } catch { return loop.makeFailedFuture(error) }
        var bootstrap = DatagramBootstrap(group: loop).channelInitializer { channel in
            self.track(channel, interface: pin?.interface.name, kind: .datagram).flatMap { initializer($0) }
        }
        let source: SocketAddress
        if let mark = markOption { bootstrap = bootstrap.channelOption(mark.option, value: mark.value) }
        if let pin, !skipsPinningForTests {
            bootstrap = bootstrap.channelOption(
                InterfacePinning.option(ipv6: pin.ipv6), value: SocketOptionValue(pin.interface.index))
            source = pin.source
        } else {
            source = try! SocketAddress(ipAddress: remote.protocol == .inet6 ? "::" : "0.0.0.0", port: 0)
        }
        return bootstrap.bind(to: source)
    }

    // MARK: - Names

    /// Resolves `host` (or parses a numeric address) to socket addresses, IPv4 first.
    public func resolve(host: String, port: Int, on eventLoop: (any EventLoop)? = nil) -> EventLoopFuture<[SocketAddress]> {
        let loop = eventLoop ?? group.next()
        if let numeric = try? SocketAddress(ipAddress: host, port: port) {
            return loop.makeSucceededFuture([numeric])
        }
        if isHalted.withLockedValue({ $0 }) { return loop.makeFailedFuture(SocketSeamError.halted) }
        if let resolver = dnsResolver.withLockedValue({ $0 }) {
            return resolver.resolve(host: host, port: port, on: loop)
        }
        switch policy {
        case .bound:
            // The system resolver would pick its own route, around the tunnel: never use it when bound.
            do {
                let resolver = try DNSResolver(resolvConfAt: "/etc/resolv.conf", sockets: self)
                dnsResolver.withLockedValue { $0 = resolver }
                return resolver.resolve(host: host, port: port, on: loop)
            } catch {
                return loop.makeFailedFuture(SocketSeamError.resolutionFailed(
                    host: host, reason: "no DNS server configured (\(error)); pass --dns with a server inside the tunnel"))
            }
        case .unbound:
            return threadPool.runIfActive(eventLoop: loop) {
                try SystemResolver.resolve(host: host, port: port)
            }
        }
    }

    // MARK: - Kill switch hooks

    /// Closes every live socket now. Later operations still work unless `halt()` was called.
    @discardableResult
    public func closeAll() -> SocketsClosing {
        abort(liveChannels.withLockedValue { Array($0.values) })
    }

    /// Aborts every live socket pinned to `interface` (the kill switch). Safe from any thread.
    @discardableResult
    public func closeAll(onInterface interface: String) -> SocketsClosing {
        abort(liveChannels.withLockedValue { $0.values.filter { $0.interface == interface } })
    }

    /// Takes the sockets away from the application at once: no byte read from them reaches it any more,
    /// and nothing more is written. Listeners and UDP sockets are simply closed. Established TCP sockets
    /// are *retired* instead: a handler at the head of the pipeline discards input, the application is
    /// told (`SocketRetiredEvent`) and forgets the connection, and the socket lives on in the kernel, still
    /// pinned to the tunnel: it half-closes (FIN) when the tunnel is back (`finishRetired`), and ends when
    /// the peer closes it or a grace period passes.
    ///
    /// Why not close or RST-abort: Linux frees a TCP socket at once when it is aborted, or closed with
    /// unread data (it sends an RST), and with the socket goes its interface pinning. The peer's next
    /// retransmission then draws a socketless RST from the kernel, routed like an unbound packet — out of
    /// the clear interface when the tunnel's route is gone. The tunnel lab caught exactly that. A retired
    /// socket answers such segments itself, through the tunnel or not at all.
    private func abort(_ channels: [TrackedChannel]) -> SocketsClosing {
        var futures: [EventLoopFuture<Void>] = []
        for tracked in channels {
            let channel = tracked.channel
            let promise = channel.eventLoop.makePromise(of: Void.self)
            let id = ObjectIdentifier(channel)
            channel.eventLoop.execute {
                if tracked.kind == .stream, channel.isActive {
                    self.liveChannels.withLockedValue { $0[id]?.retired = true }
                    Self.retire(channel)
                } else {
                    channel.close(mode: .all, promise: nil)
                }
                promise.succeed(())
            }
            futures.append(promise.futureResult)
        }
        let all = EventLoopFuture.andAllComplete(futures, on: group.next())
        return SocketsClosing(count: channels.count, done: all)
    }

    /// The tunnel is back on `interface`: its retired connections that still own one of its addresses send
    /// their FIN now, through the tunnel, so peers see the end of our old connection at once instead of
    /// after a timeout — until then many clients refuse our new connection as a duplicate. The sockets stay
    /// alive to absorb whatever the peer still had in flight: an RST abort here would free them, and the
    /// kernel's socketless RSTs to those late segments are routed like unbound packets (the 100-flap lab
    /// caught 52 on the clear interface that way). Connections of an address that is gone are left to the
    /// grace period (a FIN from the old address would only tie it to the new one). A tunnel process that
    /// restarts recreates its interface under a new index: the sockets are re-pinned to it first.
    @discardableResult
    public func finishRetired(on interface: UsableInterface) -> Int {
        let owned = Set(interface.addresses.compactMap(\.ipAddress))
        let channels = liveChannels.withLockedValue { live in
            live.values.filter { $0.retired && $0.interface == interface.name }.map(\.channel)
        }
        var count = 0
        for channel in channels {
            guard let local = channel.localAddress, let ip = local.ipAddress, owned.contains(ip) else { continue }
            count += 1
            channel.eventLoop.execute {
                if !self.skipsPinningForTests {
                    _ = try? channel.syncOptions?.setOption(
                        InterfacePinning.option(ipv6: local.protocol == .inet6), value: SocketOptionValue(interface.index))
                }
                channel.close(mode: .output, promise: nil)
            }
        }
        return count
    }

    /// Refuses all new sockets and closes the live ones (program exit).
    public func halt() {
        isHalted.withLockedValue { $0 = true }
        closeAll()
    }

    public var liveSocketCount: Int { liveChannels.withLockedValue { $0.count } }

    // MARK: - Internals

    private struct Pin {
        var interface: UsableInterface
        var source: SocketAddress
        var ipv6: Bool
    }

    /// Picks the interface and source address for reaching `remote`; nil when unbound.
    private func pin(forRemote remote: SocketAddress) throws -> Pin? {
        if isHalted.withLockedValue({ $0 }) { throw SocketSeamError.halted }
        guard case .bound = policy else { return nil }
        let ipv6 = remote.protocol == .inet6
        for interface in try usableInterfaces() {
            if let source = interface.firstAddress(ipv6: ipv6) {
                return Pin(interface: interface, source: source, ipv6: ipv6)
            }
        }
        throw SocketSeamError.noUsableInterface(policy: policy.description, family: ipv6 ? "IPv6" : "IPv4")
    }

    private func track(_ channel: any Channel, interface: String?, kind: TrackedChannel.Kind = .stream) -> EventLoopFuture<any Channel> {
        let id = ObjectIdentifier(channel)
        let halted = liveChannels.withLockedValue { live -> Bool in
            if isHalted.withLockedValue({ $0 }) { return true }
            live[id] = TrackedChannel(channel: channel, interface: interface, kind: kind)
            return false
        }
        if halted {
            channel.close(mode: .all, promise: nil)
            return channel.eventLoop.makeFailedFuture(SocketSeamError.halted)
        }
        // A socket pinned from a list read just before a kill switch fired must not outlive the interface.
        if let interface, let source = interfaceSource.withLockedValue({ $0 }),
           !source().contains(where: { $0.name == interface }) {
            _ = liveChannels.withLockedValue { $0.removeValue(forKey: id) }
            channel.close(mode: .all, promise: nil)
            return channel.eventLoop.makeFailedFuture(
                SocketSeamError.noUsableInterface(policy: policy.description, family: "IP (\(interface) went away)"))
        }
        channel.closeFuture.whenComplete { _ in
            _ = self.liveChannels.withLockedValue { $0.removeValue(forKey: id) }
        }
        return channel.eventLoop.makeSucceededFuture(channel)
    }
}

/// How long a retired socket may linger in the kernel before it is closed for good.
let retiredSocketGracePeriod = TimeAmount.seconds(120)

extension SocketFactory {
    /// Runs on the channel's event loop. Idempotent.
    static func retire(_ channel: any Channel) {
        guard (try? channel.pipeline.syncOperations.handler(type: RetiredSocketHandler.self)) == nil else { return }
        try? channel.pipeline.syncOperations.addHandler(RetiredSocketHandler(), position: .first)
        channel.pipeline.fireUserInboundEventTriggered(SocketRetiredEvent())
        // No FIN yet: it could not leave while the tunnel is down, and its retransmission timer would back
        // off for seconds. `finishRetired` sends it the moment the tunnel is back.
        let deadline = channel.eventLoop.scheduleTask(in: retiredSocketGracePeriod) { channel.close(promise: nil) }
        channel.closeFuture.whenComplete { _ in deadline.cancel() }
    }
}

/// A live socket this factory made, with what it is pinned to.
struct TrackedChannel {
    enum Kind { case stream, listener, datagram }
    let channel: any Channel
    let interface: String?
    let kind: Kind
    /// Taken from the application by the kill switch; only the kernel still holds it.
    var retired = false
}

/// Sent through a channel's pipeline when the kill switch retires it: forget the connection now; the
/// socket finishes dying in the kernel on its own. Closing it yourself would risk an unpinned RST.
public struct SocketRetiredEvent: Sendable {}

/// Swallows everything a retired socket still receives; a read error or EOF ends it for good.
final class RetiredSocketHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is SocketRetiredEvent { context.fireUserInboundEventTriggered(event) }
        // Half-closure events and the like stop here: nothing behind us may react any more.
    }
}

/// What a bulk close started: how many sockets, and a future that completes once every close ran.
public struct SocketsClosing: Sendable {
    public let count: Int
    public let done: EventLoopFuture<Void>
}
