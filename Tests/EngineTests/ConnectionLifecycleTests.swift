import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import TorrentModel
@testable import Engine

/// Peers that connect or accept and then stall, close early or flood: none may hold a slot or a
/// descriptor for long, and a real download still goes through.
@Suite(.serialized) struct ConnectionLifecycleTests {
    static let handshakeTimeout = TimeAmount.seconds(1)

    static func client(port: Int, halfOpenLimit: Int? = nil) -> BurrowClient {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        var configuration = ClientConfiguration(networkPolicy: .unbound, listenPort: port)
        configuration.handshakeTimeout = handshakeTimeout
        configuration.halfOpenLimit = halfOpenLimit
        return BurrowClient(configuration: configuration, logger: logger)
    }

    struct NotComplete: Error, CustomStringConvertible {
        let seconds: Int
        let status: TorrentStatus
        var description: String {
            "not complete after \(seconds) s: \(status.state), \(status.verifiedBytes)/\(status.wantedBytes) bytes, \(status.connectedPeers) peers, \(status.knownPeers) known"
        }
    }

    /// Polls until the torrent is complete; throws after `seconds`. (Awaiting `waitUntilComplete` in a
    /// task group cannot time out: its future ignores cancellation, and the group waits for it.)
    static func waitComplete(_ handle: TorrentHandle, seconds: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while true {
            let status = try await handle.status()
            switch status.state {
            case .complete, .seeding: return
            case .failed(let why): throw SessionError.failed(why)
            default: break
            }
            if ContinuousClock.now >= deadline { throw NotComplete(seconds: seconds, status: status) }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// A seeding Burrow for a 600 KB single-file torrent, and what a leecher needs to fetch it.
    struct Seeded {
        let metainfo: Metainfo
        let data: [UInt8]
        let seedDir: String
        let leechDir: String
        let seedPort: Int
        let seeder: BurrowClient

        func checkDownloaded() throws {
            let downloaded = try #require(FileManager.default.contents(atPath: leechDir + "/movie.bin"))
            #expect(Array(downloaded) == data, "the download differs from the source")
        }

        func cleanUp() async {
            await seeder.shutdown()
            try? FileManager.default.removeItem(atPath: seedDir)
            try? FileManager.default.removeItem(atPath: leechDir)
        }
    }

    static func seed(seederHalfOpenLimit: Int? = nil) async throws -> Seeded {
        let data = (0..<600_000).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 17) }
        let metainfo = try Metainfo.parse(try TorrentCreator.create(singleFile: "movie.bin", data: data, pieceLength: 32 * 1024))
        let seedDir = try SwarmTests.temporaryDirectory(), leechDir = try SwarmTests.temporaryDirectory()
        try Data(data).write(to: URL(fileURLWithPath: seedDir + "/movie.bin"))
        let seedPort = SwarmTests.freePort()
        let seeder = client(port: seedPort, halfOpenLimit: seederHalfOpenLimit)
        try await seeder.start()
        let seeding = try await seeder.add(.metainfo(metainfo), options: SessionOptions(outputDirectory: seedDir, seed: true))
        try await waitComplete(seeding, seconds: 20)
        return Seeded(metainfo: metainfo, data: data, seedDir: seedDir, leechDir: leechDir, seedPort: seedPort, seeder: seeder)
    }

