import NIOCore

/// What travels on a peer connection: one handshake first, then messages.
public enum PeerWireFrame: Equatable, Sendable {
    case handshake(Handshake)
    case message(PeerMessage)
    /// Several messages sent as one buffer (outgoing only: a burst of requests costs one allocation and
    /// one trip through the pipeline instead of one per message). The decoder never produces it.
    case messages([PeerMessage])

    /// Writes the frame's complete wire form.
    public func write(to buffer: inout ByteBuffer) {
        switch self {
        case .handshake(let handshake): handshake.write(to: &buffer)
        case .message(let message): message.write(to: &buffer)
        case .messages(let messages): for message in messages { message.write(to: &buffer) }
        }
    }
}
