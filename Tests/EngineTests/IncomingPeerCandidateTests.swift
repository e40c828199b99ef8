import Foundation
import NIOCore
import NIOPosix
import PeerWire
import Testing
import TorrentModel
@testable import Engine

/// An incoming peer is remembered as a candidate only at the port it listens on, never at the ephemeral
/// source port of its connection (dialling that later only fails).
@Suite struct IncomingPeerCandidateTests {
    @Test func anIncomingPeerBecomesACandidateOnlyAtItsListenPort() async throws {
        let leecher = try await HostileSwarmTests.smallTorrentLeecher()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? FileManager.default.removeItem(atPath: leecher.directory) }
        let session = leecher.handle.session
        func knows(_ address: PeerAddress) async throws -> Bool {
            try await session.eventLoop.submit { session.candidates.contains(address) }.get()
        }

        let peer = try await ScriptedPeer.connect(to: leecher.port, from: "127.0.0.8", infoHash: leecher.handle.infoHash, group: group)
        #expect(await peer.waitUntil { $0.handshake != nil })
        let sourcePort = try #require(peer.channel.localAddress?.port)
        let source = try #require(PeerAddress(ip: [127, 0, 0, 8], port: UInt16(sourcePort)))
        #expect(try await session.eventLoop.submit { session.peers.count }.get() == 1)
        #expect(try await !knows(source), "the connection's ephemeral source port was taken as a listen port")

        var extensionHandshake = ExtensionHandshake()
        extensionHandshake.port = 51413
        peer.sendExtensionHandshake(extensionHandshake)
        let listening = try #require(PeerAddress(ip: [127, 0, 0, 8], port: 51413))
        #expect(await ScriptedPeer.waitUntil { try await knows(listening) })
        #expect(try await !knows(source))

        peer.close()
        await leecher.client.shutdown()
        try await group.shutdownGracefully()
    }
}
