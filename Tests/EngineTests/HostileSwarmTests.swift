import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PeerWire
import Testing
import TorrentModel
@testable import Engine

/// Scripted hostile peers against a real Burrow over loopback: poisoned metadata, floods of state before
/// the metadata is known, junk data and repeated protocol violations.
@Suite(.serialized) struct HostileSwarmTests {
    /// A torrent whose info dictionary spans three metadata pieces (300 files with long names).
    static func manyFilesTorrent() throws -> Metainfo {
        let files = (0..<300).map { index in
            (path: ["folder-with-a-fairly-long-name", "file-\(index)-with-a-long-name-to-make-the-info-dictionary-big.bin"],
             data: [UInt8(truncatingIfNeeded: index)])
        }
        let metainfo = try Metainfo.parse(try TorrentCreator.create(files: files, name: "many", pieceLength: 16 * 1024))
        precondition(metainfo.info.rawBytes.count > 2 * MetadataMessage.pieceSize)
        return metainfo
    }

    static let liarIP = "127.0.0.2"
    static let honestIP = "127.0.0.3"

    /// A Burrow client with `source` added, listening on a random loopback port.
    static func burrow(_ source: TorrentSource, seed: Bool = false, directory: String? = nil)
        async throws -> (client: BurrowClient, handle: TorrentHandle, port: Int, directory: String) {
        let port = SwarmTests.freePort()
        let directory = try directory ?? SwarmTests.temporaryDirectory()
        let client = SwarmTests.client(port: port)
        try await client.start()
        let handle = try await client.add(source, options: SessionOptions(outputDirectory: directory, seed: seed))
        return (client, handle, port, directory)
    }

    /// Per-peer state sizes of every connected peer, read on the session's loop.
    static func footprints(_ handle: TorrentHandle) async throws -> [PeerFootprint] {
        let session = handle.session
        return try await session.eventLoop.submit { session.peers.values.map(\.footprint) }.get()
    }

    static func candidateCount(_ handle: TorrentHandle) async throws -> Int {
        let session = handle.session
        return try await session.eventLoop.submit { session.candidates.count }.get()
    }

    /// Answers every ut_metadata request with the piece of `bytes` (claimed size `claimedSize`), or with
    /// nothing when `bytes` is nil.
    /// Holds a metadata server's answers until `open` is called (to line up who answers what).
    final class AnswerGate: Sendable {
        private let state = NIOLockedValueBox<(open: Bool, held: [@Sendable () -> Void])>((false, []))
        /// Runs `answer` now if open, else later.
        func pass(_ answer: @escaping @Sendable () -> Void) {
            let now = state.withLockedValue { state -> Bool in
                if !state.open { state.held.append(answer) }
                return state.open
            }
            if now { answer() }
        }
        func open() {
            let held = state.withLockedValue { state in
                state.open = true
                defer { state.held = [] }
                return state.held
            }
            for answer in held { answer() }
        }
    }

    /// With `maxAnswers`, later requests go unanswered.
    static func metadataServer(claimedSize: Int, bytes: [UInt8]?, gate: AnswerGate? = nil,
                               maxAnswers: Int = .max) -> ScriptedPeer.Script {
        let answered = NIOLockedValueBox(0)
        return { peer, event in
            switch event {
            case .handshaken:
                var handshake = ExtensionHandshake(m: ["ut_metadata": 3], metadataSize: claimedSize)
                handshake.client = "scripted"
                peer.sendExtensionHandshake(handshake)
            case .message(.extended(3, let payload)):
                guard let bytes, case .request(let piece)? = try? MetadataMessage.decode(payload),
                      let id = peer.burrowExtensionID("ut_metadata") else { return }
                let start = piece * MetadataMessage.pieceSize
                guard start < bytes.count, answered.withLockedValue({ count in
                    count += 1
                    return count <= maxAnswers
                }) else { return }
                let chunk = Array(bytes[start..<min(start + MetadataMessage.pieceSize, bytes.count)])
                let message = MetadataMessage.data(piece: piece, totalSize: claimedSize, payload: chunk)
                let answer: @Sendable () -> Void = { peer.send(.extended(id: id, payload: ByteBuffer(bytes: message.encode()))) }
                if let gate { gate.pass(answer) } else { answer() }
            default:
                break
            }
        }
    }

