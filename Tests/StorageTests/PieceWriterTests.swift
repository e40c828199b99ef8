import NIOConcurrencyHelpers
import NIOCore
import Storage
import Testing
import TorrentModel

@Suite("Piece writer: write-through with streaming hash")
struct PieceWriterTests {
    /// Three files, a padding file and a short last piece: blocks cross file boundaries.
    static let torrent = TestTorrent(pieceLength: 4096, files: [
        .init(path: ["w", "a"], length: 5000),
        .init(path: ["w", ".pad", "x"], length: 120, isPadding: true),
        .init(path: ["w", "b"], length: 9000),
    ], seed: 11)

    /// Collects the writer's reports, as the session does on its event loop.
    final class Reports: Sendable {
        private let state = NIOLockedValueBox<(verdicts: [Int: PieceWriter.Verdict], bytes: Int, errors: [String])>(([:], 0, []))
        func add(_ report: PieceWriter.Report) {
            state.withLockedValue { state in
                state.bytes += report.bytesDone
                for (piece, verdict) in report.verdicts { state.verdicts[piece] = verdict }
                if let error = report.error { state.errors.append("piece \(error.piece): \(error.message)") }
            }
        }
        var verdicts: [Int: PieceWriter.Verdict] { state.withLockedValue(\.verdicts) }
        var bytesDone: Int { state.withLockedValue(\.bytes) }
        var errors: [String] { state.withLockedValue(\.errors) }
    }

    private func blocks(of bytes: [UInt8], size: Int) -> [(begin: Int, data: ByteBuffer)] {
        stride(from: 0, to: bytes.count, by: size).map { begin in
            (begin, ByteBuffer(bytes: bytes[begin..<min(begin + size, bytes.count)]))
        }
    }

    private func writer(_ storage: any PieceStorage, _ fixture: Fixture, _ reports: Reports) -> PieceWriter {
        PieceWriter(storage: storage, info: Self.torrent.info, threadPool: fixture.threadPool,
                    eventLoop: fixture.eventLoop) { reports.add($0) }
    }

    /// Enqueues `bytes` as piece `piece` in blocks of `blockSize`, in order, then its finish.
    private func enqueuePiece(_ bytes: [UInt8], piece: Int, blockSize: Int, to writer: PieceWriter) {
        for block in blocks(of: bytes, size: blockSize) { writer.enqueueWrite(piece: piece, begin: block.begin, data: block.data) }
        writer.enqueueFinish(piece: piece)
    }

    @Test func inOrderBlocksAreWrittenOnceAndVerifiedWithoutReadingBack() async throws {
        try await Fixture.run { fixture in
            let torrent = Self.torrent
            let counting = CountingStorage(wrapping: try fixture.fileStorage(torrent))
            let reports = Reports()
            let writer = writer(counting, fixture, reports)
            for piece in 0..<torrent.info.pieceCount {
                enqueuePiece(torrent.bytes(ofPiece: piece), piece: piece, blockSize: 1024, to: writer)
            }
            try await writer.flushed().get()
            #expect(reports.verdicts == Dictionary(uniqueKeysWithValues: (0..<torrent.info.pieceCount).map { ($0, .verified) }))
            #expect(reports.bytesDone == Int(torrent.info.totalLength))
            #expect(reports.errors.isEmpty)
            #expect(counting.counts.totalBytesWritten == Int(torrent.info.totalLength))
            #expect(counting.counts.totalBytesRead == 0, "in-order blocks are hashed from memory")
            #expect(fixture.contents("w/a") == torrent.bytes(ofFile: 0))
            #expect(fixture.contents("w/b") == torrent.bytes(ofFile: 2))
        }
    }

