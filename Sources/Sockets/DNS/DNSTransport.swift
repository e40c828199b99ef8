import NIOCore

/// What a valid reply to one query must match: anything else is ignored, so an off-path attacker has to
/// guess the random id and source port, and must spoof the server's address.
struct DNSExpectation: Sendable {
    let id: UInt16
    let question: DNSQuestion
    let server: SocketAddress

    /// The reply if `bytes` answers this query; nil if it is someone else's packet; throws if it claims to
    /// be our answer but is malformed.
    func match(_ bytes: [UInt8]) throws -> DNSResponse? {
        guard DNSMessageCodec.peekID(bytes) == id else { return nil }
        let response: DNSResponse
        do {
            response = try DNSMessageCodec.decodeResponse(bytes)
        } catch {
            throw DNSTryFailure(reason: "\(server.dnsServerText) \(question.type): \(error)")
        }
        guard response.isResponse, response.opcode == 0 else { return nil }
        // A server may omit the question on some errors; when present it must echo ours exactly.
        if let echoed = response.questions.first {
            guard echoed.name == question.name, echoed.type == question.type, echoed.recordClass == 1 else {
                return nil
            }
        } else if response.responseCode == .noError {
            return nil
        }
        return response
    }
}

/// Waits for the datagram answering one UDP query.
final class DNSDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    /// Datagrams above this are not DNS answers to a non-EDNS query (those are at most 512 bytes, but some
    /// servers exceed it); the allocator is sized to this too.
    static let maximumResponseSize = 4096

    private let expectation: DNSExpectation
    private let promise: EventLoopPromise<DNSResponse>

    init(expectation: DNSExpectation, promise: EventLoopPromise<DNSResponse>) {
        self.expectation = expectation
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard envelope.remoteAddress == expectation.server,
              envelope.data.readableBytes <= Self.maximumResponseSize
        else { return }
        do {
            if let response = try expectation.match(Array(envelope.data.readableBytesView)) {
                promise.succeed(response)
            }
        } catch {
            promise.fail(error)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(DNSTryFailure(reason: "\(expectation.server.dnsServerText) \(expectation.question.type): \(error)"))
    }
}

/// Splits a TCP DNS stream into messages: a 2-byte big-endian length, then that many bytes (RFC 1035 §4.2.2).
struct DNSStreamFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              buffer.readableBytes >= 2 + Int(length)
        else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

/// Waits for the message answering one TCP query.
final class DNSStreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let expectation: DNSExpectation
    private let promise: EventLoopPromise<DNSResponse>

    init(expectation: DNSExpectation, promise: EventLoopPromise<DNSResponse>) {
        self.expectation = expectation
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        do {
            if let response = try expectation.match(Array(message.readableBytesView)) {
                promise.succeed(response)
            }
        } catch {
            promise.fail(error)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(DNSTryFailure(
            reason: "\(expectation.server.dnsServerText) \(expectation.question.type) over TCP: connection closed before an answer"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(DNSTryFailure(
            reason: "\(expectation.server.dnsServerText) \(expectation.question.type) over TCP: \(error)"))
        context.close(promise: nil)
    }
}
