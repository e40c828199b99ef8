import NIOCore
import TorrentModel

/// The 68-byte BEP 3 handshake: `<19>"BitTorrent protocol"<8 reserved><20 info hash><20 peer id>`.
public struct Handshake: Equatable, Sendable {
    public static let length = 68
    public static let protocolName: [UInt8] = Array("BitTorrent protocol".utf8)

    public var infoHash: InfoHash
    public var peerID: PeerID
    /// Capability bits. Invariant: exactly 8 bytes (a wrong count is a programming error and traps).
    public var reserved: [UInt8] {
        didSet { precondition(reserved.count == 8, "handshake reserved field must be 8 bytes, got \(reserved.count)") }
    }

    public init(infoHash: InfoHash, peerID: PeerID, reserved: [UInt8] = [UInt8](repeating: 0, count: 8)) {
        precondition(reserved.count == 8, "handshake reserved field must be 8 bytes, got \(reserved.count)")
        self.infoHash = infoHash
        self.peerID = peerID
        self.reserved = reserved
    }

    /// BEP 10 extension protocol.
    public var supportsExtensionProtocol: Bool {
        get { reserved[5] & 0x10 != 0 }
        set { setBit(byte: 5, mask: 0x10, newValue) }
    }

    /// BEP 6 Fast extension.
    public var supportsFastExtension: Bool {
        get { reserved[7] & 0x04 != 0 }
        set { setBit(byte: 7, mask: 0x04, newValue) }
    }

    /// BEP 5 DHT (the peer will accept a `port` message).
    public var supportsDHT: Bool {
        get { reserved[7] & 0x01 != 0 }
        set { setBit(byte: 7, mask: 0x01, newValue) }
    }

    /// The handshake we send: extension protocol and Fast extension advertised, no DHT.
    public static func ours(infoHash: InfoHash, peerID: PeerID) -> Handshake {
        var handshake = Handshake(infoHash: infoHash, peerID: peerID)
        handshake.supportsExtensionProtocol = true
        handshake.supportsFastExtension = true
        return handshake
    }

    private mutating func setBit(byte: Int, mask: UInt8, _ on: Bool) {
        if on { reserved[byte] |= mask } else { reserved[byte] &= ~mask }
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.reserveCapacity(minimumWritableBytes: Self.length)
        buffer.writeInteger(UInt8(Self.protocolName.count))
        buffer.writeBytes(Self.protocolName)
        buffer.writeBytes(reserved)
        buffer.writeBytes(infoHash.bytes)
        buffer.writeBytes(peerID.bytes)
    }

    /// Reads a handshake once all 68 bytes are buffered; returns nil (consuming nothing) before that.
    /// Throws as soon as the bytes already present cannot begin a valid handshake, so a peer speaking
    /// another protocol is rejected without waiting for 68 bytes.
    static func read(from buffer: inout ByteBuffer) throws -> Handshake? {
        let start = buffer.readerIndex
        guard let nameLength = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
        guard Int(nameLength) == protocolName.count else {
            throw PeerWireError.handshakeProtocolLength(nameLength)
        }
        let nameAvailable = min(buffer.readableBytes - 1, protocolName.count)
        let namePrefix = buffer.getBytes(at: start + 1, length: nameAvailable) ?? []
        guard namePrefix.elementsEqual(protocolName.prefix(nameAvailable)) else {
            throw PeerWireError.handshakeProtocolName(namePrefix)
        }
        guard buffer.readableBytes >= length else { return nil }
        buffer.moveReaderIndex(forwardBy: 1 + protocolName.count)
        let reserved = buffer.readBytes(length: 8)!
        let infoHash = InfoHash(bytes: buffer.readBytes(length: InfoHash.byteCount)!)!
        let peerID = PeerID(bytes: buffer.readBytes(length: PeerID.byteCount)!)!
        return Handshake(infoHash: infoHash, peerID: peerID, reserved: reserved)
    }
}