    @Test func outOfOrderBlocksAreHashedByReadingBack() async throws {
        try await Fixture.run { fixture in
            let torrent = Self.torrent
            let counting = CountingStorage(wrapping: InMemoryStorage(info: torrent.info))
            let reports = Reports()
            let writer = writer(counting, fixture, reports)
            // Piece 0: last block first, then the rest backwards; piece 1: odd blocks, then even ones.
            let piece0 = blocks(of: torrent.bytes(ofPiece: 0), size: 1024)
            for block in piece0.reversed() { writer.enqueueWrite(piece: 0, begin: block.begin, data: block.data) }
            writer.enqueueFinish(piece: 0)
            let piece1 = blocks(of: torrent.bytes(ofPiece: 1), size: 1000)
            for (index, block) in piece1.enumerated() where index % 2 == 1 { writer.enqueueWrite(piece: 1, begin: block.begin, data: block.data) }
            for (index, block) in piece1.enumerated() where index % 2 == 0 { writer.enqueueWrite(piece: 1, begin: block.begin, data: block.data) }
            writer.enqueueFinish(piece: 1)
            try await writer.flushed().get()
            #expect(reports.verdicts == [0: .verified, 1: .verified])
            #expect(counting.counts.bytesRead[0] == 3 * 1024, "the three blocks after the first were read back")
            #expect((counting.counts.bytesRead[1] ?? 0) > 0)
        }
    }

    @Test func corruptBlockFailsItsPieceOnlyAndARewriteThenVerifies() async throws {
        try await Fixture.run { fixture in
            let torrent = Self.torrent
            let storage = InMemoryStorage(info: torrent.info)
            let reports = Reports()
            let writer = writer(storage, fixture, reports)
            var bad = torrent.bytes(ofPiece: 2)
            bad[100] ^= 0xFF
            enqueuePiece(bad, piece: 2, blockSize: 2048, to: writer)
            enqueuePiece(torrent.bytes(ofPiece: 3), piece: 3, blockSize: 2048, to: writer)
            try await writer.flushed().get()
            #expect(reports.verdicts == [2: .failedHash, 3: .verified])
            // The failed piece starts over: downloaded again and written over the bad bytes.
            enqueuePiece(torrent.bytes(ofPiece: 2), piece: 2, blockSize: 2048, to: writer)
            try await writer.flushed().get()
            #expect(reports.verdicts[2] == .verified)
            #expect(storage.bytes(ofPiece: 2) == torrent.bytes(ofPiece: 2))
        }
    }

    @Test func aRewriteInsideTheHashedPrefixIsRehashedFromDisk() async throws {
        try await Fixture.run { fixture in
            let torrent = Self.torrent
            let storage = InMemoryStorage(info: torrent.info)
            let reports = Reports()
            let writer = writer(storage, fixture, reports)
            let good = blocks(of: torrent.bytes(ofPiece: 0), size: 1024)
            var wrong = torrent.bytes(ofPiece: 0)
            wrong[5] ^= 1
            // A wrong first block, then the right one over it: the disk ends up right, so must the verdict.
            writer.enqueueWrite(piece: 0, begin: 0, data: ByteBuffer(bytes: wrong[0..<1024]))
            for block in good { writer.enqueueWrite(piece: 0, begin: block.begin, data: block.data) }
            writer.enqueueFinish(piece: 0)
            try await writer.flushed().get()
            #expect(reports.verdicts == [0: .verified])
        }
    }

    @Test func heldBlocksReachTheDiskByTheNextBarrier() async throws {
        try await Fixture.run { fixture in
            let torrent = Self.torrent
            let storage = InMemoryStorage(info: torrent.info)
            let reports = Reports()
            let writer = writer(storage, fixture, reports)
            // Two blocks of a piece that is not finished: they wait in a run until something flushes it.
            let piece = torrent.bytes(ofPiece: 1)
            writer.enqueueWrite(piece: 1, begin: 0, data: ByteBuffer(bytes: piece[0..<1000]))
            writer.enqueueWrite(piece: 1, begin: 1000, data: ByteBuffer(bytes: piece[1000..<2000]))
            try await writer.flushed().get()
            #expect(Array(storage.bytes(ofPiece: 1)[0..<2000]) == Array(piece[0..<2000]))
            #expect(reports.bytesDone == 2000)
            #expect(reports.verdicts.isEmpty)
        }
    }

