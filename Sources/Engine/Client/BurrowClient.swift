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

    public init(networkPolicy: NetworkPolicy, listenPort: Int = 6881, diskThreads: Int = 2) {
        self.networkPolicy = networkPolicy
        self.listenPort = listenPort
        self.diskThreads = diskThreads
    }
}

/// The API facade shared by the CLI (and, later, the daemon, RPC and web UI): add torrents, watch them,
/// stop them. Owns the event loop, the disk thread pool and the socket seam.
public final class BurrowClient: Sendable {
    public let configuration: ClientConfiguration
    private let group: MultiThreadedEventLoopGroup
    private let threadPool: NIOThreadPool
    public let sockets: SocketFactory
    private let logger: Logger
    /// Peer traffic runs on one loop: the sessions and their channels share it, so peer events need no hops.
    private let loop: any EventLoop
    private let sessions = NIOLockedValueBox<[InfoHash: TorrentSession]>([:])
    private let listeners = NIOLockedValueBox<[any Channel]>([])

    public init(configuration: ClientConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.threadPool = NIOThreadPool(numberOfThreads: max(1, configuration.diskThreads))
        self.threadPool.start()
        self.loop = group.next()
        self.sockets = SocketFactory(policy: configuration.networkPolicy, group: group, threadPool: threadPool, logger: logger)
    }

    /// Starts accepting peers on the listen port.
    public func start() async throws {
        let lookup: @Sendable (InfoHash) -> TorrentSession? = { [sessions] hash in
            sessions.withLockedValue { $0[hash] }
        }
        let channels = try await sockets.listenTCP(port: configuration.listenPort, on: loop) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers([
                    ByteToMessageHandler(PeerWireDecoder()),
                    MessageToByteHandler(PeerWireEncoder()),
                    PeerChannelHandler(route: .incoming(lookup: lookup)),
                ])
            }
        }.get()
        listeners.withLockedValue { $0 = channels }
        for channel in channels {
            logger.info("listening on \(channel.localAddress.map { "\($0)" } ?? "?")")
        }
    }

    /// Adds a torrent and starts it (checking existing data first).
    public func add(_ source: TorrentSource, options: SessionOptions) async throws -> TorrentHandle {
        let session = TorrentSession(source: source, options: options, listenPort: UInt16(configuration.listenPort),
                                     sockets: sockets, threadPool: threadPool, eventLoop: loop, logger: logger)
        try sessions.withLockedValue { table in
            if table[source.infoHash] != nil { throw ClientError.duplicateTorrent(source.infoHash) }
            table[source.infoHash] = session
        }
        do {
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
        sockets.halt()
        try? await Task.sleep(for: .milliseconds(50))
        try? await threadPool.shutdownGracefully()
        try? await group.shutdownGracefully()
    }
}

public enum ClientError: Error, CustomStringConvertible {
    case duplicateTorrent(InfoHash)

    public var description: String {
        switch self {
        case .duplicateTorrent(let hash): return "torrent \(hash) is already added"
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
