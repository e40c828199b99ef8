import NIOCore

/// One length-prefixed peer wire message (BEP 3, Fast extension BEP 6, extension protocol BEP 10).
public enum PeerMessage: Equatable, Sendable {
    case keepAlive, choke, unchoke, interested, notInterested
    case have(piece: UInt32)
    case bitfield([UInt8])
    case request(BlockRequest)
    /// `block` is a slice of the receive buffer when decoded: no copy is made.
    case piece(piece: UInt32, begin: UInt32, block: ByteBuffer)
    case cancel(BlockRequest)
    /// The sender's DHT port (BEP 5).
    case port(UInt16)
    case suggestPiece(UInt32), haveAll, haveNone, rejectRequest(BlockRequest), allowedFast(UInt32)
    /// BEP 10: id 0 is the extension handshake, others are the ids we assigned in ours.
    case extended(id: UInt8, payload: ByteBuffer)

    /// The message id byte; nil for keep-alive, which has no id.
    public var id: PeerMessageID? {
        switch self {
        case .keepAlive: return nil
        case .choke: return .choke
        case .unchoke: return .unchoke
        case .interested: return .interested
        case .notInterested: return .notInterested
        case .have: return .have
        case .bitfield: return .bitfield
        case .request: return .request
        case .piece: return .piece
        case .cancel: return .cancel
        case .port: return .port
        case .suggestPiece: return .suggestPiece
        case .haveAll: return .haveAll
        case .haveNone: return .haveNone
        case .rejectRequest: return .rejectRequest
        case .allowedFast: return .allowedFast
        case .extended: return .extended
        }
    }

    /// Short name for logs and errors.
    public var name: String { id?.name ?? "keep-alive" }

    /// The value of the 4-byte length prefix: id byte plus payload.
    public var lengthPrefix: Int {
        switch self {
        case .keepAlive: return 0
        case .bitfield(let bits): return 1 + bits.count
        case .piece(_, _, let block): return 1 + 8 + block.readableBytes
        case .extended(_, let payload): return 1 + 1 + payload.readableBytes
        default: return id!.fixedLength!
        }
    }

    /// Writes the complete message, length prefix included.
    public func write(to buffer: inout ByteBuffer) {
        if case .piece(_, _, let block) = self {
            buffer.reserveCapacity(minimumWritableBytes: 13 + block.readableBytes)
            writeHeader(to: &buffer)
            buffer.writeImmutableBuffer(block)
        } else {
            writeHeader(to: &buffer)
            writeTail(to: &buffer)
        }
    }

    /// Writes the length prefix, the id, and every fixed field, but not a piece's block, which callers
    /// sending zero-copy pass on as a buffer of its own. For other messages this is the whole message
    /// except variable-length tails (bitfield bytes, extension payload).
    func writeHeader(to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(lengthPrefix))
        guard let id else { return }
        buffer.writeInteger(id.rawValue)
        switch self {
        case .have(let piece), .suggestPiece(let piece), .allowedFast(let piece):
            buffer.writeInteger(piece)
        case .request(let block), .cancel(let block), .rejectRequest(let block):
            buffer.writeMultipleIntegers(block.piece, block.begin, block.length)
        case .piece(let piece, let begin, _):
            buffer.writeMultipleIntegers(piece, begin)
        case .port(let port):
            buffer.writeInteger(port)
        case .extended(let extensionID, _):
            buffer.writeInteger(extensionID)
        case .keepAlive, .choke, .unchoke, .interested, .notInterested, .haveAll, .haveNone, .bitfield:
            break
        }
    }

    private func writeTail(to buffer: inout ByteBuffer) {
        switch self {
        case .bitfield(let bits): buffer.writeBytes(bits)
        case .extended(_, let payload): buffer.writeImmutableBuffer(payload)
        default: break
        }
    }
}

/// Message id bytes on the wire.
public enum PeerMessageID: UInt8, Sendable, CaseIterable {
    case choke = 0, unchoke = 1, interested = 2, notInterested = 3, have = 4, bitfield = 5
    case request = 6, piece = 7, cancel = 8, port = 9
    case suggestPiece = 13, haveAll = 14, haveNone = 15, rejectRequest = 16, allowedFast = 17
    case extended = 20

    public var name: String {
        switch self {
        case .choke: return "choke"
        case .unchoke: return "unchoke"
        case .interested: return "interested"
        case .notInterested: return "not interested"
        case .have: return "have"
        case .bitfield: return "bitfield"
        case .request: return "request"
        case .piece: return "piece"
        case .cancel: return "cancel"
        case .port: return "port"
        case .suggestPiece: return "suggest piece"
        case .haveAll: return "have all"
        case .haveNone: return "have none"
        case .rejectRequest: return "reject request"
        case .allowedFast: return "allowed fast"
        case .extended: return "extended"
        }
    }

    /// The exact length prefix of fixed-size messages; nil for variable-size ones.
    public var fixedLength: Int? {
        switch self {
        case .choke, .unchoke, .interested, .notInterested, .haveAll, .haveNone: return 1
        case .have, .suggestPiece, .allowedFast: return 5
        case .request, .cancel, .rejectRequest: return 13
        case .port: return 3
        case .bitfield, .piece, .extended: return nil
        }
    }

    /// The smallest length prefix of variable-size messages (the id and fixed fields).
    var minimumLength: Int {
        switch self {
        case .piece: return 9
        case .extended: return 2
        case .bitfield: return 1
        default: return fixedLength!
        }
    }
}