    @Test func vectoredWritesLandAcrossFilesAndSkipPadding() async throws {
        try await Fixture.run { fixture in
            let torrent = Self.torrent
            let storage = try fixture.fileStorage(torrent)
            // Piece 1 covers the end of w/a (904 bytes), all 120 bytes of padding and the start of w/b.
            let piece = torrent.bytes(ofPiece: 1)
            let parts = [ByteBuffer(bytes: piece[0..<700]), ByteBuffer(bytes: piece[700..<1500]), ByteBuffer(bytes: piece[1500...])]
            try storage.writeNow(parts, piece: 1, begin: 0)
            for other in [0, 2, 3] {
                try storage.writeNow([ByteBuffer(bytes: torrent.bytes(ofPiece: other))], piece: other, begin: 0)
            }
            #expect(fixture.contents("w/a") == torrent.bytes(ofFile: 0))
            #expect(fixture.contents("w/b") == torrent.bytes(ofFile: 2))
            #expect(!fixture.exists(fixture.path("w/.pad/x")), "padding never reaches the disk")
            for index in 0..<torrent.info.pieceCount {
                #expect(try await storage.verifyPiece(index, on: fixture.eventLoop).get())
            }
        }
    }

    @Test func aWriteErrorIsReportedWithItsPiece() async throws {
        try await Fixture.run { fixture in
            let torrent = Self.torrent
            let storage = FaultInjectingStorage(wrapping: InMemoryStorage(info: torrent.info))
            storage.faults.failingWritePieces = [1]
            let reports = Reports()
            let writer = writer(storage, fixture, reports)
            for piece in 0..<2 { enqueuePiece(torrent.bytes(ofPiece: piece), piece: piece, blockSize: 4096, to: writer) }
            try await writer.flushed().get()
            #expect(reports.verdicts[0] == .verified)
            #expect(reports.verdicts[1] == nil)
            #expect(reports.errors == ["piece 1: writing piece 1: Input/output error (injected fault)"])
            #expect(reports.bytesDone == 2 * 4096, "failed writes still count as done for the backlog")
        }
    }
}

@Suite("Piece writer lanes")
struct PieceWriterLaneTests {
    @Test(arguments: [1, 2, 3])
    func everyLaneCountWritesAndVerifiesEveryPiece(lanes: Int) async throws {
        try await Fixture.run { fixture in
            let torrent = PieceWriterTests.torrent
            let storage = InMemoryStorage(info: torrent.info)
            let reports = PieceWriterTests.Reports()
            let writer = PieceWriter(storage: storage, info: torrent.info, threadPool: fixture.threadPool,
                                     eventLoop: fixture.eventLoop, lanes: lanes) { reports.add($0) }
            // Blocks of all pieces interleaved, as several peers deliver them.
            let blockSize = 512
            let pieces = 0..<torrent.info.pieceCount
            let longest = pieces.map { torrent.info.length(ofPiece: $0) }.max()!
            for begin in stride(from: 0, to: longest, by: blockSize) {
                for piece in pieces where begin < torrent.info.length(ofPiece: piece) {
                    let bytes = torrent.bytes(ofPiece: piece)
                    writer.enqueueWrite(piece: piece, begin: begin, data: ByteBuffer(bytes: bytes[begin..<min(begin + blockSize, bytes.count)]))
                }
            }
            for piece in pieces { writer.enqueueFinish(piece: piece) }
            try await writer.flushed().get()
            #expect(reports.verdicts == Dictionary(uniqueKeysWithValues: pieces.map { ($0, PieceWriter.Verdict.verified) }))
            #expect(storage.contents == torrent.content)
        }
    }
}
