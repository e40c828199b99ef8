import NIOCore

/// What travels on a peer connection: one handshake first, then messages.
public enum PeerWireFrame: Equatable, Sendable {
    case handshake(Handshake)
    case message(PeerMessage)

    /// Writes the frame's complete wire form.
    public func write(to buffer: inout ByteBuffer) {
        switch self {
        case .handshake(let handshake): handshake.write(to: &buffer)
        case .message(let message): message.write(to: &buffer)
        }
    }
}
