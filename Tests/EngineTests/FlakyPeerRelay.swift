import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP listener on 127.0.0.1 that plays a hostile or flaky peer in front of a real one: connection
/// number i (from 0) gets `script[i]` (then `afterwards`): closed at once, accepted and never answered,
/// or relayed byte for byte to `target` (a real seeder), so a test controls exactly how the first
/// connections fail and then gets a real transfer.
final class FlakyPeerRelay: Sendable {
    enum Act: Sendable { case closeAtOnce, silent, relay }

    struct Connection: Sendable {
        let act: Act
        let acceptedAt: ContinuousClock.Instant
        var closedAt: ContinuousClock.Instant?
    }

    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let script: [Act]
    private let afterwards: Act
    private let target: Int
    private let log = NIOLockedValueBox<[Connection]>([])
    private let server = NIOLockedValueBox<(any Channel)?>(nil)

    init(script: [Act], afterwards: Act = .relay, target: Int) {
        self.script = script
        self.afterwards = afterwards
        self.target = target
    }

    /// Every connection so far, in order of arrival.
    var connections: [Connection] { log.withLockedValue { $0 } }

    /// Starts listening; returns the port.
    func start() async throws -> Int {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] child in accepted(child) }
            .bind(host: "127.0.0.1", port: 0).get()
        server.withLockedValue { $0 = channel }
        return channel.localAddress!.port!
    }

    func stop() async {
        try? await server.withLockedValue { $0 }?.close().get()
        try? await group.shutdownGracefully()
    }

    private func accepted(_ child: any Channel) -> EventLoopFuture<Void> {
        let index = log.withLockedValue { log -> Int in
            log.append(Connection(act: .relay, acceptedAt: .now))
            return log.count - 1
        }
        let act = index < script.count ? script[index] : afterwards
        log.withLockedValue { $0[index] = Connection(act: act, acceptedAt: $0[index].acceptedAt) }
        child.closeFuture.whenComplete { [log] _ in log.withLockedValue { $0[index].closedAt = .now } }
        switch act {
        case .closeAtOnce:
            return child.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)  // NIO closes it
        case .silent:
            return child.pipeline.addHandler(Discard())
        case .relay:
            let inbound = Relay(partner: nil)
            let connected = ClientBootstrap(group: child.eventLoop)
                .channelInitializer { out in out.pipeline.addHandler(Relay(partner: child)) }
                .connect(host: "127.0.0.1", port: target)
            connected.whenComplete { result in
                switch result {
                case .success(let out): inbound.attach(out)
                case .failure: child.close(promise: nil)
                }
            }
            return child.pipeline.addHandler(inbound)
        }
    }

    /// Reads and ignores everything; the connection stays open until the other side closes it.
    private final class Discard: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
    }

    /// One half of a relay: what it reads goes to `partner`; when either side closes, both do.
    /// Confined to the one event loop both channels share.
    private final class Relay: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        private var partner: (any Channel)?
        private var pending: [ByteBuffer] = []
        private var isClosed = false

        init(partner: (any Channel)?) { self.partner = partner }

        func attach(_ channel: any Channel) {
            if isClosed {
                channel.close(promise: nil)
                return
            }
            partner = channel
            for buffer in pending { channel.write(buffer, promise: nil) }
            pending = []
            channel.flush()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            if let partner { partner.writeAndFlush(buffer, promise: nil) } else { pending.append(buffer) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            isClosed = true
            partner?.close(promise: nil)
            context.fireChannelInactive()
        }
    }
}

/// Sockets of this process whose local TCP port is `port` and that are not listening: for a port
/// only Burrow listens on, the descriptors Burrow holds for accepted connections (from /proc/self/fd
/// and /proc/net/tcp{,6}).
func acceptedSocketDescriptors(onPort port: Int) -> Int {
    let fdDirectory = "/proc/self/fd"
    var ourInodes: Set<String> = []
    for name in (try? FileManager.default.contentsOfDirectory(atPath: fdDirectory)) ?? [] {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fdDirectory)/\(name)"),
              target.hasPrefix("socket:[") else { continue }
        ourInodes.insert(String(target.dropFirst(8).dropLast()))
    }
    var count = 0
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        guard let text = readProcFile(table) else { continue }
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 9, let colon = fields[1].lastIndex(of: ":"),
                  Int(fields[1][fields[1].index(after: colon)...], radix: 16) == port,
                  fields[3] != "0A" /* LISTEN */, ourInodes.contains(String(fields[9])) else { continue }
            count += 1
        }
    }
    return count
}

/// The whole of a /proc file (they report size 0, so size-based readers stop at the first page).
func readProcFile(_ path: String) -> String? {
    guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
    defer { try? handle.close() }
    var data = Data()
    while let chunk = try? handle.read(upToCount: 65536), !chunk.isEmpty { data.append(chunk) }
    return String(decoding: data, as: UTF8.self)
}
