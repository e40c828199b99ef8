import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import Sockets

/// Hand-built DNS packets (big-endian, RFC 1035 layout), independent of the codec under test.
enum Packet {
    static func header(id: UInt16, flags: UInt16, questions: UInt16 = 1, answers: UInt16 = 0) -> [UInt8] {
        be(id) + be(flags) + be(questions) + be(answers) + be(0) + be(0)
    }

    static func name(_ text: String) -> [UInt8] {
        text.split(separator: ".").flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } + [0]
    }

    static func pointer(_ offset: Int) -> [UInt8] { [0xC0 | UInt8(offset >> 8), UInt8(offset & 0xFF)] }

    static func question(_ nameBytes: [UInt8], type: UInt16) -> [UInt8] { nameBytes + be(type) + be(1) }

    static func record(_ nameBytes: [UInt8], type: UInt16, ttl: UInt32 = 300, data: [UInt8]) -> [UInt8] {
        nameBytes + be(type) + be(1) + be(UInt16(ttl >> 16)) + be(UInt16(ttl & 0xFFFF)) + be(UInt16(data.count)) + data
    }

    static func be(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }

    /// Response flags: QR=1, RD=1, RA=1, plus TC and rcode.
    static func responseFlags(rcode: UInt8 = 0, truncated: Bool = false) -> UInt16 {
        0x8180 | (truncated ? 0x0200 : 0) | UInt16(rcode)
    }
}

/// A query as the fake server sees it.
struct ReceivedQuery: Sendable {
    let id: UInt16
    let name: String
    let type: UInt16
    let questionBytes: [UInt8]  // name + type + class, to echo back

    init?(_ bytes: [UInt8]) {
        guard bytes.count > 12 else { return nil }
        id = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        var offset = 12
        var labels: [String] = []
        while offset < bytes.count, bytes[offset] != 0 {
            let length = Int(bytes[offset])
            guard offset + 1 + length <= bytes.count else { return nil }
            labels.append(String(decoding: bytes[(offset + 1)..<(offset + 1 + length)], as: UTF8.self))
            offset += 1 + length
        }
        guard offset + 5 <= bytes.count else { return nil }
        name = labels.joined(separator: ".")
        type = UInt16(bytes[offset + 1]) << 8 | UInt16(bytes[offset + 2])
        questionBytes = Array(bytes[12..<(offset + 5)])
    }

    /// A response echoing the question; answer owner names given as "@" use a pointer to the question name.
    func response(
        rcode: UInt8 = 0, truncated: Bool = false, id overrideID: UInt16? = nil,
        answers: [(owner: String, type: UInt16, data: [UInt8])] = []
    ) -> [UInt8] {
        var bytes = Packet.header(
            id: overrideID ?? id, flags: Packet.responseFlags(rcode: rcode, truncated: truncated),
            answers: UInt16(answers.count))
        bytes += questionBytes
        for answer in answers {
            let owner = answer.owner == "@" ? Packet.pointer(12) : Packet.name(answer.owner)
            bytes += Packet.record(owner, type: answer.type, data: answer.data)
        }
        return bytes
    }
}

enum FakeTransport: Sendable { case udp, tcp }

/// One reply the fake server sends for a query.
struct FakeReply: Sendable {
    var bytes: [UInt8]
    /// Sent from a different socket (another source port): must be ignored by the resolver.
    var fromImpostor = false
    var delay: TimeAmount = .zero
}

/// A tiny DNS server on 127.0.0.1, UDP and TCP on the same port, answering through `behavior`.
final class FakeDNSServer: Sendable {
    typealias Behavior = @Sendable (ReceivedQuery, FakeTransport) -> [FakeReply]

    let address: SocketAddress
    private let udp: any Channel
    private let tcp: any Channel
    private let impostor: any Channel
    private let log = NIOLockedValueBox<[(FakeTransport, String, UInt16)]>([])

    var queries: [(transport: FakeTransport, name: String, type: UInt16)] {
        log.withLockedValue { $0.map { (transport: $0.0, name: $0.1, type: $0.2) } }
    }

    func count(_ transport: FakeTransport) -> Int { queries.filter { $0.transport == transport }.count }

