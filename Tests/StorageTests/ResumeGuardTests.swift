import Foundation
import NIOCore
@testable import Storage
import SystemPackage
import Testing
import TorrentModel

/// Resume data is checked on load without a full recheck: file identities pick out the files that
/// changed (only their pieces are hashed again), a random sample catches claims that are wrong wholesale,
/// and a normal or kill -9 restart hashes nothing but the sample.
@Suite("Resume data guard")
struct ResumeGuardTests {
    /// a.bin is pieces 0-3, b.bin pieces 4-43 (1 KiB pieces, no piece shared between them).
    static let torrent = TestTorrent(pieceLength: 1024, files: [
        .init(path: ["g", "a.bin"], length: 4096),
        .init(path: ["g", "b.bin"], length: 40960),
    ], seed: 11)

    private func bitfield(_ pieces: some Sequence<Int>) -> Bitfield {
        var bits = Bitfield(count: Self.torrent.info.pieceCount)
        for piece in pieces { bits[piece] = true }
        return bits
    }

    private func write(_ pieces: some Sequence<Int>, _ fixture: Fixture, recordingIn store: ResumeStore? = nil) async throws {
        let storage = try fixture.fileStorage(Self.torrent)
        for piece in pieces {
            try await fixture.write(Self.torrent, piece: piece, to: storage)
            try store?.recordVerified(piece: piece)
        }
        storage.close()
    }

    /// Overwrites `bytes` at `offset` of a file in place (same inode, same size), as an editor or another
    /// program would. Waits first, so the write lands on a later clock tick than anything before it.
    private func overwrite(_ fixture: Fixture, _ relative: String, at offset: UInt64, with bytes: [UInt8]) throws {
        Thread.sleep(forTimeInterval: 0.02)
        let handle = try #require(FileHandle(forWritingAtPath: fixture.path(relative)))
        handle.seek(toFileOffset: offset)
        handle.write(Data(bytes))
        handle.closeFile()
    }

    private func spotCheck(_ claim: ResumeClaim, _ fixture: Fixture) async throws -> (ResumeSpotCheck.Outcome, CountingStorage.Counts) {
        let storage = CountingStorage(wrapping: try fixture.fileStorage(Self.torrent))
        defer { storage.close() }
        let outcome = try await ResumeSpotCheck.run(claim, storage: storage, info: Self.torrent.info, parallelism: 2,
                                                    on: fixture.eventLoop).get()
        return (outcome, storage.counts)
    }

    @Test func aFileEditedAfterItWasCompleteHasOnlyItsPiecesHashedAndItsBadPieceIsNotVerified() async throws {
        try await Fixture.run { fixture in
            let info = Self.torrent.info
            try await write(0..<info.pieceCount, fixture)
            let store = fixture.resumeStore(info)
            try store.reset(have: bitfield(0..<info.pieceCount))
            store.close()
            // Stale snapshot: piece 1 of a.bin is replaced after the snapshot was written.
            try overwrite(fixture, "g/a.bin", at: 1024 + 10, with: [UInt8](repeating: 0xAB, count: 100))

            guard case let .resumed(claim) = try fixture.resumeStore(info).loadResult() else {
                Issue.record("resume data unavailable")
                return
            }
            #expect(claim.changedFiles == ["g/a.bin"])
            #expect(claim.suspect == [0, 1, 2, 3])
            #expect(claim.trusted == bitfield(4..<info.pieceCount))

            let (outcome, counts) = try await spotCheck(claim, fixture)
            var expected = bitfield(0..<info.pieceCount)
            expected[1] = false
            #expect(outcome == .trusted(have: expected, hashed: 4 + ResumeSpotCheck.sampleSize, suspectsFailed: 1))
            // Only a.bin's pieces and the sample were read, not the whole torrent.
            #expect(counts.verifications.count == 4 + ResumeSpotCheck.sampleSize)
        }
    }

