/// A peer sent bytes that are not valid peer wire framing. The connection should be dropped.
public enum PeerWireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The handshake's first byte (protocol name length) was not 19.
    case handshakeProtocolLength(UInt8)
    /// The handshake's protocol name was not "BitTorrent protocol" (the bytes seen so far).
    case handshakeProtocolName([UInt8])
    /// A length prefix above the decoder's limit; `id` when the id byte had already arrived.
    case messageTooLong(length: Int, maximum: Int, id: UInt8?)
    /// A fixed-size message whose length prefix is not its size.
    case wrongMessageLength(message: String, length: Int, expected: Int)
    /// A variable-size message too short to hold its fixed fields.
    case messageTooShort(message: String, length: Int, minimum: Int)

    public var description: String {
        switch self {
        case .handshakeProtocolLength(let length):
            return "handshake protocol name length is \(length), expected 19"
        case .handshakeProtocolName(let bytes):
            return "handshake protocol name is \(Self.readable(bytes)), expected \"BitTorrent protocol\""
        case .messageTooLong(let length, let maximum, let id):
            let which = id.map { " (id \($0)\(PeerMessageID(rawValue: $0).map { " '\($0.name)'" } ?? ""))" } ?? ""
            return "message length \(length)\(which) exceeds the maximum of \(maximum)"
        case .wrongMessageLength(let message, let length, let expected):
            return "message '\(message)' has length \(length), expected \(expected)"
        case .messageTooShort(let message, let length, let minimum):
            return "message '\(message)' has length \(length), expected at least \(minimum)"
        }
    }

    private static func readable(_ bytes: [UInt8]) -> String {
        if bytes.allSatisfy({ (0x20..<0x7f).contains($0) }) {
            return "\"" + String(decoding: bytes, as: UTF8.self) + "\""
        }
        return "0x" + bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
