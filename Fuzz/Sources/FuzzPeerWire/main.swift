import FuzzSupport
import NIOCore
import NIOEmbedded
import PeerWire

/// The peer wire byte stream (BEP 3, 6, 10): handshake, then length-prefixed messages.
///
/// Input: one flags byte (bit 0: a handshake comes first; bit 1: the larger limit that admits a big
/// bitfield), two bytes choosing the sizes of the reads the stream arrives in, then the stream.
/// Properties: `PeerWireFrameHandler`, fed the stream in reads of those sizes, yields exactly the frames and
/// the error that `PeerWireDecoder` yields on the stream in one piece (the handler's carry of a frame that
/// straddles two reads changes nothing); and every decoded frame, written back, decodes to itself.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPeerWire(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let flags = input.byte()
    let readSizes = [Int(input.byte()) + 1, Int(input.byte()) + 1]
    let stream = input.rest
    let expectingHandshake = flags & 1 != 0
    let maxMessageLength = flags & 2 != 0
        ? PeerWireDecoder.maxMessageLength(pieceCount: 1_000_000) : PeerWireDecoder.defaultMaxMessageLength
    func freshDecoder(handshake: Bool) -> PeerWireDecoder {
        PeerWireDecoder(maxMessageLength: maxMessageLength, expectingHandshake: handshake)
    }

    let whole = decodeAll(stream, with: freshDecoder(handshake: expectingHandshake))
    let inReads = decodeInReads(stream, sizes: readSizes, with: freshDecoder(handshake: expectingHandshake))
    fuzzCheck(whole.frames == inReads.frames, "reads of \(readSizes) give other frames than the whole stream")
    fuzzCheck(sameFailure(whole.error, inReads.error), "reads of \(readSizes) fail with \(String(describing: inReads.error)), "
              + "the whole stream with \(String(describing: whole.error))")
    if let error = whole.error { exercise(error) }

    for frame in whole.frames {
        var encoded = ByteBuffer()
        frame.write(to: &encoded)
        let isHandshake = if case .handshake = frame { true } else { false }
        let again = decodeAll(Array(encoded.readableBytesView), with: freshDecoder(handshake: isHandshake))
        fuzzCheck(again.frames == [frame] && again.error == nil, "\(frame) does not survive a round trip")
    }
    return 0
}

private struct Decoded {
    var frames: [PeerWireFrame] = []
    var error: PeerWireError?
}

private func decodeAll(_ bytes: [UInt8], with decoder: PeerWireDecoder) -> Decoded {
    var decoder = decoder
    var buffer = ByteBuffer(bytes: bytes)
    var result = Decoded()
    do {
        while let frame = try decoder.decode(buffer: &buffer) { result.frames.append(frame) }
    } catch {
        result.error = peerWireError(error)
    }
    return result
}

private func decodeInReads(_ bytes: [UInt8], sizes: [Int], with decoder: PeerWireDecoder) -> Decoded {
    let channel = EmbeddedChannel(handler: PeerWireFrameHandler(decoder))
    var result = Decoded()
    var offset = 0, turn = 0
    while offset < bytes.count, result.error == nil {
        let end = min(bytes.count, offset + sizes[turn % sizes.count])
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes[offset..<end]))
        } catch {
            result.error = peerWireError(error)
        }
        while let frame = try? channel.readInbound(as: PeerWireFrame.self) { result.frames.append(frame) }
        offset = end
        turn += 1
    }
    _ = try? channel.finish()
    return result
}

/// The same error, up to what it says about bytes that had not arrived when it was thrown: a wrong
/// protocol name is reported with the bytes seen so far, an oversized message with its id only when the id
/// byte was in (the handler refuses both as early as it can).
private func sameFailure(_ a: PeerWireError?, _ b: PeerWireError?) -> Bool {
    switch (a, b) {
    case (.handshakeProtocolName(let x)?, .handshakeProtocolName(let y)?):
        return x.starts(with: y) || y.starts(with: x)
    case (.messageTooLong(let length, let maximum, let id)?, .messageTooLong(let otherLength, let otherMaximum, let otherID)?):
        return length == otherLength && maximum == otherMaximum && (id == nil || otherID == nil || id == otherID)
    default:
        return a == b
    }
}

private func peerWireError(_ error: any Error) -> PeerWireError {
    guard let error = error as? PeerWireError else {
        fatalError("peer wire decoding threw \(type(of: error)), not PeerWireError: \(error)")
    }
    return error
}