    @Test func aFileReplacedWhileStillDownloadingIsHashedAgain() async throws {
        try await Fixture.run { fixture in
            let info = Self.torrent.info
            let store = fixture.resumeStore(info)
            try await write(0..<20, fixture, recordingIn: store)
            try store.compact(have: bitfield(0..<20))
            store.close()
            // b.bin (still downloading) is swapped for another file with the same bytes but one: a new inode.
            var replacement = try #require(fixture.contents("g/b.bin"))
            replacement[2048] ^= 0xFF  // piece 6
            try Data(replacement).write(to: URL(fileURLWithPath: fixture.path("g/b.bin")), options: .atomic)

            guard case let .resumed(claim) = try fixture.resumeStore(info).loadResult() else {
                Issue.record("resume data unavailable")
                return
            }
            #expect(claim.changedFiles == ["g/b.bin"])
            #expect(claim.suspect == Array(4..<20))
            let (outcome, _) = try await spotCheck(claim, fixture)
            guard case let .trusted(have, _, suspectsFailed) = outcome else {
                Issue.record("expected the claim on a.bin to stand, got \(outcome)")
                return
            }
            #expect(suspectsFailed == 1)
            #expect(have == bitfield((0..<20).filter { $0 != 6 }))
        }
    }

    @Test func aPlantedSnapshotClaimingEverythingOverZeroFilledFilesIsNotTrusted() async throws {
        try await Fixture.run { fixture in
            let info = Self.torrent.info
            // Files of the right size, all zeros, and a snapshot claiming every piece whose identities
            // match them exactly (the worst case: forged from `stat`).
            try FileManager.default.createDirectory(atPath: fixture.path("g"), withIntermediateDirectories: true)
            for file in info.files {
                try Data(count: Int(file.length)).write(to: URL(fileURLWithPath: fixture.path(file.relativePath)))
            }
            let planted = fixture.resumeStore(info)
            try planted.reset(have: bitfield(0..<info.pieceCount))
            planted.close()

            guard case let .resumed(claim) = try fixture.resumeStore(info).loadResult() else {
                Issue.record("resume data unavailable")
                return
            }
            #expect(claim.trusted.cardinality == info.pieceCount)  // nothing cheap contradicts it...
            let (outcome, counts) = try await spotCheck(claim, fixture)
            guard case .distrusted(let reason) = outcome else {
                Issue.record("zero-filled pieces were trusted: \(outcome)")
                return
            }
            #expect(reason.contains("fails its hash"))  // ...but the sample does
            #expect(counts.verifications.count == ResumeSpotCheck.sampleSize)
        }
    }

    @Test func aNormalRestartHashesOnlyTheSample() async throws {
        try await Fixture.run { fixture in
            let info = Self.torrent.info
            let store = fixture.resumeStore(info)
            try store.reset(have: bitfield([]))  // at start, before any file exists
            try await write(0..<30, fixture, recordingIn: store)
            try store.compact(have: bitfield(0..<30))  // graceful stop
            store.close()
            guard case let .resumed(claim) = try fixture.resumeStore(info).loadResult() else {
                Issue.record("resume data unavailable")
                return
            }
            #expect(claim == ResumeClaim(trusted: bitfield(0..<30)))
            let (outcome, counts) = try await spotCheck(claim, fixture)
            #expect(outcome == .trusted(have: bitfield(0..<30), hashed: ResumeSpotCheck.sampleSize, suspectsFailed: 0))
            #expect(counts.verifications.count == ResumeSpotCheck.sampleSize)
        }
    }

    @Test func aRestartAfterKillMinus9WithPiecesInFlightHashesOnlyTheSample() async throws {
        try await Fixture.run { fixture in
            let info = Self.torrent.info
            let store = fixture.resumeStore(info)
            try store.reset(have: bitfield([]))
            try await write(0..<10, fixture, recordingIn: store)
            try store.compact(have: bitfield(0..<10))  // periodic compaction: a.bin settled, b.bin not
            try await Task.sleep(for: .milliseconds(20))
            try await write(10..<25, fixture, recordingIn: store)  // journaled after the snapshot
            // Killed while piece 31 was being written: its blocks landed after the last journal record.
            try await Task.sleep(for: .milliseconds(20))
            let storage = try fixture.fileStorage(Self.torrent)
            try await storage.writeBlock(piece: 31, begin: 0, data: ByteBuffer(bytes: Self.torrent.bytes(ofPiece: 31).prefix(512)),
                                         on: fixture.eventLoop).get()
            storage.close()
            // (no compact, no close: kill -9)

            guard case let .resumed(claim) = try fixture.resumeStore(info).loadResult() else {
                Issue.record("resume data unavailable")
                return
            }
            #expect(claim == ResumeClaim(trusted: bitfield(0..<25)), "a kill -9 restart must not recheck anything")
            let (outcome, counts) = try await spotCheck(claim, fixture)
            #expect(outcome == .trusted(have: bitfield(0..<25), hashed: ResumeSpotCheck.sampleSize, suspectsFailed: 0))
            #expect(counts.verifications.count == ResumeSpotCheck.sampleSize)
            store.close()
        }
    }

