import NIOCore
import PeerWire
import TorrentModel

enum Fixtures {
    static let infoHash = InfoHash(bytes: Array(0..<20))!
    static let peerID = PeerID(bytes: Array("-BW0001-abcdefghijkl".utf8))!

    static func ascii(_ text: String) -> [UInt8] { Array(text.utf8) }

    static func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    /// The complete wire bytes of `frames`, encoded with the public encoder.
    static func wire(_ frames: [PeerWireFrame]) throws -> [UInt8] {
        var out = ByteBuffer()
        for frame in frames { try PeerWireEncoder().encode(data: frame, out: &out) }
        return Array(out.readableBytesView)
    }

    static func wire(_ messages: [PeerMessage]) throws -> [UInt8] {
        try wire(messages.map(PeerWireFrame.message))
    }

    /// Feeds `chunks` one after another to a fresh decoder and collects every frame it produces.
    static func decode(
        _ chunks: [[UInt8]], expectingHandshake: Bool = false,
        maxMessageLength: Int = PeerWireDecoder.defaultMaxMessageLength
    ) throws -> [PeerWireFrame] {
        let processor = NIOSingleStepByteToMessageProcessor(
            PeerWireDecoder(maxMessageLength: maxMessageLength, expectingHandshake: expectingHandshake))
        var frames: [PeerWireFrame] = []
        for chunk in chunks {
            try processor.process(buffer: ByteBuffer(bytes: chunk)) { frames.append($0) }
        }
        return frames
    }

    /// Decodes messages (no handshake) from one contiguous buffer.
    static func decodeMessages(_ bytes: [UInt8]) throws -> [PeerMessage] {
        try decode([bytes]).map { frame in
            guard case .message(let message) = frame else { fatalError("unexpected handshake frame") }
            return message
        }
    }

    /// A 4-byte big-endian length prefix.
    static func prefix(_ length: Int) -> [UInt8] {
        withUnsafeBytes(of: UInt32(length).bigEndian, Array.init)
    }

    /// One of every message kind, with distinctive field values.
    static let everyMessage: [PeerMessage] = [
        .keepAlive, .choke, .unchoke, .interested, .notInterested,
        .have(piece: 0xDEAD_BEEF),
        .bitfield([0b1010_0000, 0xFF, 0x01]),
        .request(BlockRequest(piece: 7, begin: 16384, length: 16384)),
        .piece(piece: 3, begin: 32768, block: ByteBuffer(bytes: Array(repeating: 0xAB, count: 100))),
        .cancel(BlockRequest(piece: 1, begin: 2, length: 3)),
        .port(6881),
        .suggestPiece(42), .haveAll, .haveNone,
        .rejectRequest(BlockRequest(piece: 9, begin: 0, length: 16384)),
        .allowedFast(1234),
        .extended(id: 0, payload: ByteBuffer(bytes: Array("d1:md6:ut_pexi2eee".utf8))),
        .extended(id: 3, payload: ByteBuffer()),
    ]
}
