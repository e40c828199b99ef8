import NIOCore
import NIOEmbedded
import PeerWire
import Testing

@Suite("Frame handler: frames in place, copies only what straddles reads")
struct PeerWireFrameHandlerTests {
    static let handshake = Handshake.ours(infoHash: Fixtures.infoHash, peerID: Fixtures.peerID)
    /// A handshake, every message kind, two full 16 KiB blocks and an unknown message id (skipped).
    static func stream() throws -> (bytes: [UInt8], frames: [PeerWireFrame]) {
        let block = ByteBuffer(bytes: (0..<16384).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let frames = [PeerWireFrame.handshake(handshake)] + (Fixtures.everyMessage + [
            .piece(piece: 9, begin: 0, block: block), .piece(piece: 9, begin: 16384, block: block),
        ]).map(PeerWireFrame.message)
        let unknown = Fixtures.prefix(3) + [99, 1, 2]
        return (try Fixtures.wire(Array(frames.prefix(3))) + unknown + Fixtures.wire(Array(frames.dropFirst(3))), frames)
    }

    private func decode(_ chunks: [[UInt8]]) throws -> [PeerWireFrame] {
        let channel = EmbeddedChannel(handler: PeerWireFrameHandler(PeerWireDecoder()))
        var frames: [PeerWireFrame] = []
        for chunk in chunks {
            try channel.writeInbound(ByteBuffer(bytes: chunk))
            while let frame = try channel.readInbound(as: PeerWireFrame.self) { frames.append(frame) }
        }
        _ = try channel.finish()
        return frames
    }

    @Test func everySplitPointDecodesTheSameFrames() throws {
        let (bytes, expected) = try Self.stream()
        #expect(try decode([bytes]) == expected)
        for cut in stride(from: 1, to: bytes.count, by: 1) where cut < 400 || cut % 97 == 0 || bytes.count - cut < 40 {
            #expect(try decode([Array(bytes[..<cut]), Array(bytes[cut...])]) == expected, "split at \(cut)")
        }
    }

    @Test func oneByteAtATimeAndRandomChunksDecodeTheSameFrames() throws {
        let (bytes, expected) = try Self.stream()
        #expect(try decode(bytes.prefix(600).map { [$0] } + [Array(bytes.dropFirst(600))]) == expected)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            var chunks: [[UInt8]] = []
            var at = 0
            while at < bytes.count {
                let end = min(bytes.count, at + Int.random(in: 1...5000, using: &generator))
                chunks.append(Array(bytes[at..<end]))
                at = end
            }
            #expect(try decode(chunks) == expected)
        }
    }

    @Test func aBlockInsideOneReadIsASliceOfThatReadNotACopy() throws {
        let channel = EmbeddedChannel(handler: PeerWireFrameHandler(PeerWireDecoder(expectingHandshake: false)))
        let input = ByteBuffer(bytes: try Fixtures.wire([.piece(piece: 1, begin: 0, block: ByteBuffer(repeating: 5, count: 16384)), .unchoke]))
        try channel.writeInbound(input)
        let frame = try #require(try channel.readInbound(as: PeerWireFrame.self))
        guard case .message(.piece(_, _, let block)) = frame else { Issue.record("expected a piece, got \(frame)"); return }
        let inputStart = input.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let blockStart = block.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(blockStart == inputStart + 13, "the block points into the receive buffer, past its 13-byte header")
        #expect(try channel.readInbound(as: PeerWireFrame.self) == .message(.unchoke))
        _ = try channel.finish()
    }

    @Test func anOversizedPrefixSplitAcrossReadsIsReportedOnceAndDecodingStops() throws {
        let channel = EmbeddedChannel(handler: PeerWireFrameHandler(PeerWireDecoder(expectingHandshake: false)))
        try channel.writeInbound(ByteBuffer(bytes: try Fixtures.wire([.choke]) + [0, 0x10]))
        #expect(try channel.readInbound(as: PeerWireFrame.self) == .message(.choke))
        let limit = PeerWireDecoder.defaultMaxMessageLength
        // The prefix is complete before the id arrives, so the error cannot name the message.
        #expect(throws: PeerWireError.messageTooLong(length: 0x10_0000, maximum: limit, id: nil)) {
            try channel.writeInbound(ByteBuffer(bytes: [0, 0, 7]))
        }
        try channel.writeInbound(ByteBuffer(bytes: try Fixtures.wire([.unchoke])))
        #expect(try channel.readInbound(as: PeerWireFrame.self) == nil, "nothing is decoded after an error")
        _ = try? channel.finish()
    }

    @Test func aForeignProtocolIsRejectedBeforeAWholeHandshakeArrives() throws {
        let channel = EmbeddedChannel(handler: PeerWireFrameHandler(PeerWireDecoder()))
        try channel.writeInbound(ByteBuffer(bytes: [19] + Array("BitTorrent".utf8)))
        #expect(throws: PeerWireError.handshakeProtocolName(Array("BitTorrent proX".utf8))) {
            try channel.writeInbound(ByteBuffer(bytes: Array(" proX".utf8)))
        }
        _ = try? channel.finish()
    }
}
