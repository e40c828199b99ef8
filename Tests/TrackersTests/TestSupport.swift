import Bencode
import Logging
import NIOCore
import NIOPosix
import Sockets
import TorrentModel
import Trackers

enum Fixtures {
    /// Bytes chosen to need percent-encoding: NUL, high bytes, '%', '&', '=', space.
    static let infoHash = InfoHash(bytes: [0x00, 0xFF, 0x25, 0x26, 0x3D, 0x20, 0x41, 0x7E, 0x2D, 0x80] + Array(repeating: 0x11, count: 10))!
    static let peerID = PeerID(bytes: Array("-BW0001-abcdefghijkl".utf8))!
    static let logger = Logger(label: "burrow.trackers.tests")

    static func request(event: AnnounceEvent = .started, left: Int64 = 1000) -> AnnounceRequest {
        AnnounceRequest(
            infoHash: infoHash, peerID: peerID, port: 51413, uploaded: 10, downloaded: 20, left: left,
            event: event, numWant: 50, key: 0xDEAD_BEEF)
    }

    static func peer(_ text: String) -> PeerAddress { PeerAddress(parsing: text)! }

    /// For answering trackers: generous, since the whole suite shares 2 cores (tests that need a timeout to
    /// fire set their own). Refused connections still fail at once.
    static let fastHTTP = HTTPAnnouncerConfiguration(timeout: .seconds(10), connectTimeout: .seconds(5))
    static let fastUDP = UDPAnnouncerConfiguration(
        retransmitBase: .milliseconds(100), maxRetransmitExponent: 1, connectionIDLifetime: .seconds(60))
}

/// A socket seam for tests: unbound policy, one event loop, a started thread pool; torn down afterwards.
struct TestNetwork {
    let group: MultiThreadedEventLoopGroup
    let sockets: SocketFactory

    static func with<Result>(_ body: (TestNetwork) async throws -> Result) async throws -> Result {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let network = TestNetwork(
            group: group,
            sockets: SocketFactory(policy: .unbound, group: group, threadPool: pool, logger: Fixtures.logger))
        let outcome: Swift.Result<Result, any Error>
        do { outcome = .success(try await body(network)) } catch { outcome = .failure(error) }
        network.sockets.halt()
        try await pool.shutdownGracefully()
        try await group.shutdownGracefully()
        return try outcome.get()
    }
}

/// Runs `body` and returns what it threw (nil when it did not throw).
func thrownError(_ body: () async throws -> Void) async -> (any Error)? {
    do { try await body(); return nil } catch { return error }
}

func trackerError(_ body: () async throws -> Void) async -> TrackerError? {
    await thrownError(body) as? TrackerError
}

// MARK: - Fake HTTP tracker

/// The request line and headers the fake tracker received.
struct RecordedHTTPRequest: Sendable {
    var target: String
    var headers: [(name: String, value: String)]

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// Query parameters in order, still percent-encoded.
    var query: [(name: String, value: String)] {
        guard let mark = target.firstIndex(of: "?") else { return [] }
        return target[target.index(after: mark)...].split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
    }

    func parameter(_ name: String) -> String? { query.first { $0.name == name }?.value }
    var path: String { String(target.prefix { $0 != "?" }) }
}

/// What the fake HTTP tracker does with a request.
enum FakeHTTPReply: Sendable {
    /// Writes these bytes and closes the connection.
    case raw([UInt8])
    /// Reads the request and never answers.
    case silence

    static func bencoded(_ value: BValue, status: String = "200 OK") -> FakeHTTPReply {
        body(Bencode.encode(value), status: status)
    }

    static func body(_ body: [UInt8], status: String = "200 OK", headers: [String] = []) -> FakeHTTPReply {
        let head = (["HTTP/1.1 \(status)", "Content-Length: \(body.count)", "Connection: close"] + headers)
            .joined(separator: "\r\n") + "\r\n\r\n"
        return .raw(Array(head.utf8) + body)
    }