    @Test func theSampleIsDistinctAndBounded() {
        var generator = SystemRandomNumberGenerator()
        let sample = ResumeSpotCheck.randomSample(of: Array(0..<100), count: 8, using: &generator)
        #expect(sample.count == 8 && Set(sample).count == 8 && sample.allSatisfy { (0..<100).contains($0) })
        #expect(ResumeSpotCheck.randomSample(of: [3, 5], count: 8, using: &generator).sorted() == [3, 5])
    }

    @Test func aFailedSnapshotWriteLeavesNoTemporaryFileAndKeepsTheOldSnapshot() async throws {
        try await Fixture.run { fixture in
            let info = Self.torrent.info
            try await write(0..<info.pieceCount, fixture)
            try fixture.resumeStore(info).reset(have: bitfield([0, 1]))
            // The disk is full: the temp file is created, then nothing fits in it.
            let full = ResumeStore(directory: fixture.resumeFolder, payloadRoot: fixture.root, info: info) { _, _ throws(Errno) in
                throw Errno.noSpace
            }
            let failure = await storageError { try full.compact(have: bitfield([0, 1, 2])) }
            #expect(failure?.description.contains("No space left on device") == true, "\(String(describing: failure))")
            let names = try FileManager.default.contentsOfDirectory(atPath: fixture.resumeFolder).sorted()
            #expect(names == ["\(info.infoHash.hex).journal", "\(info.infoHash.hex).resume"])
            #expect(try fixture.resumeStore(info).load() == bitfield([0, 1]))
            full.close()
        }
    }

    @Test func stateDirectoryDefaultsFollowUserAndEnvironment() {
        let environment = { (values: [String: String]) in { (name: String) in values[name] } }
        #expect(StateDirectory.defaultPath(userID: 0, environment: environment(["HOME": "/root"])) == "/var/lib/burrow")
        #expect(StateDirectory.defaultPath(userID: 1000, environment: environment(["XDG_STATE_HOME": "/s/", "HOME": "/h"]))
                == "/s/burrow")
        #expect(StateDirectory.defaultPath(userID: 1000, environment: environment(["XDG_STATE_HOME": "rel", "HOME": "/h"]))
                == "/h/.local/state/burrow")
        #expect(StateDirectory.defaultPath(userID: 1000, environment: environment([:])) == nil)
        #expect(StateDirectory.resumeFolder(in: "/var/lib/burrow/") == "/var/lib/burrow/resume")
    }

    @Test func aStateDirectoryOverlappingThePayloadIsAConflict() throws {
        try Fixture.runSync { base in
            let output = base + "/out"
            try FileManager.default.createDirectory(atPath: output + "/movie/.state", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: base + "/state", withIntermediateDirectories: true)
            // Beside the output folder: fine, whatever the torrent is called.
            #expect(try StateDirectory.conflict(state: base + "/state", output: output, payloadName: "movie") == nil)
            // Inside the payload (also through a link and "..").
            try FileManager.default.createSymbolicLink(atPath: base + "/link", withDestinationPath: output + "/movie")
            for state in [output + "/movie/.state", base + "/link/.state", output + "/x/../movie/.state"] {
                try FileManager.default.createDirectory(atPath: output + "/x", withIntermediateDirectories: true)
                let conflict = try StateDirectory.conflict(state: state, output: output, payloadName: "movie")
                #expect(conflict?.contains("lies inside the torrent's files") == true, "\(state): \(String(describing: conflict))")
            }
            // A torrent named like the state folder, or an output folder inside the state directory.
            try FileManager.default.createDirectory(atPath: output + "/.burrow", withIntermediateDirectories: true)
            #expect(try StateDirectory.conflict(state: output + "/.burrow", output: output, payloadName: ".burrow") != nil)
            let inside = try StateDirectory.conflict(state: base, output: output, payloadName: "movie")
            #expect(inside?.contains("would lie inside Burrow's state directory") == true)
        }
    }
}

extension Fixture {
    /// A bare temp folder for tests that need no event loop.
    static func runSync(_ body: (String) throws -> Void) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("burrow-state-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        try body(base)
    }
}
