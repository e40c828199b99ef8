import NIOCore

/// Frames a peer connection's byte stream with `PeerWireDecoder`, copying only the one frame that straddles
/// two reads.
///
/// Why not `ByteToMessageHandler`: it merges every new read into the bytes left over from the last one,
/// so on a download, where some block almost always spans the read boundary, each read is copied once more
/// (and grows or copies-on-write a buffer that earlier blocks still share). Here frames inside a read are
/// decoded in place — a block is a slice of the receive buffer, handed to storage without a copy — and a
/// straddling frame is gathered in a buffer of its own sized to that frame.
///
/// A decoding error is fired down the pipeline once; nothing is decoded after it.
public final class PeerWireFrameHandler: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = PeerWireFrame

    private var decoder: PeerWireDecoder
    /// The start of a frame whose remaining bytes have not arrived. Invariant: nil, or non-empty and
    /// holding less than one whole frame (it is topped up only with the bytes that frame lacks).
    private var carry: ByteBuffer?
    private var failed = false

    public init(_ decoder: PeerWireDecoder) {
        self.decoder = decoder
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var input = unwrapInboundIn(data)
        do {
            if var carried = carry {
                carry = nil
                while input.readableBytes > 0 {
                    let missing = try decoder.nextFrameLength(in: carried) - carried.readableBytes
                    var part = input.readSlice(length: min(missing, input.readableBytes))!
                    carried.writeBuffer(&part)
                    // Also rejects a wrong handshake as soon as its first bytes are in.
                    if let frame = try decoder.decode(buffer: &carried) { context.fireChannelRead(wrapInboundOut(frame)) }
                    if carried.readableBytes == 0 { break }
                }
                if carried.readableBytes > 0 {
                    carry = carried
                    return
                }
            }
            while let frame = try decoder.decode(buffer: &input) {
                context.fireChannelRead(wrapInboundOut(frame))
            }
            if input.readableBytes > 0 {
                let frameLength = try decoder.nextFrameLength(in: input)
                var carried = context.channel.allocator.buffer(capacity: max(frameLength, input.readableBytes))
                carried.writeBuffer(&input)
                carry = carried
            }
        } catch {
            failed = true
            carry = nil
            context.fireErrorCaught(error)
        }
    }
}
