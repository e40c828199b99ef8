import Logging
import NIOCore
import PeerWire
import Sockets
import TorrentModel

/// Glue between one peer's channel and its torrent session: frames in, lifecycle events out.
/// Outgoing connections know their session up front; incoming ones find it from the handshake's info hash.
///
/// Invariant: a channel without a handshake lives at most `handshakeTimeout` after it became active (then
/// it is closed), and holds its `slot` in the client's `ConnectionBudget` as half-open until the session
/// accepts the handshake; the slot is released when the channel closes.
final class PeerChannelHandler: ChannelInboundHandler {
    typealias InboundIn = PeerWireFrame

    enum Route {
        case outgoing(TorrentSession, PeerAddress)
        case incoming(lookup: @Sendable (InfoHash) -> TorrentSession?)
    }

    private let route: Route
    private var session: TorrentSession?
    private var connection: PeerConnection?
    private let slot: ConnectionSlot
    private let handshakeTimeout: TimeAmount
    private var handshakeDeadline: Scheduled<Void>?

    init(route: Route, slot: ConnectionSlot, handshakeTimeout: TimeAmount) {
        self.route = route
        self.slot = slot
        self.handshakeTimeout = handshakeTimeout
        if case .outgoing(let session, _) = route { self.session = session }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let slot = self.slot
        context.channel.closeFuture.whenComplete { _ in slot.release() }
    }

    func channelActive(context: ChannelHandlerContext) {
        if case .outgoing(let session, _) = route {
            context.writeAndFlush(wrapOutboundOut(.handshake(session.ourHandshake)), promise: nil)
        }
        // A peer that connects (or accepts) and then says nothing must not hold a socket and a slot.
        let channel = context.channel
        handshakeDeadline = context.eventLoop.scheduleTask(in: handshakeTimeout) {
            channel.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if let connection, let session {
            guard case .message(let message) = frame else {
                session.peerMisbehaved(connection, reason: "second handshake")
                return
            }
            session.handle(message, from: connection)
            return
        }
        guard case .handshake(let handshake) = frame else {
            context.close(promise: nil)
            return
        }
        let remote = context.channel.remoteAddress.flatMap(PeerAddress.init(socketAddress:))
        switch route {
        case .outgoing(let session, let address):
            connection = session.peerHandshaked(handshake, channel: context.channel, address: address, direction: .outgoing)
        case .incoming(let lookup):
            // Banned addresses are not even answered.
            guard let session = lookup(handshake.infoHash), let remote, !session.isBanned(remote) else {
                context.close(promise: nil)
                return
            }
            self.session = session
            context.writeAndFlush(wrapOutboundOut(.handshake(session.ourHandshake)), promise: nil)
            connection = session.peerHandshaked(handshake, channel: context.channel, address: remote, direction: .incoming)
        }
        guard connection != nil else {
            context.close(promise: nil)
            return
        }
        handshakeDeadline?.cancel()
        handshakeDeadline = nil
        slot.handshaken()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is SocketRetiredEvent {
            // The kill switch took the socket: forget the peer now; the socket dies in the kernel (closing
            // it ourselves, even at the handshake deadline, could send an RST outside the tunnel).
            handshakeDeadline?.cancel()
            handshakeDeadline = nil
            if let connection, let session { session.peerDisconnected(connection) }
            connection = nil
            session = nil
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeDeadline?.cancel()
        handshakeDeadline = nil
        if let connection, let session { session.peerDisconnected(connection) }
        connection = nil
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let connection, let session { session.peerBecameWritable(connection) }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Malformed or oversized input closes this peer only.
        if let connection, let session { session.peerFailed(connection, error: error) }
        context.close(promise: nil)
    }

    func wrapOutboundOut(_ frame: PeerWireFrame) -> NIOAny { NIOAny(frame) }
}

extension PeerAddress {
    init?(socketAddress: SocketAddress) {
        guard let port = socketAddress.port else { return nil }
        switch socketAddress {
        case .v4(let v4):
            var a = v4.address.sin_addr
            let bytes = withUnsafeBytes(of: &a) { Array($0) }
            self.init(ip: bytes, port: UInt16(port))
        case .v6(let v6):
            var a = v6.address.sin6_addr
            var bytes = withUnsafeBytes(of: &a) { Array($0) }
            // IPv4-mapped addresses are IPv4 peers.
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
                bytes = Array(bytes[12..<16])
            }
            self.init(ip: bytes, port: UInt16(port))
        default:
            return nil
        }
    }

    var socketAddress: SocketAddress? {
        try? SocketAddress(ipAddress: ipString, port: Int(port))
    }
}
