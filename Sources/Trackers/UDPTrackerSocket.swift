import Logging
import NIOCore
import Sockets

/// One UDP socket from the seam, talking to one tracker address: send a datagram, wait a bounded time
/// for the reply carrying the same transaction id.
struct UDPTrackerSocket: Sendable {
    let channel: any Channel
    let tracker: SocketAddress

    static func open(to tracker: SocketAddress, sockets: SocketFactory, logger: Logger) async throws -> UDPTrackerSocket {
        let channel = try await sockets.openUDP(toReach: tracker) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(UDPResponseReceiver(tracker: tracker, logger: logger))
            }
        }.get()
        return UDPTrackerSocket(channel: channel, tracker: tracker)
    }

    /// Sends `packet` and returns the first datagram from the tracker carrying `transactionID`, or nil
    /// when none came within `wait`. Replies to earlier sends of the same packet count: retransmits reuse
    /// the transaction id so a late answer is not wasted.
    func send(_ packet: [UInt8], expecting transactionID: UInt32, within wait: TimeAmount) async throws -> [UInt8]? {
        let channel = self.channel
        let tracker = self.tracker
        let reply: EventLoopFuture<[UInt8]?> = channel.eventLoop.flatSubmit {
            do {
                let receiver = try channel.pipeline.syncOperations.handler(type: UDPResponseReceiver.self)
                let answer = receiver.expect(transactionID: transactionID, within: wait, on: channel.eventLoop)
                let envelope = AddressedEnvelope(remoteAddress: tracker, data: channel.allocator.buffer(bytes: packet))
                return channel.writeAndFlush(envelope).flatMap { answer }
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }
        do {
            return try await withTaskCancellationHandler {
                try await reply.get()
            } onCancel: {
                channel.close(promise: nil)
            }
        } catch {
            try Task.checkCancellation()
            throw TrackerError.wrapping(error)
        }
    }

    func close() {
        channel.close(promise: nil)
    }
}

/// Hands datagrams from the tracker to whoever waits for their transaction id; everything else
/// (other senders, stale or foreign transaction ids, runts) is dropped and logged.
/// Invariant: at most one wait is pending; all state is touched only on the channel's event loop.
final class UDPResponseReceiver: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private struct PendingReply {
        var transactionID: UInt32
        var promise: EventLoopPromise<[UInt8]?>
        var timer: Scheduled<Void>
    }

    private let tracker: SocketAddress
    private let logger: Logger
    private var pending: PendingReply?

    init(tracker: SocketAddress, logger: Logger) {
        self.tracker = tracker
        self.logger = logger
    }

    /// Starts waiting for `transactionID`; the future yields nil after `wait`. Replaces any earlier wait.
    func expect(transactionID: UInt32, within wait: TimeAmount, on loop: any EventLoop) -> EventLoopFuture<[UInt8]?> {
        settle(with: .success(nil))
        let promise = loop.makePromise(of: [UInt8]?.self)
        let timer = loop.scheduleTask(in: wait) { promise.succeed(nil) }
        pending = PendingReply(transactionID: transactionID, promise: promise, timer: timer)
        return promise.futureResult
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard envelope.remoteAddress == tracker else {
            logger.debug("dropping datagram from a stranger", metadata: ["from": "\(envelope.remoteAddress)"])
            return
        }
        let datagram = Array(envelope.data.readableBytesView)
        guard let header = UDPTrackerProtocol.header(of: datagram) else {
            logger.debug("dropping runt datagram from tracker", metadata: ["bytes": "\(datagram.count)"])
            return
        }
        guard let waiting = pending, waiting.transactionID == header.transactionID else {
            logger.debug("dropping datagram with an unexpected transaction id", metadata: ["id": "\(header.transactionID)"])
            return
        }
        settle(with: .success(datagram))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        settle(with: .failure(TrackerError.connectionFailed("UDP socket error: \(error)")))
    }

    func channelInactive(context: ChannelHandlerContext) {
        settle(with: .failure(TrackerError.connectionFailed("the UDP socket was closed")))
        context.fireChannelInactive()
    }

    private func settle(with result: Result<[UInt8]?, any Error>) {
        guard let waiting = pending else { return }
        pending = nil
        waiting.timer.cancel()
        waiting.promise.completeWith(result)
    }
}
