import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PeerWire
import TorrentModel

/// A scripted peer for tests: a tiny NIO peer that speaks the handshake and then exactly the messages a
/// test chooses, to play a hostile (or honest) peer against a real Burrow over loopback.
///
/// It connects to Burrow's listen port (`connect`), sends its handshake (Fast and extension protocol
/// bits set), and calls `script` once Burrow's handshake arrived and for every message after it. What
/// Burrow sent is recorded in `received`; `wasRefused` tells a connection Burrow closed without
/// answering the handshake (a ban) from one it accepted.
final class ScriptedPeer: Sendable {
    enum Event: Sendable {
        case handshaken(Handshake)
        case message(PeerMessage)
    }
    typealias Script = @Sendable (ScriptedPeer, Event) -> Void

    private struct State {
        var handshake: Handshake?
        var received: [PeerMessage] = []
        var closed = false
    }

    let infoHash: InfoHash
    let peerID: PeerID
    let channel: any Channel
    private let state = NIOLockedValueBox(State())

    private init(infoHash: InfoHash, peerID: PeerID, channel: any Channel) {
        self.infoHash = infoHash
        self.peerID = peerID
        self.channel = channel
    }

    /// Connects to Burrow at 127.0.0.1:`port` from loopback address `from` (peers are told apart, and
    /// banned, by IP) and runs `script`.
    static func connect(to port: Int, from localIP: String = "127.0.0.1", infoHash: InfoHash, group: any EventLoopGroup,
                        script: @escaping Script = { _, _ in }) async throws -> ScriptedPeer {
        let peerID = PeerID.random()
        let box = NIOLockedValueBox<ScriptedPeer?>(nil)
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        PeerWireFrameHandler(PeerWireDecoder()),
                        PeerWireEncodingHandler(),
                        Handler(peer: { box.withLockedValue { $0 } }, script: script),
                    ])
                }
            }
            .bind(to: try SocketAddress(ipAddress: localIP, port: 0))
            .connect(host: "127.0.0.1", port: port).get()
        let peer = ScriptedPeer(infoHash: infoHash, peerID: peerID, channel: channel)
        box.withLockedValue { $0 = peer }
        channel.closeFuture.whenComplete { _ in peer.state.withLockedValue { $0.closed = true } }
        try await channel.writeAndFlush(PeerWireFrame.handshake(.ours(infoHash: infoHash, peerID: peerID))).get()
        return peer
    }

    var handshake: Handshake? { state.withLockedValue { $0.handshake } }
    var received: [PeerMessage] { state.withLockedValue { $0.received } }
    var isClosed: Bool { state.withLockedValue { $0.closed } }
    /// Closed by Burrow without its handshake: refused.
    var wasRefused: Bool { state.withLockedValue { $0.closed && $0.handshake == nil } }

    /// Burrow's id for extension `name`, from its extension handshake.
    func burrowExtensionID(_ name: String) -> UInt8? {
        for case .extended(0, let payload) in received {
            if let handshake = try? ExtensionHandshake.decode(payload) { return handshake.messageID(for: name) }
        }
        return nil
    }

    func send(_ messages: [PeerMessage]) {
        channel.writeAndFlush(PeerWireFrame.messages(messages), promise: nil)
    }

    func send(_ message: PeerMessage) { send([message]) }

    func sendExtensionHandshake(_ handshake: ExtensionHandshake) {
        send(.extended(id: 0, payload: ByteBuffer(bytes: handshake.encode())))
    }

    func close() { channel.close(promise: nil) }

    /// Polls until `condition` holds or `seconds` passed; returns whether it held.
    func waitUntil(seconds: Double = 5, _ condition: (ScriptedPeer) -> Bool) async -> Bool {
        await Self.waitUntil(seconds: seconds) { condition(self) }
    }

    static func waitUntil(seconds: Double = 5, _ condition: () async throws -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try? await condition()) == true { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return (try? await condition()) == true
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = PeerWireFrame
        let peer: () -> ScriptedPeer?
        let script: Script

        init(peer: @escaping () -> ScriptedPeer?, script: @escaping Script) {
            self.peer = peer
            self.script = script
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard let peer = peer() else { return }
            switch unwrapInboundIn(data) {
            case .handshake(let handshake):
                peer.state.withLockedValue { $0.handshake = handshake }
                script(peer, .handshaken(handshake))
            case .message(let message):
                peer.state.withLockedValue { $0.received.append(message) }
                script(peer, .message(message))
            case .messages:
                break
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