    static func chunked(_ body: [UInt8]) -> FakeHTTPReply {
        var bytes = Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".utf8)
        var rest = body[...]
        while !rest.isEmpty {
            let chunk = rest.prefix(7)
            rest = rest.dropFirst(7)
            bytes += Array("\(String(chunk.count, radix: 16))\r\n".utf8) + chunk + Array("\r\n".utf8)
        }
        return .raw(bytes + Array("0\r\n\r\n".utf8))
    }

    /// No length at all: the body ends when the server closes.
    static func closeDelimited(_ body: [UInt8]) -> FakeHTTPReply {
        .raw(Array("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".utf8) + body)
    }

    static func redirect(to location: String, status: String = "302 Found") -> FakeHTTPReply {
        body([], status: status, headers: ["Location: \(location)"])
    }
}

/// A scripted HTTP tracker on 127.0.0.1 (or ::1), port chosen by the kernel. Test code may use bootstraps.
final class FakeHTTPTracker: Sendable {
    typealias Responder = @Sendable (_ request: RecordedHTTPRequest, _ index: Int) -> FakeHTTPReply

    let channel: any Channel
    let port: Int
    let host: String
    private let requests: NIOLoopBoundBox<[RecordedHTTPRequest]>

    init(group: any EventLoopGroup, host: String = "127.0.0.1", responder: @escaping Responder) async throws {
        let loop = group.next()
        let requests = try await loop.submit { NIOLoopBoundBox([RecordedHTTPRequest](), eventLoop: loop) }.get()
        channel = try await ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(
                        FakeHTTPConnection(requests: requests, responder: responder))
                }
            }
            .bind(host: host, port: 0).get()
        port = channel.localAddress!.port!
        self.host = host
        self.requests = requests
    }

    var url: String { host.contains(":") ? "http://[\(host)]:\(port)/announce" : "http://\(host):\(port)/announce" }

    func received() async throws -> [RecordedHTTPRequest] {
        try await channel.eventLoop.submit { self.requests.value }.get()
    }

    func close() async { try? await channel.close() }
}

private final class FakeHTTPConnection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let requests: NIOLoopBoundBox<[RecordedHTTPRequest]>
    private let responder: FakeHTTPTracker.Responder
    private var received: [UInt8] = []
    private var answered = false

    init(requests: NIOLoopBoundBox<[RecordedHTTPRequest]>, responder: @escaping FakeHTTPTracker.Responder) {
        self.requests = requests
        self.responder = responder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytesView
        guard !answered, let end = received.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
        answered = true
        let lines = String(decoding: received[..<end.lowerBound], as: UTF8.self).split(separator: "\r\n")
        let requestLine = lines.first.map { $0.split(separator: " ") } ?? []
        let headers = lines.dropFirst().map { line -> (String, String) in
            let parts = line.split(separator: ":", maxSplits: 1)
            return (String(parts[0]), parts.count > 1 ? String(parts[1].drop { $0 == " " }) : "")
        }
        let request = RecordedHTTPRequest(target: requestLine.count > 1 ? String(requestLine[1]) : "", headers: headers)
        let index = requests.value.count
        requests.value.append(request)
        switch responder(request, index) {
        case .silence:
            break
        case .raw(let bytes):
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(bytes: bytes))).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }
}

/// A port on 127.0.0.1 with nothing listening (bound once, then closed).
func unusedTCPPort(group: any EventLoopGroup) async throws -> Int {
    let channel = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress!.port!
    try await channel.close()
    return port
}

// MARK: - Fake UDP tracker

/// One datagram the fake UDP tracker received. Connect and announce requests both carry the action at
/// offset 8 and the transaction id at offset 12.
struct RecordedDatagram: Sendable {
    var bytes: [UInt8]
    var action: UInt32 { bytes.count >= 12 ? UDPWire.readUInt32(bytes, at: 8) : .max }
    var transactionID: UInt32 { bytes.count >= 16 ? UDPWire.readUInt32(bytes, at: 12) : 0 }
    var connectionID: UInt64 { bytes.count >= 8 ? UDPWire.readUInt64(bytes, at: 0) : 0 }
    var isConnect: Bool { action == 0 && connectionID == 0x417_2710_1980 }
    var isAnnounce: Bool { action == 1 }
}