    static func askedForMetadata(_ peer: ScriptedPeer) -> Bool {
        peer.received.contains { if case .extended(3, _) = $0 { return true } else { return false } }
    }

    // MARK: - Magnet metadata can't be poisoned

    @Test func aWrongMetadataSizeDoesNotPinTheDownload() async throws {
        let metainfo = try Self.manyFilesTorrent()
        let truth = metainfo.info.rawBytes
        let magnet = try MagnetLink.parse("magnet:?xt=urn:btih:\(metainfo.infoHash.hex)")
        let leecher = try await Self.burrow(.magnet(magnet))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? FileManager.default.removeItem(atPath: leecher.directory) }

        // The liar comes first, claims another size and then never answers.
        let liar = try await ScriptedPeer.connect(to: leecher.port, from: Self.liarIP, infoHash: metainfo.infoHash, group: group,
                                                  script: Self.metadataServer(claimedSize: truth.count + 4000, bytes: nil))
        #expect(await liar.waitUntil(Self.askedForMetadata), "Burrow never asked the first peer for metadata")
        let honest = try await ScriptedPeer.connect(to: leecher.port, from: Self.honestIP, infoHash: metainfo.infoHash, group: group,
                                                    script: Self.metadataServer(claimedSize: truth.count, bytes: truth))
        let arrived = await ScriptedPeer.waitUntil(seconds: 5) { try await leecher.handle.status().pieceCount > 0 }
        #expect(arrived, "metadata did not arrive from the honest peer")
        #expect(try await leecher.handle.status().name == "many")
        honest.close(); liar.close()
        await leecher.client.shutdown()
        try await group.shutdownGracefully()
    }

    @Test func bogusMetadataPiecesGetTheirSenderBannedAndTheHonestPeerFinishes() async throws {
        let metainfo = try Self.manyFilesTorrent()
        let truth = metainfo.info.rawBytes
        let magnet = try MagnetLink.parse("magnet:?xt=urn:btih:\(metainfo.infoHash.hex)")
        let leecher = try await Self.burrow(.magnet(magnet))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? FileManager.default.removeItem(atPath: leecher.directory) }

        // The liar claims the right size and answers every request at once, with one byte changed.
        var bogus = truth
        bogus[10] ^= 0xFF
        let liar = try await ScriptedPeer.connect(to: leecher.port, from: Self.liarIP, infoHash: metainfo.infoHash, group: group,
                                                  script: Self.metadataServer(claimedSize: truth.count, bytes: bogus))
        #expect(await liar.waitUntil(Self.askedForMetadata))
        let honest = try await ScriptedPeer.connect(to: leecher.port, from: Self.honestIP, infoHash: metainfo.infoHash, group: group,
                                                    script: Self.metadataServer(claimedSize: truth.count, bytes: truth))
        let arrived = await ScriptedPeer.waitUntil(seconds: 5) { try await leecher.handle.status().pieceCount > 0 }
        #expect(arrived, "metadata did not arrive from the honest peer")
        #expect(await liar.waitUntil { $0.isClosed }, "the liar is still connected")
        #expect(!honest.isClosed, "the honest peer was dropped")
        let status = try await leecher.handle.status()
        #expect(status.bannedPeers == 1)
        #expect(status.peersCutOff >= 1)
        #expect(status.metadataFailures >= 1)

        // The liar's address is refused while the ban lasts; another address is not.
        let again = try await ScriptedPeer.connect(to: leecher.port, from: Self.liarIP, infoHash: metainfo.infoHash, group: group)
        #expect(await again.waitUntil { $0.isClosed }, "a banned address was let back in")
        #expect(again.wasRefused)
        let other = try await ScriptedPeer.connect(to: leecher.port, from: "127.0.0.4", infoHash: metainfo.infoHash, group: group)
        #expect(await other.waitUntil { $0.handshake != nil })
        honest.close(); other.close()
        await leecher.client.shutdown()
        try await group.shutdownGracefully()
    }

    @Test func metadataMixedFromALiarAndAnHonestPeerIsBlamedOnTheLiarOnly() async throws {
        let metainfo = try Self.manyFilesTorrent()
        let truth = metainfo.info.rawBytes
        let magnet = try MagnetLink.parse("magnet:?xt=urn:btih:\(metainfo.infoHash.hex)")
        let leecher = try await Self.burrow(.magnet(magnet))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? FileManager.default.removeItem(atPath: leecher.directory) }

        // The honest peer is asked for every piece first but holds its answers; the liar then gets a
        // duplicate request for piece 0, answers it wrongly at once and nothing after. The attempt mixes
        // both; the honest peer alone then completes the metadata, which shows who lied.
        let gate = AnswerGate()
        let honest = try await ScriptedPeer.connect(to: leecher.port, from: Self.honestIP, infoHash: metainfo.infoHash, group: group,
                                                    script: Self.metadataServer(claimedSize: truth.count, bytes: truth, gate: gate))
        #expect(await honest.waitUntil(Self.askedForMetadata))
        var bogus = truth
        bogus[10] ^= 0xFF
        let liar = try await ScriptedPeer.connect(to: leecher.port, from: Self.liarIP, infoHash: metainfo.infoHash, group: group,
                                                  script: Self.metadataServer(claimedSize: truth.count, bytes: bogus, maxAnswers: 1))
        #expect(await liar.waitUntil(Self.askedForMetadata))
        try await Task.sleep(for: .milliseconds(200))   // the liar's piece lands first
        gate.open()

        let arrived = await ScriptedPeer.waitUntil(seconds: 5) { try await leecher.handle.status().pieceCount > 0 }
        #expect(arrived, "metadata did not arrive")
        #expect(await liar.waitUntil { $0.isClosed }, "the liar is still connected")
        #expect(!honest.isClosed, "the honest peer was dropped")
        let status = try await leecher.handle.status()
        #expect(status.metadataFailures == 1)
        #expect(status.bannedPeers == 1)
        honest.close()
        await leecher.client.shutdown()
        try await group.shutdownGracefully()
    }

    // MARK: - Bounded memory per peer

    @Test func aPeerFloodingStateBeforeTheMetadataStaysBounded() async throws {
        let metainfo = try Self.manyFilesTorrent()
        let magnet = try MagnetLink.parse("magnet:?xt=urn:btih:\(metainfo.infoHash.hex)")
        let leecher = try await Self.burrow(.magnet(magnet))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? FileManager.default.removeItem(atPath: leecher.directory) }

        // metadata_size 40,000: at most 2,000 pieces, so early availability needs at most 250 bytes.
        let flooder = try await ScriptedPeer.connect(to: leecher.port, from: "127.0.0.5", infoHash: metainfo.infoHash, group: group) { peer, event in
            guard case .handshaken = event else { return }
            var m: [String: UInt8] = ["ut_metadata": 3, "ut_pex": 4]
            for index in 0..<500 { m["x_junk_\(index)"] = UInt8(5 + index % 200) }
            var handshake = ExtensionHandshake(m: m, metadataSize: 40_000)
            handshake.client = String(repeating: "C", count: 2000)
            peer.sendExtensionHandshake(handshake)
        }
        #expect(await flooder.waitUntil { $0.burrowExtensionID("ut_pex") != nil })
        let pexID = try #require(flooder.burrowExtensionID("ut_pex"))
        for round in 0..<10 {
            flooder.send((0..<2000).map { PeerMessage.have(piece: UInt32(($0 * 7 + round) % 2000)) })
        }
        flooder.send(.bitfield([UInt8](repeating: 0xFF, count: 250)))
        flooder.send((0..<200).map { PeerMessage.allowedFast(UInt32($0)) })
        flooder.send((0..<600).map { PeerMessage.request(BlockRequest(piece: UInt32($0), begin: 0, length: 16384)) })
        for round in 0..<20 {
            var pex = PexMessage()
            // Loopback addresses nobody listens on: dialling them stays on this machine and fails at once.
            pex.added = (0..<200).map { PeerAddress(ip: [127, 1, UInt8(round), UInt8($0)], port: 9)! }
            flooder.send(.extended(id: pexID, payload: ByteBuffer(bytes: pex.encode())))
        }
        let settled = await ScriptedPeer.waitUntil(seconds: 5) {
            let early = try await Self.footprints(leecher.handle).first?.earlyAvailabilityBytes
            let candidates = try await Self.candidateCount(leecher.handle)
            return early == 250 && candidates >= PeerConnection.maxPexAddresses
        }
        #expect(settled)
        let footprint = try #require(try await Self.footprints(leecher.handle).first)
        #expect(footprint.earlyAvailabilityBytes <= 250)
        #expect(footprint.extensionIDs <= 2)
        #expect(footprint.clientNameBytes <= PeerConnection.maxClientNameLength)
        #expect(footprint.allowedFast == 0)
        #expect(footprint.uploadQueue == 0)
        #expect(footprint.metadataRequestsInFlight <= TorrentSession.metadataRequestsPerPeer)
        // What its PEX messages gave, plus its own address.
        #expect(try await Self.candidateCount(leecher.handle) <= PeerConnection.maxPexAddresses + 1)
        #expect(!flooder.isClosed, "nothing in this flood is a violation")
        flooder.close()
        await leecher.client.shutdown()
        try await group.shutdownGracefully()
    }

    // MARK: - Peers that send junk are cut off

    /// A leecher of a 64-piece torrent with no data yet.
    static func smallTorrentLeecher() async throws -> (client: BurrowClient, handle: TorrentHandle, port: Int, directory: String) {
        let data = [UInt8](repeating: 9, count: 64 * 16 * 1024)
        let metainfo = try Metainfo.parse(try TorrentCreator.create(singleFile: "x.bin", data: data, pieceLength: 16 * 1024))
        return try await Self.burrow(.metainfo(metainfo))
    }

    @Test func unrequestedBlocksGetThePeerCutOffAndBanned() async throws {
        let leecher = try await Self.smallTorrentLeecher()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? FileManager.default.removeItem(atPath: leecher.directory) }
        let junk = ByteBuffer(bytes: [UInt8](repeating: 0xAB, count: 16 * 1024))
        let spammer = try await ScriptedPeer.connect(to: leecher.port, from: "127.0.0.6", infoHash: leecher.handle.infoHash, group: group) { peer, event in
            guard case .handshaken = event else { return }
            // Says it has nothing, so Burrow asks for nothing, then sends blocks anyway.
            peer.send([.haveNone, .unchoke] + (0..<32).map { PeerMessage.piece(piece: UInt32($0), begin: 0, block: junk) })
        }
        #expect(await spammer.waitUntil { $0.isClosed }, "a peer sending 512 KiB of unrequested blocks is still connected")
        #expect(!spammer.wasRefused)
        let status = try await leecher.handle.status()
        #expect(status.bannedPeers == 1)
        #expect(status.peersCutOff == 1)
        #expect(status.wastedBytes > Int64(PeerConduct.unrequestedAllowance))

        let again = try await ScriptedPeer.connect(to: leecher.port, from: "127.0.0.6", infoHash: leecher.handle.infoHash, group: group)
        #expect(await again.waitUntil { $0.isClosed }, "the banned address was let back in")
        #expect(again.wasRefused)
        let other = try await ScriptedPeer.connect(to: leecher.port, from: "127.0.0.7", infoHash: leecher.handle.infoHash, group: group)
        #expect(await other.waitUntil { $0.handshake != nil })
        other.close()
        await leecher.client.shutdown()
        try await group.shutdownGracefully()
    }

    @Test func repeatedProtocolViolationsGetThePeerBanned() async throws {
        let leecher = try await Self.smallTorrentLeecher()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? FileManager.default.removeItem(atPath: leecher.directory) }
        // One invalid message is tolerated (a strike); the third gets the address banned.
        let violator = try await ScriptedPeer.connect(to: leecher.port, from: "127.0.0.8", infoHash: leecher.handle.infoHash, group: group) { peer, event in
            guard case .handshaken = event else { return }
            peer.send(.have(piece: 5000))
        }
        #expect(await violator.waitUntil { $0.handshake != nil })
        try await Task.sleep(for: .milliseconds(200))
        #expect(!violator.isClosed, "a single invalid have closed the connection")
        violator.send([.have(piece: 6000), .have(piece: 7000)])
        #expect(await violator.waitUntil { $0.isClosed }, "a peer sending invalid messages again and again is still connected")
        let status = try await leecher.handle.status()
        #expect(status.bannedPeers == 1)
        #expect(status.peersCutOff == 1)
        let again = try await ScriptedPeer.connect(to: leecher.port, from: "127.0.0.8", infoHash: leecher.handle.infoHash, group: group)
        #expect(await again.waitUntil { $0.isClosed })
        #expect(again.wasRefused, "the banned address was let back in")
        await leecher.client.shutdown()
        try await group.shutdownGracefully()
    }

    @Test func requestsBeyondOurReqqAreRefusedAndCountAsViolations() async throws {
        let data = (0..<(64 * 16 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let metainfo = try Metainfo.parse(try TorrentCreator.create(singleFile: "x.bin", data: data, pieceLength: 16 * 1024))
        let seedDir = try SwarmTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: seedDir) }
        try Data(data).write(to: URL(fileURLWithPath: seedDir + "/x.bin"))
        let port = SwarmTests.freePort()
        let (seeder, seeding) = try await SwarmTests.startSeeder(metainfo, from: seedDir, port: port, uploadRateLimit: 16 * 1024)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let greedy = try await ScriptedPeer.connect(to: port, from: "127.0.0.9", infoHash: metainfo.infoHash, group: group) { peer, event in
            guard case .handshaken = event else { return }
            peer.send(.interested)
        }
        #expect(await greedy.waitUntil { $0.received.contains(.unchoke) })
        // 64 pieces of one block each, asked for ten times over: 640 requests against our reqq of 500.
        greedy.send((0..<640).map { PeerMessage.request(BlockRequest(piece: UInt32($0 % 64), begin: 0, length: 16384)) })
        #expect(await greedy.waitUntil { $0.isClosed }, "a peer far beyond our reqq is still connected")
        let rejected = greedy.received.filter { if case .rejectRequest = $0 { return true } else { return false } }.count
        #expect(rejected >= 1)
        let status = try await seeding.status()
        #expect(status.bannedPeers == 1)
        #expect(status.peersCutOff == 1)
        await seeder.shutdown()
        try await group.shutdownGracefully()
    }

    @Test func aBrokenStreamIsAStrikeButAConnectionResetIsNot() async throws {
        let leecher = try await Self.smallTorrentLeecher()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? FileManager.default.removeItem(atPath: leecher.directory) }
        // A reset (SO_LINGER 0, then close) is how connections often end: no misbehaviour.
        let resetter = try await ScriptedPeer.connect(to: leecher.port, from: "127.0.0.10", infoHash: leecher.handle.infoHash, group: group)
        #expect(await resetter.waitUntil { $0.handshake != nil })
        let options = try #require(resetter.channel as? any SocketOptionProvider)
        try await options.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
        resetter.close()
        #expect(await ScriptedPeer.waitUntil { try await leecher.handle.status().connectedPeers == 0 })
        #expect(try await leecher.handle.status().peersCutOff == 0, "a connection reset counted as misbehaviour")

        // A frame far beyond any message's size breaks the stream: cut off, a strike, not yet a ban.
        let garbler = try await ScriptedPeer.connect(to: leecher.port, from: "127.0.0.11", infoHash: leecher.handle.infoHash, group: group)
        #expect(await garbler.waitUntil { $0.handshake != nil })
        garbler.send(.extended(id: 9, payload: ByteBuffer(bytes: [UInt8](repeating: 0, count: PeerPipeline.maxMessageLength + 1))))
        #expect(await garbler.waitUntil { $0.isClosed })
        let status = try await leecher.handle.status()
        #expect(status.peersCutOff == 1)
        #expect(status.bannedPeers == 0)
        await leecher.client.shutdown()
        try await group.shutdownGracefully()
    }
}
