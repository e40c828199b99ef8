import NIOCore

/// Encodes frames into one buffer per frame. Simple, but a `piece` block is copied into the output;
/// `PeerWireEncodingHandler` avoids that copy.
public struct PeerWireEncoder: MessageToByteEncoder, Sendable {
    public typealias OutboundIn = PeerWireFrame

    public init() {}

    public func encode(data: PeerWireFrame, out: inout ByteBuffer) throws {
        data.write(to: &out)
    }
}

/// Outbound handler that encodes frames like `PeerWireEncoder`, except that a `piece` message is written
/// as two buffers: a 13-byte header, then the block buffer itself, untouched. The transport gathers both
/// into one vectored write, so blocks read from disk reach the socket without being copied here.
public final class PeerWireEncodingHandler: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = PeerWireFrame
    public typealias OutboundOut = ByteBuffer

    public init() {}

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        if case .message(let message) = frame, case .piece(_, _, let block) = message {
            var header = context.channel.allocator.buffer(capacity: 13)
            message.writeHeader(to: &header)
            // The block's write carries the promise: if the header write fails the channel fails
            // every later pending write too, so the promise still learns of it.
            context.write(wrapOutboundOut(header), promise: nil)
            context.write(wrapOutboundOut(block), promise: promise)
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: Self.sizeHint(frame))
        frame.write(to: &buffer)
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    private static func sizeHint(_ frame: PeerWireFrame) -> Int {
        switch frame {
        case .handshake: return Handshake.length
        case .message(let message): return 4 + message.lengthPrefix
        case .messages(let messages): return messages.reduce(0) { $0 + 4 + $1.lengthPrefix }
        }
    }
}
