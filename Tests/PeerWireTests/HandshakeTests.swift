import NIOCore
import PeerWire
import Testing
import TorrentModel

@Suite struct HandshakeTests {
    @Test func oursSetsExtensionAndFastBitsOnly() {
        let handshake = Handshake.ours(infoHash: Fixtures.infoHash, peerID: Fixtures.peerID)
        #expect(handshake.reserved == [0, 0, 0, 0, 0, 0x10, 0, 0x04])
        #expect(handshake.supportsExtensionProtocol)
        #expect(handshake.supportsFastExtension)
        #expect(!handshake.supportsDHT)
    }

    @Test func capabilityBitsReadAndWriteTheReservedBytes() {
        var handshake = Handshake(infoHash: Fixtures.infoHash, peerID: Fixtures.peerID, reserved: [0xFF, 0, 0, 0, 0, 0, 0, 0])
        handshake.supportsDHT = true
        handshake.supportsExtensionProtocol = true
        #expect(handshake.reserved == [0xFF, 0, 0, 0, 0, 0x10, 0, 0x01])
        handshake.supportsExtensionProtocol = false
        #expect(handshake.reserved == [0xFF, 0, 0, 0, 0, 0, 0, 0x01])
    }

    @Test func wireLayoutIsBEP3() throws {
        let handshake = Handshake.ours(infoHash: Fixtures.infoHash, peerID: Fixtures.peerID)
        let bytes = try Fixtures.wire([.handshake(handshake)])
        #expect(bytes.count == Handshake.length)
        #expect(bytes[0] == 19)
        #expect(Array(bytes[1..<20]) == Fixtures.ascii("BitTorrent protocol"))
        #expect(Array(bytes[20..<28]) == handshake.reserved)
        #expect(Array(bytes[28..<48]) == Fixtures.infoHash.bytes)
        #expect(Array(bytes[48..<68]) == Fixtures.peerID.bytes)
    }

    @Test func handshakeThenMessagesDecodeAsSeparateFrames() throws {
        let handshake = Handshake.ours(infoHash: Fixtures.infoHash, peerID: Fixtures.peerID)
        let bytes = try Fixtures.wire([.handshake(handshake), .message(.haveAll), .message(.interested)])
        let frames = try Fixtures.decode([bytes], expectingHandshake: true)
        #expect(frames == [.handshake(handshake), .message(.haveAll), .message(.interested)])
    }

    @Test func handshakeArrivingByteByByteDecodesOnceComplete() throws {
        let handshake = Handshake(infoHash: Fixtures.infoHash, peerID: Fixtures.peerID, reserved: [1, 2, 3, 4, 5, 6, 7, 8])
        let bytes = try Fixtures.wire([.handshake(handshake), .message(.unchoke)])
        let processor = NIOSingleStepByteToMessageProcessor(PeerWireDecoder())
        var frames: [PeerWireFrame] = []
        for (index, byte) in bytes.enumerated() {
            try processor.process(buffer: ByteBuffer(bytes: [byte])) { frames.append($0) }
            if index < Handshake.length - 1 { #expect(frames.isEmpty) }
            if index == Handshake.length - 1 { #expect(frames == [.handshake(handshake)]) }
        }
        #expect(frames == [.handshake(handshake), .message(.unchoke)])
    }

    @Test func wrongProtocolLengthIsRejectedFromTheFirstByte() {
        #expect(throws: PeerWireError.handshakeProtocolLength(18)) {
            _ = try Fixtures.decode([[18]], expectingHandshake: true)
        }
        let error = PeerWireError.handshakeProtocolLength(18)
        #expect(error.description == "handshake protocol name length is 18, expected 19")
    }

    @Test func wrongProtocolNameIsRejectedBeforeTheWholeHandshakeArrives() {
        let bytes: [UInt8] = [19] + Fixtures.ascii("BitTorrent protocoX")
        #expect(throws: PeerWireError.handshakeProtocolName(Fixtures.ascii("BitTorrent protocoX"))) {
            _ = try Fixtures.decode([bytes], expectingHandshake: true)
        }
        #expect(throws: PeerWireError.handshakeProtocolName(Fixtures.ascii("BitTorrent pX"))) {
            _ = try Fixtures.decode([[19] + Fixtures.ascii("BitTorrent pX")], expectingHandshake: true)
        }
        #expect(PeerWireError.handshakeProtocolName(Fixtures.ascii("Bit")).description
            == "handshake protocol name is \"Bit\", expected \"BitTorrent protocol\"")
    }

    @Test func httpRequestIsNotAHandshake() {
        #expect(throws: PeerWireError.handshakeProtocolLength(UInt8(ascii: "G"))) {
            _ = try Fixtures.decode([Fixtures.ascii("GET / HTTP/1.1\r\n")], expectingHandshake: true)
        }
    }

    @Test func decoderStartedAfterTheHandshakeReadsMessagesImmediately() throws {
        let frames = try Fixtures.decode([try Fixtures.wire([.choke])], expectingHandshake: false)
        #expect(frames == [.message(.choke)])
    }
}
