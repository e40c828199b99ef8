import Foundation
import Logging
import Testing
import TorrentModel
@testable import Engine
@testable import Storage

/// Burrow's own files live in the state directory, out of every torrent's reach, and what they claim is
/// checked before it counts.
@Suite(.serialized) struct StateDirectoryTests {
    /// A torrent whose file is all zeros on disk, as after an interrupted first run (sparse file).
    struct Victim {
        let metainfo: Metainfo
        let output: String
        let state: String

        init() throws {
            var generator = SystemRandomNumberGenerator()
            let data = (0..<(256 * 1024)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            metainfo = try Metainfo.parse(try TorrentCreator.create(singleFile: "victim.bin", data: data, pieceLength: 16 * 1024))
            let base = try SwarmTests.temporaryDirectory()
            output = base + "/out"
            state = base + "/state"
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            try Data(count: data.count).write(to: URL(fileURLWithPath: output + "/victim.bin"))
        }

        var info: TorrentInfo { metainfo.info }

        /// A snapshot claiming every piece, as a hostile torrent would deliver it.
        var plantedSnapshot: Data {
            Data(ResumeSnapshot(info: info, epoch: 1, have: Bitfield(count: info.pieceCount, allSet: true)).encoded())
        }

        func plant(at folder: String) throws {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try plantedSnapshot.write(to: URL(fileURLWithPath: folder + "/\(info.infoHash.hex).resume"))
        }

        func remove() { try? FileManager.default.removeItem(atPath: (output as NSString).deletingLastPathComponent) }

        /// Pieces the session reports verified once it has looked at the data (no peers involved).
        func piecesHadAfterStart(stateDirectory: String?) async throws -> Int {
            let client = SwarmTests.client(port: SwarmTests.freePort())
            try await client.start()
            let handle = try await client.add(.metainfo(metainfo),
                                              options: SessionOptions(outputDirectory: output, stateDirectory: stateDirectory))
            let had = try await handle.status().piecesHad
            await client.shutdown()
            return had
        }
    }

    /// The attack on the old layout: a torrent named `.burrow` with a file `<victim's info hash>.resume`
    /// lands exactly on the victim's resume snapshot in a shared output folder, and the victim then
    /// reported zero-filled pieces as verified. Now that path is plain payload and is never read.
    @Test func aResumeSnapshotPlantedInTheOutputFolderIsNeverRead() async throws {
        let victim = try Victim()
        defer { victim.remove() }
        try victim.plant(at: victim.output + "/.burrow")
        #expect(try await victim.piecesHadAfterStart(stateDirectory: victim.state) == 0)
        // The planted file is left alone (it is some torrent's payload), and real resume data went elsewhere.
        #expect(FileManager.default.fileExists(atPath: victim.output + "/.burrow/\(victim.info.infoHash.hex).resume"))
        #expect(FileManager.default.fileExists(atPath: victim.state + "/resume/\(victim.info.infoHash.hex).resume"))
    }

    /// Even resume data in the state directory is not believed blindly: the spot check hashes a sample.
    @Test func aSnapshotPlantedInTheStateDirectoryIsNotTrusted() async throws {
        let victim = try Victim()
        defer { victim.remove() }
        try victim.plant(at: StateDirectory.resumeFolder(in: victim.state))
        #expect(try await victim.piecesHadAfterStart(stateDirectory: victim.state) == 0)
    }

    @Test func aTorrentWhosePayloadWouldHoldTheStateDirectoryIsRefused() async throws {
        let victim = try Victim()
        defer { victim.remove() }
        let client = SwarmTests.client(port: SwarmTests.freePort())
        try await client.start()
        // A torrent named "victim.bin" with the state directory configured below <output>/victim.bin/.
        try FileManager.default.removeItem(atPath: victim.output + "/victim.bin")
        try FileManager.default.createDirectory(atPath: victim.output + "/victim.bin/state", withIntermediateDirectories: true)
        do {
            _ = try await client.add(.metainfo(victim.metainfo), options: SessionOptions(
                outputDirectory: victim.output, stateDirectory: victim.output + "/victim.bin/state"))
            Issue.record("a state directory inside the payload was accepted")
        } catch {
            #expect("\(error)".contains("lies inside the torrent's files"), "\(error)")
        }
        // And an output folder inside the state directory.
        do {
            _ = try await client.add(.metainfo(victim.metainfo), options: SessionOptions(
                outputDirectory: victim.output, stateDirectory: (victim.output as NSString).deletingLastPathComponent))
            Issue.record("a payload inside the state directory was accepted")
        } catch {
            #expect("\(error)".contains("would lie inside Burrow's state directory"), "\(error)")
        }
        await client.shutdown()
    }
}
