import NIOCore
import NIOEmbedded
import PeerWire
import Testing

@Suite struct PeerMessageCodecTests {
    @Test(arguments: Fixtures.everyMessage)
    func everyMessageRoundTrips(_ message: PeerMessage) throws {
        let bytes = try Fixtures.wire([message])
        #expect(bytes.count == 4 + message.lengthPrefix)
        #expect(try Fixtures.decodeMessages(bytes) == [message])
    }

    @Test func exactWireBytesOfFixedMessages() throws {
        #expect(try Fixtures.wire([.keepAlive]) == [0, 0, 0, 0])
        #expect(try Fixtures.wire([.interested]) == [0, 0, 0, 1, 2])
        #expect(try Fixtures.wire([.have(piece: 0x0102_0304)]) == [0, 0, 0, 5, 4, 1, 2, 3, 4])
        #expect(try Fixtures.wire([.request(BlockRequest(piece: 1, begin: 0x4000, length: 0x4000))])
            == [0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0])
        #expect(try Fixtures.wire([.port(0x1AE1)]) == [0, 0, 0, 3, 9, 0x1A, 0xE1])
        #expect(try Fixtures.wire([.haveNone]) == [0, 0, 0, 1, 15])
        #expect(try Fixtures.wire([.allowedFast(2)]) == [0, 0, 0, 5, 17, 0, 0, 0, 2])
        #expect(try Fixtures.wire([.piece(piece: 1, begin: 2, block: ByteBuffer(bytes: [9, 9]))])
            == [0, 0, 0, 11, 7, 0, 0, 0, 1, 0, 0, 0, 2, 9, 9])
        #expect(try Fixtures.wire([.extended(id: 2, payload: ByteBuffer(bytes: [0x64, 0x65]))])
            == [0, 0, 0, 4, 20, 2, 0x64, 0x65])
    }

    @Test func allMessagesInOneBufferDecodeInOrder() throws {
        let bytes = try Fixtures.wire(Fixtures.everyMessage)
        #expect(try Fixtures.decodeMessages(bytes) == Fixtures.everyMessage)
    }

    @Test func byteByByteInputDecodesTheSameMessages() throws {
        let bytes = try Fixtures.wire(Fixtures.everyMessage)
        let frames = try Fixtures.decode(bytes.map { [$0] })
        #expect(frames == Fixtures.everyMessage.map(PeerWireFrame.message))
    }

    @Test func unevenlyFragmentedInputDecodesTheSameMessages() throws {
        let bytes = try Fixtures.wire(Fixtures.everyMessage)
        for chunkSize in [2, 3, 7, 13, 64] {
            let chunks = stride(from: 0, to: bytes.count, by: chunkSize).map {
                Array(bytes[$0..<min($0 + chunkSize, bytes.count)])
            }
            #expect(try Fixtures.decode(chunks) == Fixtures.everyMessage.map(PeerWireFrame.message))
        }
    }

    @Test func pieceBlockIsAZeroCopySliceOfTheInput() throws {
        let block = [UInt8](repeating: 0x5A, count: 16 * 1024)
        var input = ByteBuffer(bytes: try Fixtures.wire([.piece(piece: 1, begin: 0, block: ByteBuffer(bytes: block))]))
        var decoder = PeerWireDecoder(expectingHandshake: false)
        let frame = try #require(try decoder.decode(buffer: &input))
        guard case .message(.piece(let piece, let begin, let decodedBlock)) = frame else {
            Issue.record("expected a piece message, got \(frame)")
            return
        }
        #expect(piece == 1 && begin == 0)
        #expect(Array(decodedBlock.readableBytesView) == block)
        let inputBase = input.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let blockBase = decodedBlock.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        // The input was fully consumed, so its reader index sits right after the block.
        #expect(inputBase == blockBase + UInt(block.count))
    }

    @Test func unknownMessageIDsAreSkipped() throws {
        // id 21 with a 3-byte payload, then id 99 with none, between two known messages.
        let bytes = try Fixtures.wire([.choke]) + [0, 0, 0, 4, 21, 1, 2, 3] + [0, 0, 0, 1, 99]
            + (try Fixtures.wire([.have(piece: 5)]))
        #expect(try Fixtures.decodeMessages(bytes) == [.choke, .have(piece: 5)])
        // Fragmented: the skip must not lose track of the stream.
        #expect(try Fixtures.decode(bytes.map { [$0] }) == [.message(.choke), .message(.have(piece: 5))])
    }

    @Test func oversizedLengthIsRejectedAsSoonAsThePrefixArrives() {
        let maximum = PeerWireDecoder.defaultMaxMessageLength
        #expect(throws: PeerWireError.messageTooLong(length: maximum + 1, maximum: maximum, id: nil)) {
            _ = try Fixtures.decode([Fixtures.prefix(maximum + 1)])
        }
        #expect(throws: PeerWireError.messageTooLong(length: 1 << 30, maximum: maximum, id: 7)) {
            _ = try Fixtures.decode([Fixtures.prefix(1 << 30) + [7]])
        }
        let error = PeerWireError.messageTooLong(length: 1 << 30, maximum: maximum, id: 7)
        #expect(error.description == "message length 1073741824 (id 7 'piece') exceeds the maximum of \(maximum)")
    }

    @Test func largestBlockFitsTheDefaultLimitAndLargerBitfieldsNeedTheirOwn() throws {
        let block = ByteBuffer(repeating: 1, count: 16 * 1024)
        let piece = PeerMessage.piece(piece: 0, begin: 0, block: block)
        #expect(try Fixtures.decodeMessages(try Fixtures.wire([piece])) == [piece])

        let pieceCount = 400_000
        let bitfield = PeerMessage.bitfield([UInt8](repeating: 0xFF, count: pieceCount / 8))
        let bytes = try Fixtures.wire([bitfield])
        #expect(throws: PeerWireError.self) { _ = try Fixtures.decode([bytes]) }
        let limit = PeerWireDecoder.maxMessageLength(pieceCount: pieceCount)
        #expect(limit == pieceCount / 8 + 1)
        #expect(try Fixtures.decode([bytes], maxMessageLength: limit) == [.message(bitfield)])
        #expect(PeerWireDecoder.maxMessageLength(pieceCount: 100) == PeerWireDecoder.defaultMaxMessageLength)
    }

    @Test(arguments: [
        (PeerMessageID.have, 3, 5), (.have, 6, 5), (.choke, 2, 1), (.haveAll, 5, 1),
        (.request, 12, 13), (.cancel, 14, 13), (.rejectRequest, 9, 13), (.port, 5, 3),
        (.suggestPiece, 1, 5), (.allowedFast, 9, 5),
    ])
    func fixedSizeMessagesWithTheWrongLengthAreRejected(id: PeerMessageID, length: Int, expected: Int) {
        let bytes = Fixtures.prefix(length) + [id.rawValue] + [UInt8](repeating: 0, count: length - 1)
        let error = PeerWireError.wrongMessageLength(message: id.name, length: length, expected: expected)
        #expect(throws: error) { _ = try Fixtures.decodeMessages(bytes) }
    }

    @Test func wrongLengthErrorNamesTheMessage() {
        let error = PeerWireError.wrongMessageLength(message: "have", length: 3, expected: 5)
        #expect(error.description == "message 'have' has length 3, expected 5")
    }

    @Test func variableSizeMessagesShorterThanTheirFixedFieldsAreRejected() {
        #expect(throws: PeerWireError.messageTooShort(message: "piece", length: 8, minimum: 9)) {
            _ = try Fixtures.decodeMessages(Fixtures.prefix(8) + [7] + [UInt8](repeating: 0, count: 7))
        }
        #expect(throws: PeerWireError.messageTooShort(message: "extended", length: 1, minimum: 2)) {
            _ = try Fixtures.decodeMessages(Fixtures.prefix(1) + [20])
        }
    }

    @Test func partialMessageAtEndOfStreamIsLeftOverNotDecoded() throws {
        let processor = NIOSingleStepByteToMessageProcessor(PeerWireDecoder(expectingHandshake: false))
        var frames: [PeerWireFrame] = []
        try processor.process(buffer: ByteBuffer(bytes: try Fixtures.wire([.unchoke]) + [0, 0, 0, 5, 4, 0])) {
            frames.append($0)
        }
        try processor.finishProcessing(seenEOF: true) { frames.append($0) }
        #expect(frames == [.message(.unchoke)])
        #expect(processor.unprocessedBytes == 6)
    }

    @Test func channelPipelineDecodesAndEncodes() throws {
        let sender = EmbeddedChannel()
        try sender.pipeline.syncOperations.addHandler(MessageToByteHandler(PeerWireEncoder()))
        let receiver = EmbeddedChannel()
        try receiver.pipeline.syncOperations.addHandler(ByteToMessageHandler(PeerWireDecoder()))

        let handshake = Handshake.ours(infoHash: Fixtures.infoHash, peerID: Fixtures.peerID)
        let frames = [PeerWireFrame.handshake(handshake)] + Fixtures.everyMessage.map(PeerWireFrame.message)
        for frame in frames { try sender.writeOutbound(frame) }
        while let bytes = try sender.readOutbound(as: ByteBuffer.self) { try receiver.writeInbound(bytes) }
        var received: [PeerWireFrame] = []
        while let frame = try receiver.readInbound(as: PeerWireFrame.self) { received.append(frame) }
        #expect(received == frames)
        #expect(try sender.finish().isClean)
        #expect(try receiver.finish().isClean)
    }

    @Test func channelPipelineReportsMalformedInput() throws {
        let receiver = EmbeddedChannel()
        try receiver.pipeline.syncOperations.addHandler(ByteToMessageHandler(PeerWireDecoder(expectingHandshake: false)))
        #expect(throws: PeerWireError.wrongMessageLength(message: "have", length: 3, expected: 5)) {
            try receiver.writeInbound(ByteBuffer(bytes: [0, 0, 0, 3, 4, 0, 0]))
        }
        _ = try? receiver.finish()
    }

    @Test func encodingHandlerWritesThePieceBlockUncopied() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(PeerWireEncodingHandler())
        let block = ByteBuffer(repeating: 0x77, count: 16 * 1024)
        try channel.writeOutbound(PeerWireFrame.message(.piece(piece: 4, begin: 16384, block: block)))
        try channel.writeOutbound(PeerWireFrame.message(.have(piece: 4)))

        let header = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(Array(header.readableBytesView) == Fixtures.prefix(16384 + 9) + [7, 0, 0, 0, 4, 0, 0, 0x40, 0])
        let written = try #require(try channel.readOutbound(as: ByteBuffer.self))
        let writtenBase = written.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let blockBase = block.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(writtenBase == blockBase)
        let have = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(Array(have.readableBytesView) == [0, 0, 0, 5, 4, 0, 0, 0, 4])
        #expect(try channel.finish().isClean)
    }

    @Test func aBatchIsOneBufferHoldingEachMessageInOrder() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(PeerWireEncodingHandler())
        let requests = (0..<16).map { PeerMessage.request(BlockRequest(piece: 3, begin: UInt32($0) * 16384, length: 16384)) }
        try channel.writeOutbound(PeerWireFrame.messages(requests))
        let buffer = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "one buffer for the whole batch")
        #expect(buffer.readableBytes == 16 * 17)
        #expect(try Fixtures.decodeMessages(Array(buffer.readableBytesView)) == requests)
        #expect(try channel.finish().isClean)
    }

    @Test func encodingHandlerOutputDecodesToTheSameFrames() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(PeerWireEncodingHandler())
        let frames = Fixtures.everyMessage.map(PeerWireFrame.message)
        for frame in frames { try channel.writeOutbound(frame) }
        var bytes: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { bytes += buffer.readableBytesView }
        #expect(try Fixtures.decode([bytes]) == frames)
        #expect(bytes == (try Fixtures.wire(frames)))
    }
}