    init(group: any EventLoopGroup, behavior: @escaping Behavior) async throws {
        let log = self.log
        let impostor = try await DatagramBootstrap(group: group)
            .bind(host: "127.0.0.1", port: 0).get()
        self.impostor = impostor
        let udp = try await DatagramBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        FakeUDPHandler(behavior: behavior, log: log, impostor: impostor))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        self.udp = udp
        let port = udp.localAddress!.port!
        self.tcp = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FakeTCPHandler(behavior: behavior, log: log))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        self.address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
    }

    func close() async {
        try? await udp.close()
        try? await tcp.close()
        try? await impostor.close()
    }
}

private final class FakeUDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>
    let behavior: FakeDNSServer.Behavior
    let log: NIOLockedValueBox<[(FakeTransport, String, UInt16)]>
    let impostor: any Channel

    init(behavior: @escaping FakeDNSServer.Behavior, log: NIOLockedValueBox<[(FakeTransport, String, UInt16)]>,
         impostor: any Channel) {
        self.behavior = behavior
        self.log = log
        self.impostor = impostor
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let query = ReceivedQuery(Array(envelope.data.readableBytesView)) else { return }
        log.withLockedValue { $0.append((.udp, query.name, query.type)) }
        let channel = context.channel
        for reply in behavior(query, .udp) {
            let out = AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: ByteBuffer(bytes: reply.bytes))
            let sender = reply.fromImpostor ? impostor : channel
            if reply.delay == .zero {
                sender.writeAndFlush(out, promise: nil)
            } else {
                sender.eventLoop.scheduleTask(in: reply.delay) { sender.writeAndFlush(out, promise: nil) }
            }
        }
    }
}

private final class FakeTCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let behavior: FakeDNSServer.Behavior
    let log: NIOLockedValueBox<[(FakeTransport, String, UInt16)]>
    private var pending = ByteBuffer()

    init(behavior: @escaping FakeDNSServer.Behavior, log: NIOLockedValueBox<[(FakeTransport, String, UInt16)]>) {
        self.behavior = behavior
        self.log = log
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        pending.writeBuffer(&incoming)
        while let length = pending.getInteger(at: pending.readerIndex, as: UInt16.self),
              pending.readableBytes >= 2 + Int(length) {
            pending.moveReaderIndex(forwardBy: 2)
            let bytes = pending.readBytes(length: Int(length))!
            guard let query = ReceivedQuery(bytes) else { continue }
            log.withLockedValue { $0.append((.tcp, query.name, query.type)) }
            for reply in behavior(query, .tcp) {
                var framed = context.channel.allocator.buffer(capacity: reply.bytes.count + 2)
                framed.writeInteger(UInt16(reply.bytes.count))
                framed.writeBytes(reply.bytes)
                context.writeAndFlush(NIOAny(framed), promise: nil)
            }
        }
    }
}

/// A socket factory for tests: loopback, unbound unless told otherwise.
struct TestSockets {
    let group: MultiThreadedEventLoopGroup
    let pool: NIOThreadPool
    let factory: SocketFactory

    init(policy: NetworkPolicy = .unbound, logger: Logger = Logger(label: "test")) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        factory = SocketFactory(policy: policy, group: group, threadPool: pool, logger: logger)
    }

    func shutdown() async {
        factory.closeAll()
        try? await pool.shutdownGracefully()
        try? await group.shutdownGracefully()
    }
}

/// Collects log lines so tests can check their exact format.
final class LogCapture: Sendable {
    private let lines = NIOLockedValueBox<[(Logger.Level, String)]>([])

    var messages: [(level: Logger.Level, text: String)] { lines.withLockedValue { $0.map { (level: $0.0, text: $0.1) } } }

    func logger(label: String = "capture") -> Logger {
        let lines = self.lines
        return Logger(label: label) { _ in CaptureHandler(lines: lines) }
    }

    private struct CaptureHandler: LogHandler {
        let lines: NIOLockedValueBox<[(Logger.Level, String)]>
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            lines.withLockedValue { $0.append((event.level, event.message.description)) }
        }
    }
}