enum UDPWire {
    static func readUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func readUInt64(_ bytes: [UInt8], at offset: Int) -> UInt64 {
        bytes[offset..<(offset + 8)].reduce(0) { $0 << 8 | UInt64($1) }
    }

    static func be<Integer: FixedWidthInteger>(_ value: Integer) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }

    static func connectReply(transactionID: UInt32, connectionID: UInt64) -> [UInt8] {
        be(UInt32(0)) + be(transactionID) + be(connectionID)
    }

    static func announceReply(
        transactionID: UInt32, interval: UInt32 = 900, leechers: UInt32 = 3, seeders: UInt32 = 7, peers: [PeerAddress]
    ) -> [UInt8] {
        be(UInt32(1)) + be(transactionID) + be(interval) + be(leechers) + be(seeders) + peers.flatMap(\.compact)
    }

    static func errorReply(transactionID: UInt32, message: String) -> [UInt8] {
        be(UInt32(3)) + be(transactionID) + Array(message.utf8)
    }
}

/// A scripted UDP tracker. The responder sees each datagram (and its index) and returns the datagrams
/// to send back, possibly none (a dropped packet).
final class FakeUDPTracker: Sendable {
    typealias Responder = @Sendable (_ datagram: RecordedDatagram, _ index: Int) -> [[UInt8]]

    let channel: any Channel
    let port: Int
    let host: String
    private let datagrams: NIOLoopBoundBox<[RecordedDatagram]>

    init(group: any EventLoopGroup, host: String = "127.0.0.1", responder: @escaping Responder) async throws {
        let loop = group.next()
        let datagrams = try await loop.submit { NIOLoopBoundBox([RecordedDatagram](), eventLoop: loop) }.get()
        channel = try await DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        FakeUDPHandler(datagrams: datagrams, responder: responder))
                }
            }
            .bind(host: host, port: 0).get()
        port = channel.localAddress!.port!
        self.host = host
        self.datagrams = datagrams
    }

    var url: String { host.contains(":") ? "udp://[\(host)]:\(port)/announce" : "udp://\(host):\(port)/announce" }

    func received() async throws -> [RecordedDatagram] {
        try await channel.eventLoop.submit { self.datagrams.value }.get()
    }

    func close() async { try? await channel.close() }

    /// A well-behaved tracker: hands out `connectionID`, answers announces carrying it with `peers`,
    /// ignores announces with any other id.
    static func standard(connectionID: UInt64 = 0xC0FF_EE00_1234_5678, peers: [PeerAddress]) -> Responder {
        { datagram, _ in
            if datagram.isConnect {
                return [UDPWire.connectReply(transactionID: datagram.transactionID, connectionID: connectionID)]
            }
            if datagram.isAnnounce && datagram.connectionID == connectionID {
                return [UDPWire.announceReply(transactionID: datagram.transactionID, peers: peers)]
            }
            return []
        }
    }
}

private final class FakeUDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let datagrams: NIOLoopBoundBox<[RecordedDatagram]>
    private let responder: FakeUDPTracker.Responder

    init(datagrams: NIOLoopBoundBox<[RecordedDatagram]>, responder: @escaping FakeUDPTracker.Responder) {
        self.datagrams = datagrams
        self.responder = responder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let datagram = RecordedDatagram(bytes: Array(envelope.data.readableBytesView))
        let index = datagrams.value.count
        datagrams.value.append(datagram)
        for reply in responder(datagram, index) {
            let out = AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: context.channel.allocator.buffer(bytes: reply))
            context.write(wrapOutboundOut(out), promise: nil)
        }
        context.flush()
    }
}
