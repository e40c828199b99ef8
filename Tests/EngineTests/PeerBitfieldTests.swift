import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing
import TorrentModel
@testable import Engine

/// A peer whose bitfield is refused is told why, in words that match what it sent.
@Suite(.serialized) struct PeerBitfieldTests {
    /// Keeps every message logged, for tests that check what Burrow said.
    final class LogRecorder: Sendable {
        private let lines = Mutex<[String]>([])
        var messages: [String] { lines.withLock { $0 } }
        func record(_ line: String) { lines.withLock { $0.append(line) } }

        struct Handler: LogHandler {
            let recorder: LogRecorder
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .trace
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(event: LogEvent) { recorder.record(event.message.description) }
        }
    }

    /// A scripted peer: answers Burrow's handshake with its own, then sends `bitfield` as is.
    final class BitfieldPeer: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let infoHash: [UInt8]
        let bitfield: [UInt8]
        init(infoHash: [UInt8], bitfield: [UInt8]) {
            self.infoHash = infoHash
            self.bitfield = bitfield
        }

        func channelActive(context: ChannelHandlerContext) {
            var reply = ByteBuffer()
            reply.writeInteger(UInt8(19))
            reply.writeString("BitTorrent protocol")
            reply.writeBytes([UInt8](repeating: 0, count: 8))
            reply.writeBytes(infoHash)
            reply.writeString("-XX0001-hostilepeer1")
            reply.writeInteger(UInt32(1 + bitfield.count))
            reply.writeInteger(UInt8(5))
            reply.writeBytes(bitfield)
            context.writeAndFlush(NIOAny(reply), promise: nil)
        }
    }

    func refusalReason(pieceCount: Int, bitfield: [UInt8]) async throws -> String? {
        let pieceLength = 16 * 1024
        let data = [UInt8](repeating: 3, count: pieceCount * pieceLength - 100)
        let metainfo = try Metainfo.parse(try TorrentCreator.create(singleFile: "x.bin", data: data, pieceLength: pieceLength))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let peer = BitfieldPeer(infoHash: metainfo.infoHash.bytes, bitfield: bitfield)
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(peer) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("burrow-bitfield-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let recorder = LogRecorder()
        let logger = Logger(label: "bitfield-test") { _ in LogRecorder.Handler(recorder: recorder) }
        let client = BurrowClient(configuration: ClientConfiguration(
            networkPolicy: .unbound, listenPort: Int.random(in: 30000...40000)), logger: logger)
        try await client.start()
        let address = PeerAddress(parsing: "127.0.0.1:\(server.localAddress!.port!)")!
        _ = try await client.add(.metainfo(metainfo), options: SessionOptions(outputDirectory: output, extraPeers: [address]))
        var reason: String?
        for _ in 0..<100 where reason == nil {
            try await Task.sleep(for: .milliseconds(100))
            reason = recorder.messages.first { $0.contains("bitfield") }
        }
        await client.shutdown()
        try await server.close()
        try await group.shutdownGracefully()
        return reason
    }

    @Test func spareBitsAreNamedAsTheProblem() async throws {
        // 10 pieces take 2 bytes, the right length; the last 6 bits of byte 2 must be clear.
        let reason = try #require(try await refusalReason(pieceCount: 10, bitfield: [0xff, 0xc1]))
        #expect(reason.contains("bitfield sets some of the 6 spare bits after piece 9 (last byte 0xc1)"), "\(reason)")
    }

    @Test func aWrongLengthNamesBothSizes() async throws {
        let reason = try #require(try await refusalReason(pieceCount: 10, bitfield: [0xff, 0xc0, 0x00]))
        #expect(reason.contains("bitfield of 3 bytes for 10 pieces, which take 2"), "\(reason)")
    }
}
