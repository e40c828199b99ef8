import Foundation
import NIOCore
@testable import Storage
import Testing
import TorrentModel

@Suite("Resume data")
struct ResumeStoreTests {
    static let torrent = TestTorrent(pieceLength: 1024, files: [
        .init(path: ["r", "a.bin"], length: 4000),
        .init(path: ["r", "b.bin"], length: 6000),
    ], seed: 3)

    private func bitfield(_ pieces: [Int], count: Int = ResumeStoreTests.torrent.info.pieceCount) -> Bitfield {
        var bits = Bitfield(count: count)
        for piece in pieces { bits[piece] = true }
        return bits
    }

    /// Writes every piece so the files are on disk at full length (resume checks file sizes).
    private func writeAll(_ fixture: Fixture, _ torrent: TestTorrent = ResumeStoreTests.torrent) async throws {
        let storage = try fixture.fileStorage(torrent)
        for piece in 0..<torrent.info.pieceCount { try await fixture.write(torrent, piece: piece, to: storage) }
        storage.close()
    }

    private func appendBytes(_ bytes: [UInt8], to path: String) throws {
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(bytes))
        handle.closeFile()
    }

    @Test func noResumeDataIsReportedWithAReason() async throws {
        try await Fixture.run { fixture async throws in
            let store = fixture.resumeStore(Self.torrent.info)
            #expect(try store.load() == nil)
            #expect(store.lastUnavailableReason?.hasPrefix("there is no resume data at") == true)
        }
    }

    @Test func journalAndSnapshotRoundTrip() async throws {
        try await Fixture.run { fixture in
            try await writeAll(fixture)
            let info = Self.torrent.info
            let store = fixture.resumeStore(info)
            try store.recordVerified(piece: 1)
            try store.recordVerified(piece: 3)
            #expect(store.journalPath == fixture.base + "/state/resume/\(info.infoHash.hex).journal")
            #expect(try fixture.resumeStore(info).load() == bitfield([1, 3]))

            try store.compact(have: bitfield([1, 3, 4]))
            let journalSize = try FileManager.default.attributesOfItem(atPath: store.journalPath)[.size] as? Int
            #expect(journalSize == ResumeJournalFormat.headerSize)  // emptied
            #expect(try fixture.resumeStore(info).load() == bitfield([1, 3, 4]))

            try store.recordVerified(piece: 6)
            #expect(try fixture.resumeStore(info).load() == bitfield([1, 3, 4, 6]))
            store.close()
            #expect(fixture.openDescriptorPaths() == [])
            // Only the two resume files live in the resume folder (temp files were renamed away).
            let names = try FileManager.default.contentsOfDirectory(atPath: fixture.resumeFolder).sorted()
            #expect(names == ["\(info.infoHash.hex).journal", "\(info.infoHash.hex).resume"])
        }
    }

    @Test func killWithoutCompactingLosesNothing() async throws {
        try await Fixture.run { fixture in
            try await writeAll(fixture)
            let info = Self.torrent.info
            // First run: compacts once, then verifies more pieces and is killed (no compact, no close).
            let firstRun = fixture.resumeStore(info)
            try firstRun.recordVerified(piece: 0)
            try firstRun.compact(have: bitfield([0]))
            for piece in [2, 5, 9] { try firstRun.recordVerified(piece: piece) }
            let restarted = fixture.resumeStore(info)
            #expect(try restarted.load() == bitfield([0, 2, 5, 9]))
            // The restarted process keeps journaling after what it found.
            try restarted.recordVerified(piece: 7)
            #expect(try fixture.resumeStore(info).load() == bitfield([0, 2, 5, 7, 9]))
            firstRun.close()
            restarted.close()
        }
    }

    @Test func aKillInsideCompactionLosesNothing() async throws {
        try await Fixture.run { fixture in
            try await writeAll(fixture)
            let info = Self.torrent.info
            let store = fixture.resumeStore(info)
            try store.compact(have: bitfield([0]))  // epoch 1
            try store.recordVerified(piece: 4)
            store.close()
            // Compaction's first step done (snapshot of epoch 2 renamed in), killed before the journal swap:
            // the epoch-1 journal must be ignored, and nothing is lost since the snapshot holds it all.
            let newer = ResumeSnapshot(info: info, epoch: 2, have: bitfield([0, 4, 8])).encoded()
            try Data(newer).write(to: URL(fileURLWithPath: store.snapshotPath))
            #expect(try fixture.resumeStore(info).load() == bitfield([0, 4, 8]))
            // A leftover temp file from a kill before the rename is ignored too.
            try Data("garbage".utf8).write(to: URL(fileURLWithPath: store.snapshotPath + ".tmp"))
            let resumed = fixture.resumeStore(info)
            #expect(try resumed.load() == bitfield([0, 4, 8]))
            // Journaling resumes in the snapshot's epoch.
            try resumed.recordVerified(piece: 6)
            #expect(try fixture.resumeStore(info).load() == bitfield([0, 4, 6, 8]))
            resumed.close()
        }
    }

    @Test func tornAndZeroedJournalRecordsAreIgnored() async throws {
        try await Fixture.run { fixture in
            try await writeAll(fixture)
            let info = Self.torrent.info
            let store = fixture.resumeStore(info)
            try store.recordVerified(piece: 2)
            try store.recordVerified(piece: 5)
            store.close()
            // Killed mid-append: three bytes of a record.
            try appendBytes(Array(ResumeJournalFormat.record(piece: 8).prefix(3)), to: store.journalPath)
            #expect(try fixture.resumeStore(info).load() == bitfield([2, 5]))
            // The next run cuts the torn bytes off before appending, so its records stay readable.
            let next = fixture.resumeStore(info)
            try next.recordVerified(piece: 7)
            next.close()
            #expect(try fixture.resumeStore(info).load() == bitfield([2, 5, 7]))
            // A zero-filled record (what a crash can leave after a size update) does not claim piece 0.
            try appendBytes([UInt8](repeating: 0, count: 8), to: store.journalPath)
            // Nor does a record naming a piece past the end.
            try appendBytes(ResumeJournalFormat.record(piece: 500), to: store.journalPath)
            #expect(try fixture.resumeStore(info).load() == bitfield([2, 5, 7]))
        }
    }

    @Test func resumeDataOfAnotherTorrentIsRejected() async throws {
        try await Fixture.run { fixture in
            try await writeAll(fixture)
            let info = Self.torrent.info
            let store = fixture.resumeStore(info)
            try store.compact(have: bitfield([1, 2]))
            store.close()
            // Same layout, different identity; its files were copied over ours.
            let other = TestTorrent(pieceLength: 1024, files: [
                .init(path: ["r", "a.bin"], length: 4000), .init(path: ["r", "b.bin"], length: 6000),
            ], seed: 4)
            let otherStore = fixture.resumeStore(other.info)
            try FileManager.default.copyItem(atPath: store.snapshotPath, toPath: otherStore.snapshotPath)
            #expect(try otherStore.load() == nil)
            #expect(otherStore.lastUnavailableReason?.contains("belongs to info hash \(info.infoHash.hex)") == true)

            try FileManager.default.removeItem(atPath: otherStore.snapshotPath)
            try FileManager.default.copyItem(atPath: store.journalPath, toPath: otherStore.journalPath)
            #expect(try otherStore.load() == nil)
            #expect(otherStore.lastUnavailableReason?.contains("journal") == true)
        }
    }

    @Test func corruptOrMismatchedSnapshotAsksForRecheck() async throws {
        try await Fixture.run { fixture in
            try await writeAll(fixture)
            let info = Self.torrent.info
            let store = fixture.resumeStore(info)
            try FileManager.default.createDirectory(atPath: fixture.resumeFolder, withIntermediateDirectories: true)
            try Data("d4:spam".utf8).write(to: URL(fileURLWithPath: store.snapshotPath))
            guard case let .unavailable(reason) = try store.loadResult() else {
                Issue.record("a corrupt snapshot was accepted")
                return
            }
            #expect(reason.contains("is corrupt: not a bencoded dictionary"))

            // A snapshot for a different piece count (same info hash: a damaged or hand-edited file).
            let smaller = TestTorrent(pieceLength: 1024, files: [.init(path: ["r", "a.bin"], length: 4000)], seed: 3)
            let wrongShape = TorrentInfo(name: info.name, pieceLength: 1024, pieceHashes: smaller.info.pieceHashes,
                                         files: smaller.info.files, totalLength: 4000, isPrivate: false, rawBytes: [],
                                         infoHash: info.infoHash)
            try Data(ResumeSnapshot(info: wrongShape, epoch: 1, have: Bitfield(count: 4)).encoded())
                .write(to: URL(fileURLWithPath: store.snapshotPath))
            #expect(try store.load() == nil)
            #expect(store.lastUnavailableReason?.contains("it records 4 pieces, the torrent has 10") == true)

            // After a recheck the engine resets: from then on resume works again.
            try store.reset(have: bitfield([3]))
            #expect(try store.load() == bitfield([3]))
            store.close()
        }
    }

    @Test func piecesWhoseFilesShrankAreDropped() async throws {
        try await Fixture.run { fixture in
            try await writeAll(fixture)
            let info = Self.torrent.info
            let store = fixture.resumeStore(info)
            for piece in [0, 3, 4, 9] { try store.recordVerified(piece: piece) }
            store.close()
            // b.bin (bytes 4000..<10000) cut to 1000 bytes: piece 3 (3072..<4096) needs 96 of them and
            // survives; pieces 4 and 9 need more and are dropped.
            #expect(truncate(fixture.path("r/b.bin"), 1000) == 0)
            let result = try fixture.resumeStore(info).loadResult()
            #expect(result == .resumed(ResumeClaim(trusted: bitfield([0, 3]), dropped: [4, 9])))
            // A missing file drops every piece that touches it.
            try FileManager.default.removeItem(atPath: fixture.path("r/a.bin"))
            #expect(try fixture.resumeStore(info).load() == bitfield([]))
        }
    }

    @Test func compactKeepsJournaledPiecesButResetForgets() async throws {
        try await Fixture.run { fixture in
            try await writeAll(fixture)
            let info = Self.torrent.info
            let store = fixture.resumeStore(info)
            try store.recordVerified(piece: 8)
            try store.compact(have: bitfield([1]))  // 8 was journaled before: kept
            #expect(try store.load() == bitfield([1, 8]))
            try store.reset(have: bitfield([1]))    // after a recheck found 8 bad
            #expect(try store.load() == bitfield([1]))
            let wrongSize = await storageError { try store.compact(have: Bitfield(count: 3)) }
            #expect(wrongSize == .invalidArgument("the bitfield has 3 pieces but the torrent has 10"))
            let badPiece = await storageError { try store.recordVerified(piece: 10) }
            #expect(badPiece == .outOfBounds(piece: 10, begin: 0, length: 0, reason: "the torrent has 10 pieces"))
            store.close()
        }
    }

    @Test func futureVariantsRunOnTheThreadPool() async throws {
        try await Fixture.run { fixture in
            try await writeAll(fixture)
            let store = fixture.resumeStore(Self.torrent.info)
            try await store.recordVerified(piece: 2, threadPool: fixture.threadPool, on: fixture.eventLoop).get()
            try await store.compact(have: bitfield([2, 3]), threadPool: fixture.threadPool, on: fixture.eventLoop).get()
            let loaded = try await store.load(threadPool: fixture.threadPool, on: fixture.eventLoop).get()
            #expect(loaded == bitfield([2, 3]))
            store.close()
        }
    }

    @Test func snapshotEncodingRoundTrips() throws {
        let snapshot = ResumeSnapshot(info: Self.torrent.info, epoch: 42, have: bitfield([0, 9]))
        #expect(try ResumeSnapshot.decode(snapshot.encoded()) == snapshot)
        #expect(throws: ResumeSnapshotError.self) { try ResumeSnapshot.decode(snapshot.encoded() + [0x65]) }
        #expect(throws: ResumeSnapshotError.self) { try ResumeSnapshot.decode(Array(snapshot.encoded().dropLast())) }
    }
}
