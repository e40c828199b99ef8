import NIOCore
import PeerWire

/// The handlers every peer channel gets, outgoing or incoming: framing, zero-copy encoding, the glue.
enum PeerPipeline {
    /// Bitfields of torrents up to a million pieces fit; anything longer is hostile.
    static let maxMessageLength = PeerWireDecoder.maxMessageLength(pieceCount: 1 << 20)

    static func install(on channel: any Channel, route: PeerChannelHandler.Route, slot: ConnectionSlot,
                        handshakeTimeout: TimeAmount) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandlers([
                PeerWireFrameHandler(PeerWireDecoder(maxMessageLength: maxMessageLength)),
                PeerWireEncodingHandler(),
                PeerChannelHandler(route: route, slot: slot, handshakeTimeout: handshakeTimeout),
            ])
        }
    }
}
