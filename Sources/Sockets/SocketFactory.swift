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
    private let liveChannels = NIOLockedValueBox<[ObjectIdentifier: (channel: any Channel, interface: String?)]>([:])
    private let isHalted = NIOLockedValueBox(false)

    public init(policy: NetworkPolicy, group: any EventLoopGroup, threadPool: NIOThreadPool, logger: Logger) {
        self.policy = policy
        self.group = group
        self.threadPool = threadPool
        self.logger = logger
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
        var bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer(initializer)
        if let pin {
            bootstrap = bootstrap
                .channelOption(InterfacePinning.option(ipv6: pin.ipv6), value: SocketOptionValue(pin.interface.index))
                .bind(to: pin.source)
        }
        return bootstrap.connect(to: address).flatMap { channel in
            self.track(channel, interface: pin?.interface.name)
        }
    }

    // MARK: - TCP in

    /// Listens on `port` on every allowed interface address (one listener per address, all on the same
    /// port). With `.unbound`, listens on the IPv4 and IPv6 wildcards.
    public func listenTCP(
        port: Int,
        on eventLoop: (any EventLoop)? = nil,
        childInitializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<[any Channel]> {
        let loop = eventLoop ?? group.next()
        var targets: [(address: SocketAddress, interface: UsableInterface?)] = []
        switch policy {
        case .unbound:
            targets = [(try! SocketAddress(ipAddress: "0.0.0.0", port: port), nil)]
        case .bound:
            let interfaces: [UsableInterface]
            do { interfaces = try InterfaceTable.usable(under: policy) } catch { return loop.makeFailedFuture(error) }
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
            .childChannelInitializer { child in
                self.track(child, interface: interface?.name).flatMap { childInitializer($0) }
            }
        if let interface {
            bootstrap = bootstrap.serverChannelOption(
                InterfacePinning.option(ipv6: address.protocol == .inet6), value: SocketOptionValue(interface.index))
        }
        return bootstrap.bind(to: address).flatMap { self.track($0, interface: interface?.name) }
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
        var bootstrap = DatagramBootstrap(group: loop).channelInitializer(initializer)
        let source: SocketAddress
        if let pin {
            bootstrap = bootstrap.channelOption(
                InterfacePinning.option(ipv6: pin.ipv6), value: SocketOptionValue(pin.interface.index))
            source = pin.source
        } else {
            source = try! SocketAddress(ipAddress: remote.protocol == .inet6 ? "::" : "0.0.0.0", port: 0)
        }
        return bootstrap.bind(to: source).flatMap { self.track($0, interface: pin?.interface.name) }
    }

    // MARK: - Names

    /// Resolves `host` (or parses a numeric address) to socket addresses, IPv4 first.
    public func resolve(host: String, port: Int, on eventLoop: (any EventLoop)? = nil) -> EventLoopFuture<[SocketAddress]> {
        let loop = eventLoop ?? group.next()
        if let numeric = try? SocketAddress(ipAddress: host, port: port) {
            return loop.makeSucceededFuture([numeric])
        }
        if isHalted.withLockedValue({ $0 }) { return loop.makeFailedFuture(SocketSeamError.halted) }
        return threadPool.runIfActive(eventLoop: loop) {
            try SystemResolver.resolve(host: host, port: port)
        }
    }

    // MARK: - Kill switch hooks

    /// Closes every live socket now. Later operations still work unless `halt()` was called.
    public func closeAll() {
        let channels = liveChannels.withLockedValue { $0.values.map(\.channel) }
        for channel in channels { channel.close(mode: .all, promise: nil) }
    }

    /// Closes every live socket pinned to `interface`.
    public func closeAll(onInterface interface: String) {
        let channels = liveChannels.withLockedValue { $0.values.filter { $0.interface == interface }.map(\.channel) }
        for channel in channels { channel.close(mode: .all, promise: nil) }
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
        for interface in try InterfaceTable.usable(under: policy) {
            if let source = interface.firstAddress(ipv6: ipv6) {
                return Pin(interface: interface, source: source, ipv6: ipv6)
            }
        }
        throw SocketSeamError.noUsableInterface(policy: policy.description, family: ipv6 ? "IPv6" : "IPv4")
    }

    private func track(_ channel: any Channel, interface: String?) -> EventLoopFuture<any Channel> {
        let id = ObjectIdentifier(channel)
        let halted = liveChannels.withLockedValue { live -> Bool in
            if isHalted.withLockedValue({ $0 }) { return true }
            live[id] = (channel, interface)
            return false
        }
        if halted {
            channel.close(mode: .all, promise: nil)
            return channel.eventLoop.makeFailedFuture(SocketSeamError.halted)
        }
        channel.closeFuture.whenComplete { _ in
            _ = self.liveChannels.withLockedValue { $0.removeValue(forKey: id) }
        }
        return channel.eventLoop.makeSucceededFuture(channel)
    }
}