    /// Downloads `seeded` with only `peerPort` as a peer; returns the seconds it took.
    static func download(_ seeded: Seeded, from peerPort: Int, within seconds: Int) async throws -> Double {
        let leecher = client(port: seeded.seedPort + 1)
        try await leecher.start()
        let started = ContinuousClock.now
        let peer = PeerAddress(parsing: "127.0.0.1:\(peerPort)")!
        do {
            let leeching = try await leecher.add(.metainfo(seeded.metainfo),
                                                 options: SessionOptions(outputDirectory: seeded.leechDir, extraPeers: [peer]))
            try await waitComplete(leeching, seconds: seconds)
        } catch {
            await leecher.shutdown()
            throw error
        }
        let elapsed = ContinuousClock.now - started
        await leecher.shutdown()
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    /// The only peer accepts our first connection and never says a word: the handshake timeout closes it,
    /// the address is retried, and the download goes through (on a connection the peer serves).
    @Test func silentPeerLosesItsSlotAndTheDownloadProceeds() async throws {
        let seeded = try await Self.seed()
        let peer = FlakyPeerRelay(script: [.silent], target: seeded.seedPort)
        let port = try await peer.start()
        do {
            let seconds = try await Self.download(seeded, from: port, within: 12)
            try seeded.checkDownloaded()
            let silent = try #require(peer.connections.first)
            #expect(silent.act == .silent)
            let closedAfter = try #require(silent.closedAt, "the silent connection was never closed") - silent.acceptedAt
            #expect(closedAfter < .seconds(3), "the silent connection stayed \(closedAfter), over the 1 s handshake timeout")
            print("silent peer: download in \(seconds) s; silent connection closed after \(closedAfter)")
        } catch {
            await peer.stop(); await seeded.cleanUp(); throw error
        }
        await peer.stop()
        await seeded.cleanUp()
    }

    /// The only peer closes our first two connections before the handshake (as qBittorrent 4.5.2 often
    /// does), then serves: retried after 1 s and 2 s, the download ends within seconds, not 30 s.
    @Test func peerClosingBeforeTheHandshakeIsRetriedQuickly() async throws {
        let seeded = try await Self.seed()
        let peer = FlakyPeerRelay(script: [.closeAtOnce, .closeAtOnce], target: seeded.seedPort)
        let port = try await peer.start()
        do {
            let seconds = try await Self.download(seeded, from: port, within: 20)
            try seeded.checkDownloaded()
            #expect(peer.connections.count >= 3)
            #expect(seconds < 8, "two early closes cost \(seconds) s")
            print("early closes: download in \(seconds) s over \(peer.connections.count) connections")
        } catch {
            await peer.stop(); await seeded.cleanUp(); throw error
        }
        await peer.stop()
        await seeded.cleanUp()
    }

    /// Connections to Burrow's port that never speak: beyond the half-open cap they are closed at once,
    /// the rest after the handshake timeout; Burrow never holds more than the cap, and a real leecher
    /// still gets the data.
    @Test func silentInboundFloodIsCappedAndTimedOut() async throws {
        let flood = 60
        let seeded = try await Self.seed(seederHalfOpenLimit: 16)
        let cap = seeded.seeder.connectionBudget.incomingHalfOpenLimit
        #expect(cap == 8)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let closed = NIOLockedValueBox(0)
        var channels: [any Channel] = []
        do {
            for _ in 0..<flood {
                let channel = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: seeded.seedPort).get()
                channel.closeFuture.whenComplete { _ in closed.withLockedValue { $0 += 1 } }
                channels.append(channel)
            }
            try await Task.sleep(for: .milliseconds(300))
            let held = acceptedSocketDescriptors(onPort: seeded.seedPort)
            #expect(held <= cap, "Burrow holds \(held) descriptors for silent connections; the cap is \(cap)")
            #expect(closed.withLockedValue { $0 } >= flood - cap, "connections over the cap were not closed at once")
            // The handshake timeout (1 s) ends the rest.
            for _ in 0..<30 where closed.withLockedValue({ $0 }) < flood { try await Task.sleep(for: .milliseconds(100)) }
            #expect(closed.withLockedValue { $0 } == flood, "silent connections outlived the handshake timeout")
            #expect(acceptedSocketDescriptors(onPort: seeded.seedPort) == 0)
            #expect(seeded.seeder.connectionBudget.counts == ConnectionBudget.Counts())
            // Flood again, and download while it lasts.
            for _ in 0..<flood {
                channels.append(try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: seeded.seedPort).get())
            }
            _ = try await Self.download(seeded, from: seeded.seedPort, within: 15)
            try seeded.checkDownloaded()
        } catch {
            for channel in channels { channel.close(promise: nil) }
            try? await group.shutdownGracefully()
            await seeded.cleanUp()
            throw error
        }
        for channel in channels { channel.close(promise: nil) }
        try? await group.shutdownGracefully()
        await seeded.cleanUp()
    }
}
