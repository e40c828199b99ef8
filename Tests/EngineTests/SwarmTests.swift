import Foundation
import Logging
import NIOCore
import Testing
import TorrentModel
@testable import Engine

/// Burrow talking to Burrow over loopback: a seeder and a leecher, each a full `BurrowClient`.
@Suite(.serialized) struct SwarmTests {
    /// A multi-file payload with a nested folder, a zero-length file and a short last piece.
    static func makePayload() -> [(path: [String], data: [UInt8])] {
        var generator = SystemRandomNumberGenerator()
        func random(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) } }
        return [
            (["a.bin"], random(300_000)),
            (["nested", "deeper", "b.bin"], random(1_000_000 + 123)),
            (["empty.txt"], []),
            (["nested", "c.bin"], random(77_777)),
        ]
    }

    static func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("burrow-swarm-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func write(_ files: [(path: [String], data: [UInt8])], name: String, into root: String) throws {
        for file in files {
            let path = ([root, name] + file.path).joined(separator: "/")
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(file.data).write(to: URL(fileURLWithPath: path))
        }
    }

    static func freePort() -> Int { Int.random(in: 20000...40000) }

    static func client(port: Int) -> BurrowClient {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return BurrowClient(configuration: ClientConfiguration(networkPolicy: .unbound, listenPort: port), logger: logger)
    }

    /// Waits for completion, failing after `seconds`.
    static func waitComplete(_ handle: TorrentHandle, seconds: Int) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await handle.waitUntilComplete() }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                throw CancellationError()
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    /// A Burrow client seeding `metainfo` from `directory` (data already there), once its check is done.
    static func startSeeder(_ metainfo: Metainfo, from directory: String, port: Int,
                            uploadRateLimit: Int? = nil) async throws -> (BurrowClient, TorrentHandle) {
        let seeder = client(port: port)
        try await seeder.start()
        let seeding = try await seeder.add(.metainfo(metainfo), options: SessionOptions(
            outputDirectory: directory, seed: true, uploadRateLimit: uploadRateLimit))
        try await waitComplete(seeding, seconds: 20)
        return (seeder, seeding)
    }

    @Test func leecherDownloadsByteIdenticalFromSeeder() async throws {
        let files = Self.makePayload()
        let torrentBytes = try TorrentCreator.create(files: files, name: "payload", pieceLength: 32 * 1024)
        let metainfo = try Metainfo.parse(torrentBytes)
        let seedDir = try Self.temporaryDirectory(), leechDir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: seedDir); try? FileManager.default.removeItem(atPath: leechDir) }
        try Self.write(files, name: "payload", into: seedDir)

        let seedPort = Self.freePort()
        let (seeder, seeding) = try await Self.startSeeder(metainfo, from: seedDir, port: seedPort)
        #expect(try await seeding.status().state == .seeding)

        let leecher = Self.client(port: seedPort + 1)
        try await leecher.start()
        let seedAddress = PeerAddress(parsing: "127.0.0.1:\(seedPort)")!
        let leeching = try await leecher.add(.metainfo(metainfo), options: SessionOptions(outputDirectory: leechDir, extraPeers: [seedAddress]))
        try await Self.waitComplete(leeching, seconds: 30)
        let status = try await leeching.status()
        #expect(status.state == .complete)
        #expect(status.verifiedBytes == metainfo.info.totalLength)
        await leecher.shutdown()
        await seeder.shutdown()

        for file in files {
            let path = ([leechDir, "payload"] + file.path).joined(separator: "/")
            let data = try #require(FileManager.default.contents(atPath: path), "missing \(path)")
            #expect(Array(data) == file.data, "\(file.path.joined(separator: "/")) differs")
        }
    }

    @Test func magnetFetchesMetadataFromPeerThenDownloads() async throws {
        let data = (0..<700_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let torrentBytes = try TorrentCreator.create(singleFile: "movie.bin", data: data, pieceLength: 16 * 1024)
        let metainfo = try Metainfo.parse(torrentBytes)
        let seedDir = try Self.temporaryDirectory(), leechDir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: seedDir); try? FileManager.default.removeItem(atPath: leechDir) }
        try Data(data).write(to: URL(fileURLWithPath: seedDir + "/movie.bin"))

        let seedPort = Self.freePort()
        let (seeder, _) = try await Self.startSeeder(metainfo, from: seedDir, port: seedPort)

        let magnet = try MagnetLink.parse("magnet:?xt=urn:btih:\(metainfo.infoHash.hex)&dn=movie.bin&x.pe=127.0.0.1:\(seedPort)")
        let leecher = Self.client(port: seedPort + 1)
        try await leecher.start()
        let seedAddress = PeerAddress(parsing: magnet.peers[0])!
        let leeching = try await leecher.add(.magnet(magnet), options: SessionOptions(outputDirectory: leechDir, extraPeers: [seedAddress]))
        try await Self.waitComplete(leeching, seconds: 30)
        await leecher.shutdown()
        await seeder.shutdown()
        let downloaded = try #require(FileManager.default.contents(atPath: leechDir + "/movie.bin"))
        #expect(Array(downloaded) == data)
    }

    @Test func restartKeepsVerifiedPiecesWithoutRecheck() async throws {
        let files = Self.makePayload()
        let torrentBytes = try TorrentCreator.create(files: files, name: "payload", pieceLength: 16 * 1024)
        let metainfo = try Metainfo.parse(torrentBytes)
        let seedDir = try Self.temporaryDirectory(), leechDir = try Self.temporaryDirectory()
        let stateDir = try Self.temporaryDirectory()
        defer {
            for directory in [seedDir, leechDir, stateDir] { try? FileManager.default.removeItem(atPath: directory) }
        }
        try Self.write(files, name: "payload", into: seedDir)

        let seedPort = Self.freePort()
        let (seeder, _) = try await Self.startSeeder(metainfo, from: seedDir, port: seedPort, uploadRateLimit: 400 * 1024)

        // First run: stop part-way (the seeder's upload limit keeps it slow enough to catch).
        let seedAddress = PeerAddress(parsing: "127.0.0.1:\(seedPort)")!
        var firstRunPieces = 0
        do {
            let leecher = Self.client(port: seedPort + 1)
            try await leecher.start()
            let leeching = try await leecher.add(.metainfo(metainfo), options: SessionOptions(
                outputDirectory: leechDir, stateDirectory: stateDir, extraPeers: [seedAddress]))
            for _ in 0..<100 {
                try await Task.sleep(for: .milliseconds(100))
                firstRunPieces = try await leeching.status().piecesHad
                if firstRunPieces >= 10 { break }
            }
            try await leeching.stop()
            firstRunPieces = try await leeching.status().piecesHad
            await leecher.shutdown()
        }
        #expect(firstRunPieces >= 10)
        #expect(firstRunPieces < metainfo.info.pieceCount)

        // Second run: the resume data brings back every verified piece before any peer is contacted.
        let leecher = Self.client(port: seedPort + 2)
        try await leecher.start()
        let leeching = try await leecher.add(.metainfo(metainfo), options: SessionOptions(
            outputDirectory: leechDir, stateDirectory: stateDir, extraPeers: [seedAddress]))
        let restored = try await leeching.status().piecesHad
        #expect(restored >= firstRunPieces, "restart lost verified pieces: \(restored) < \(firstRunPieces)")
        try await Self.waitComplete(leeching, seconds: 60)
        await leecher.shutdown()
        await seeder.shutdown()
        for file in files {
            let path = ([leechDir, "payload"] + file.path).joined(separator: "/")
            #expect(Array(try #require(FileManager.default.contents(atPath: path))) == file.data)
        }
    }
}
