import NIOCore

/// Splits a peer connection's byte stream into frames: the 68-byte handshake (unless the caller already
/// consumed it), then length-prefixed messages.
///
/// The handshake is its own frame so the engine can look at the info hash of an incoming connection
/// before answering. Messages with unknown ids are skipped for forward compatibility. A length prefix
/// above `maxMessageLength`, a fixed-size message of the wrong size, or a malformed handshake throws a
/// `PeerWireError`; the decoder must not be used after that.
public struct PeerWireDecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    public typealias InboundOut = PeerWireFrame

    /// A `piece` message carrying a 16 KiB block: id, index, begin, block.
    public static let largestBlockMessageLength = 1 + 8 + 16 * 1024
    /// Room for a `ut_metadata` data message (16 KiB of metadata behind a small bencoded dictionary)
    /// and for extension handshakes and PEX messages, all of which exceed a block message slightly.
    public static let defaultMaxMessageLength = largestBlockMessageLength + 1024

    /// The limit that also admits the bitfield of a torrent with `pieceCount` pieces.
    public static func maxMessageLength(pieceCount: Int) -> Int {
        max(1 + (pieceCount + 7) / 8, defaultMaxMessageLength)
    }

    /// Largest accepted length prefix (id + payload, excluding the 4 prefix bytes themselves).
    public let maxMessageLength: Int
    /// True until the handshake has been decoded.
    public private(set) var awaitingHandshake: Bool

    /// - Parameters:
    ///   - maxMessageLength: at least `largestBlockMessageLength`; use `maxMessageLength(pieceCount:)`
    ///     once the torrent's piece count is known so a full bitfield fits.
    ///   - expectingHandshake: false when the handshake was already read by other means.
    public init(maxMessageLength: Int = PeerWireDecoder.defaultMaxMessageLength, expectingHandshake: Bool = true) {
        precondition(maxMessageLength >= Self.largestBlockMessageLength,
                     "maxMessageLength \(maxMessageLength) cannot hold a 16 KiB block message")
        self.maxMessageLength = maxMessageLength
        self.awaitingHandshake = expectingHandshake
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> PeerWireFrame? {
        if awaitingHandshake {
            guard let handshake = try Handshake.read(from: &buffer) else { return nil }
            awaitingHandshake = false
            return .handshake(handshake)
        }
        // Loop so that a skipped unknown message does not leave complete messages behind it waiting
        // for more input: returning nil means "need more bytes".
        while true {
            let start = buffer.readerIndex
            guard let prefix = buffer.getInteger(at: start, as: UInt32.self) else { return nil }
            let length = Int(prefix)
            guard length <= maxMessageLength else {
                throw PeerWireError.messageTooLong(
                    length: length, maximum: maxMessageLength, id: buffer.getInteger(at: start + 4, as: UInt8.self))
            }
            guard buffer.readableBytes >= 4 + length else { return nil }
            buffer.moveReaderIndex(forwardBy: 4)
            if length == 0 { return .message(.keepAlive) }
            var body = buffer.readSlice(length: length)!
            let rawID = body.readInteger(as: UInt8.self)!
            guard let id = PeerMessageID(rawValue: rawID) else { continue }
            return .message(try Self.parse(id: id, length: length, body: &body))
        }
    }

    /// Bytes the frame at the front of `buffer` spans in total — or, while that is not known yet (a length
    /// prefix still incomplete), the bytes needed to learn it. Throws for a prefix above the limit.
    public func nextFrameLength(in buffer: ByteBuffer) throws -> Int {
        if awaitingHandshake { return Handshake.length }
        guard let prefix = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return 4 }
        guard Int(prefix) <= maxMessageLength else {
            throw PeerWireError.messageTooLong(length: Int(prefix), maximum: maxMessageLength,
                                               id: buffer.getInteger(at: buffer.readerIndex + 4, as: UInt8.self))
        }
        return 4 + Int(prefix)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> PeerWireFrame? {
        // Complete frames still count; a partial one left at EOF is reported by ByteToMessageHandler
        // as leftover data.
        try decode(buffer: &buffer)
    }

    /// `body` holds everything after the id byte; `length` is the whole length prefix.
    private static func parse(id: PeerMessageID, length: Int, body: inout ByteBuffer) throws -> PeerMessage {
        if let fixed = id.fixedLength, length != fixed {
            throw PeerWireError.wrongMessageLength(message: id.name, length: length, expected: fixed)
        }
        if length < id.minimumLength {
            throw PeerWireError.messageTooShort(message: id.name, length: length, minimum: id.minimumLength)
        }
        // Lengths were checked above, so the reads below cannot run short.
        switch id {
        case .choke: return .choke
        case .unchoke: return .unchoke
        case .interested: return .interested
        case .notInterested: return .notInterested
        case .haveAll: return .haveAll
        case .haveNone: return .haveNone
        case .have: return .have(piece: body.readInteger()!)
        case .suggestPiece: return .suggestPiece(body.readInteger()!)
        case .allowedFast: return .allowedFast(body.readInteger()!)
        case .request: return .request(readBlockRequest(&body))
        case .cancel: return .cancel(readBlockRequest(&body))
        case .rejectRequest: return .rejectRequest(readBlockRequest(&body))
        case .port: return .port(body.readInteger()!)
        case .bitfield: return .bitfield(body.readBytes(length: body.readableBytes)!)
        case .piece:
            let (piece, begin) = body.readMultipleIntegers(as: (UInt32, UInt32).self)!
            return .piece(piece: piece, begin: begin, block: body)
        case .extended:
            let extensionID = body.readInteger(as: UInt8.self)!
            return .extended(id: extensionID, payload: body)
        }
    }

    private static func readBlockRequest(_ body: inout ByteBuffer) -> BlockRequest {
        let (piece, begin, length) = body.readMultipleIntegers(as: (UInt32, UInt32, UInt32).self)!
        return BlockRequest(piece: piece, begin: begin, length: length)
    }
}
