import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Sockets
import Testing
import TorrentModel
@testable import Engine

/// The leak alarm: when a tracker (or peer) reports that it sees us at the address of an interface we are
/// not bound to, our traffic is leaving outside the tunnel somewhere, and everything must halt.
@Suite(.serialized) struct LeakAlarmTests {
    /// A one-route HTTP tracker on 127.0.0.1 that answers every announce with `body`.
    final class FakeTracker: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let body: [UInt8]
        init(body: [UInt8]) { self.body = body }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Length", value: "\(body.count)")
            headers.add(name: "Connection", value: "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    static func bencodedAnnounce(externalIP: [UInt8]) -> [UInt8] {
        Array("d11:external ip\(externalIP.count):".utf8) + externalIP + Array("8:intervali1800e5:peers0:e".utf8)
    }

    /// An IPv4 address of this machine on an interface other than loopback (the "clear" interface).
    static func clearAddress() throws -> (interface: String, ip: [UInt8])? {
        for interface in try InterfaceTable.usable(under: .unbound) where interface.name != "lo" {
            if let address = interface.firstAddress(ipv6: false), let peer = PeerAddress(socketAddress: address) {
                return (interface.name, peer.ip)
            }
        }
        return nil
    }

    func runDownload(trackerReports ip: [UInt8]) async throws -> (TorrentStatus, Bool) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let body = Self.bencodedAnnounce(externalIP: ip)
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(FakeTracker(body: body))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = server.localAddress!.port!
        let data = [UInt8](repeating: 7, count: 64 * 1024)
        let torrent = try TorrentCreator.create(singleFile: "x.bin", data: data, pieceLength: 16 * 1024,
                                                details: .init(announce: [["http://127.0.0.1:\(port)/announce"]]))
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("burrow-leak-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        var logger = Logger(label: "leak-test")
        logger.logLevel = .critical
        // Bound to loopback: the tracker is reachable through the "tunnel", and every other interface is clear.
        let client = BurrowClient(configuration: ClientConfiguration(
            networkPolicy: .bound(interfacePatterns: ["lo"]), listenPort: Int.random(in: 30000...40000)), logger: logger)
        try await client.start()
        let handle = try await client.add(.metainfo(try Metainfo.parse(torrent)), options: SessionOptions(outputDirectory: output))
        var status = try await handle.status()
        for _ in 0..<50 {
            try await Task.sleep(for: .milliseconds(100))
            status = try await handle.status()
            if case .failed = status.state { break }
        }
        let halted = client.sockets.liveSocketCount == 0
        await client.shutdown()
        try await server.close()
        try await group.shutdownGracefully()
        return (status, halted)
    }

    @Test func trackerSeeingUsAtAClearAddressHaltsEverything() async throws {
        guard let clear = try Self.clearAddress() else {
            Issue.record("this machine has no non-loopback IPv4 interface to play the clear interface")
            return
        }
        let (status, halted) = try await runDownload(trackerReports: clear.ip)
        guard case .failed(let message) = status.state else {
            Issue.record("expected the leak alarm to fail the torrent, state is \(status.state)")
            return
        }
        #expect(message.contains("LEAK ALARM"))
        #expect(message.contains(clear.interface))
        #expect(halted, "sockets still open after the leak alarm")
    }

    @Test func trackerSeeingUsAtTheTunnelAddressIsFine() async throws {
        let (status, _) = try await runDownload(trackerReports: [127, 0, 0, 1])
        if case .failed(let message) = status.state { Issue.record("unexpected failure: \(message)") }
    }
}

@Suite struct TunnelWaitTests {
    @Test func describesTheOutageWithALocalClockTime() throws {
        let wait = TunnelWait(interface: "wg0", reason: "admin down", since: Date(timeIntervalSince1970: 1_700_000_000))
        let text = wait.description
        #expect(text.hasPrefix("wg0 down since ") && text.hasSuffix(" (admin down)"), "\(text)")
        let clock = Array(TunnelWait.localClock(Date(timeIntervalSince1970: 1_700_000_000)).utf8)
        #expect(clock.count == 8 && clock[2] == UInt8(ascii: ":") && clock[5] == UInt8(ascii: ":"))
        // 22:13:20 UTC: the minutes and seconds are the same in every whole-hour or half-hour time zone.
        #expect(String(decoding: clock[5...], as: UTF8.self) == ":20")
    }
}
