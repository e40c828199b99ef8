import Foundation
import Logging
import NIOConcurrencyHelpers
import Storage
import Testing
import TorrentModel
@testable import Engine

/// A disk that stalls must not turn into memory: the session stops reading from its peers once its
/// backlog of unwritten blocks passes the high-water mark, and goes on by itself when the disk recovers.
@Suite(.serialized) struct DiskBackpressureTests {
    @Test func aStalledDiskPausesReadingAndTheDownloadFinishesWhenItRecovers() async throws {
        var generator = SystemRandomNumberGenerator()
        let files = [(path: ["big.bin"], data: (0..<(12 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) })]
        let metainfo = try Metainfo.parse(try TorrentCreator.create(files: files, name: "stall", pieceLength: 256 * 1024))
        let seedDir = try SwarmTests.temporaryDirectory(), leechDir = try SwarmTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: seedDir); try? FileManager.default.removeItem(atPath: leechDir) }
        try SwarmTests.write(files, name: "stall", into: seedDir)

        let seedPort = SwarmTests.freePort()
        let (seeder, _) = try await SwarmTests.startSeeder(metainfo, from: seedDir, port: seedPort)
        let leecher = SwarmTests.client(port: seedPort + 1)
        try await leecher.start()
        let gate = NIOLockedValueBox<GatedStorage?>(nil)
        let options = SessionOptions(outputDirectory: leechDir, extraPeers: [PeerAddress(parsing: "127.0.0.1:\(seedPort)")!],
                                     storageMiddleware: { base in
                                         let gated = GatedStorage(wrapping: base)
                                         gate.withLockedValue { $0 = gated }
                                         return gated
                                     })
        let leeching = try await leecher.add(.metainfo(metainfo), options: options)

        // The disk takes nothing: reading must stop near the high-water mark.
        var status = try await leeching.status()
        for _ in 0..<100 where !status.waitingForDisk {
            try await Task.sleep(for: .milliseconds(100))
            status = try await leeching.status()
        }
        #expect(status.waitingForDisk, "reads never paused; backlog \(status.diskBacklog) bytes")
        // What is already in flight in one read burst may still land, and nothing more.
        let slack = 1 << 20
        let pausedAt = status.downloadedTotal
        try await Task.sleep(for: .seconds(1))
        status = try await leeching.status()
        #expect(status.waitingForDisk)
        #expect(status.diskBacklog <= TorrentSession.diskBacklogHigh + slack, "backlog grew to \(status.diskBacklog) bytes")
        #expect(status.downloadedTotal - pausedAt <= Int64(slack), "kept reading while the disk was stalled")
        #expect(status.verifiedBytes == 0)

        // The disk recovers: the download resumes by itself and completes byte-identical.
        try #require(gate.withLockedValue { $0 }).open()
        try await SwarmTests.waitComplete(leeching, seconds: 60)
        status = try await leeching.status()
        #expect(status.state == .complete)
        #expect(!status.waitingForDisk)
        #expect(status.diskBacklog == 0)
        await leecher.shutdown()
        await seeder.shutdown()
        let data = try #require(FileManager.default.contents(atPath: leechDir + "/stall/big.bin"))
        #expect(Array(data) == files[0].data)
    }
}
