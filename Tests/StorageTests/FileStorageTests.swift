import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Storage
import Testing
import TorrentModel

@Suite("FileStorage")
struct FileStorageTests {
    /// Nested folders, a zero-length file, a 7-byte file and a short last piece, written in 500-byte
    /// blocks so blocks straddle file boundaries.
    static let nested = TestTorrent(pieceLength: 1024, files: [
        .init(path: ["t", "a.bin"], length: 3000),
        .init(path: ["t", "sub", "deeper", "empty.txt"], length: 0),
        .init(path: ["t", "sub", "c.bin"], length: 5000),
        .init(path: ["t", "d.bin"], length: 7),
    ])

    @Test func multiFileLayoutMatchesTheByteStream() async throws {
        try await Fixture.run { fixture in
            let torrent = Self.nested
            let storage = try fixture.fileStorage(torrent)
            defer { storage.close() }
            // The zero-length file exists from the start; the others appear when written.
            #expect(fixture.contents("t/sub/deeper/empty.txt") == [])
            #expect(fixture.contents("t/a.bin") == nil)

            #expect(torrent.info.pieceCount == 8)
            #expect(torrent.info.length(ofPiece: 7) == 8007 - 7 * 1024)
            for piece in 0..<torrent.info.pieceCount {
                try await fixture.write(torrent, piece: piece, to: storage, blockSize: 500)
            }
            #expect(fixture.contents("t/a.bin") == torrent.bytes(ofFile: 0))
            #expect(fixture.contents("t/sub/deeper/empty.txt") == [])
            #expect(fixture.contents("t/sub/c.bin") == torrent.bytes(ofFile: 2))
            #expect(fixture.contents("t/d.bin") == torrent.bytes(ofFile: 3))
            for piece in 0..<torrent.info.pieceCount {
                #expect(try await storage.verifyPiece(piece, on: fixture.eventLoop).get(), "piece \(piece)")
            }
            // A block crossing a.bin → c.bin, and the short last piece's tail.
            let crossing = try await fixture.read(from: storage, piece: 2, begin: 900, length: 124)
            #expect(crossing == Array(torrent.content[2948..<3072]))
            let tail = try await fixture.read(from: storage, piece: 7, begin: 800, length: 39)
            #expect(tail == Array(torrent.content[(7168 + 800)..<8007]))
        }
    }

    @Test func oneBlockSpanningThreeFilesIsSplitAcrossThem() async throws {
        try await Fixture.run { fixture in
            let torrent = TestTorrent(pieceLength: 256, files: [
                .init(path: ["s", "one"], length: 100),
                .init(path: ["s", "two"], length: 50),
                .init(path: ["s", "three"], length: 100),
            ])
            let storage = try fixture.fileStorage(torrent)
            defer { storage.close() }
            try await fixture.write(torrent, piece: 0, to: storage)  // one 250-byte block
            #expect(fixture.contents("s/one") == torrent.bytes(ofFile: 0))
            #expect(fixture.contents("s/two") == torrent.bytes(ofFile: 1))
            #expect(fixture.contents("s/three") == torrent.bytes(ofFile: 2))
            let middle = try await fixture.read(from: storage, piece: 0, begin: 90, length: 70)
            #expect(middle == Array(torrent.content[90..<160]))
            #expect(try await storage.verifyPiece(0, on: fixture.eventLoop).get())
        }
    }

    @Test func paddingFilesNeverReachTheDiskAndReadAsZeros() async throws {
        try await Fixture.run { fixture in
            let torrent = TestTorrent(pieceLength: 1024, files: [
                .init(path: ["p", "a"], length: 1000),
                .init(path: ["p", ".pad", "24"], length: 24, isPadding: true),
                .init(path: ["p", "b"], length: 1000),
            ])
            let storage = try fixture.fileStorage(torrent)
            defer { storage.close() }
            // A peer may send anything for padding bytes: they are dropped.
            var piece0 = torrent.bytes(ofPiece: 0)
            for i in 1000..<1024 { piece0[i] = 0xAB }
            try await fixture.write(torrent, piece: 0, to: storage, override: piece0)
            try await fixture.write(torrent, piece: 1, to: storage)
            #expect(!fixture.exists(fixture.path("p/.pad")))
            #expect(fixture.contents("p/a") == torrent.bytes(ofFile: 0))
            #expect(fixture.contents("p/b") == torrent.bytes(ofFile: 2))
            #expect(try await fixture.read(from: storage, piece: 0, begin: 990, length: 34)
                == Array(torrent.content[990..<1000]) + [UInt8](repeating: 0, count: 24))
            #expect(try await storage.verifyPiece(0, on: fixture.eventLoop).get())
            #expect(try await storage.verifyPiece(1, on: fixture.eventLoop).get())
        }
    }

    @Test func filesAreCreatedSparseAtFullLength() async throws {
        try await Fixture.run { fixture in
            let length = 64 << 20
            let pieceLength = 1 << 20
            let entry = FileEntry(path: ["big.bin"], length: Int64(length), offset: 0)
            let info = TorrentInfo(name: "big.bin", pieceLength: pieceLength,
                                   pieceHashes: [UInt8](repeating: 0, count: 20 * (length / pieceLength)),
                                   files: [entry], totalLength: Int64(length), isPrivate: false, rawBytes: [],
                                   infoHash: InfoHash(bytes: [UInt8](repeating: 7, count: 20))!)
            let storage = try FileStorage(info: info, root: fixture.root, threadPool: fixture.threadPool)
            defer { storage.close() }
            let block = ByteBuffer(bytes: [UInt8](repeating: 0x5A, count: 16384))
            try await storage.writeBlock(piece: 63, begin: pieceLength - 16384, data: block, on: fixture.eventLoop).get()
            var info2 = stat()
            #expect(lstat(fixture.path("big.bin"), &info2) == 0)
            #expect(Int(info2.st_size) == length)
            // Allocated bytes: the one block (plus filesystem slack), nowhere near 64 MiB of zeros.
            #expect(Int(info2.st_blocks) * 512 < 4 << 20)
        }
    }

    @Test func verifyTellsGoodFromCorruptAndMissing() async throws {
        try await Fixture.run { fixture in
            let torrent = Self.nested
            let storage = try fixture.fileStorage(torrent)
            defer { storage.close() }
            var corrupt = torrent.bytes(ofPiece: 0)
            corrupt[512] ^= 0x01
            try await fixture.write(torrent, piece: 0, to: storage, override: corrupt)
            #expect(try await storage.verifyPiece(0, on: fixture.eventLoop).get() == false)
            try await fixture.write(torrent, piece: 0, to: storage)
            #expect(try await storage.verifyPiece(0, on: fixture.eventLoop).get())
            // Piece 5 lies in c.bin, never written: not valid, and not an error either.
            #expect(try await storage.verifyPiece(5, on: fixture.eventLoop).get() == false)
        }
    }

    @Test func readingAFileNotYetCreatedFailsNamingIt() async throws {
        try await Fixture.run { fixture in
            let storage = try fixture.fileStorage(Self.nested)
            defer { storage.close() }
            let error = await storageError {
                _ = try await fixture.read(from: storage, piece: 3, begin: 0, length: 16)
            }
            #expect(error == .fileMissing(operation: .reading, path: "t/sub/c.bin"))
            #expect(error?.description == "reading t/sub/c.bin: the file does not exist yet")
        }
    }

    @Test func requestsOutsideThePieceAreRefused() async throws {
        try await Fixture.run { fixture in
            let torrent = Self.nested
            let storage = try fixture.fileStorage(torrent)
            defer { storage.close() }
            let tooLong = await storageError {
                try await storage.writeBlock(piece: 7, begin: 800, data: ByteBuffer(bytes: [UInt8](repeating: 1, count: 40)),
                                             on: fixture.eventLoop).get()
            }
            #expect(tooLong == .outOfBounds(piece: 7, begin: 800, length: 40, reason: "piece 7 is 839 bytes long"))
            let noSuchPiece = await storageError { _ = try await storage.verifyPiece(8, on: fixture.eventLoop).get() }
            #expect(noSuchPiece == .outOfBounds(piece: 8, begin: 0, length: 0, reason: "the torrent has 8 pieces"))
            let negative = await storageError { _ = try await fixture.read(from: storage, piece: 0, begin: -1, length: 4) }
            #expect(negative != nil)
            #expect(!fixture.exists(fixture.path("t/a.bin")))
        }
    }

    @Test func unwantedFilesAreCreatedOnlyWhenAWantedPieceNeedsThem() async throws {
        try await Fixture.run { fixture in
            let torrent = TestTorrent(pieceLength: 1024, files: [
                .init(path: ["w", "a"], length: 1000),
                .init(path: ["w", "b"], length: 3000),
                .init(path: ["w", "c"], length: 0),
                .init(path: ["w", "d"], length: 1000),
                .init(path: ["w", "e"], length: 0),
            ])
            let wanted = [true, false, false, true, true]
            let storage = try fixture.fileStorage(torrent, fileWanted: wanted)
            defer { storage.close() }
            #expect(!fixture.exists(fixture.path("w/c")))  // unwanted, zero-length: never created
            #expect(fixture.contents("w/e") == [])         // wanted, zero-length: created up front
            #expect(!fixture.exists(fixture.path("w/b")))
            // Piece 0 covers all of a and the first 24 bytes of b: b is created to hold them.
            try await fixture.write(torrent, piece: 0, to: storage)
            #expect(fixture.contents("w/b")?.count == 3000)
            #expect(fixture.contents("w/b").map { Array($0[0..<24]) } == Array(torrent.bytes(ofFile: 1)[0..<24]))
            #expect(try await storage.verifyPiece(0, on: fixture.eventLoop).get())

            let mismatched = await storageError { _ = try fixture.fileStorage(torrent, fileWanted: [true]) }
            #expect(mismatched == .invalidArgument("fileWanted has 1 entries but the torrent has 5 files"))
        }
    }

    @Test func recheckFindsExactlyTheWrittenPieces() async throws {
        try await Fixture.run { fixture in
            let torrent = Self.nested
            do {
                let writer = try fixture.fileStorage(torrent)
                for piece in [0, 2, 7] { try await fixture.write(torrent, piece: piece, to: writer) }
                var corrupt = torrent.bytes(ofPiece: 1)
                corrupt[0] ^= 0xFF
                try await fixture.write(torrent, piece: 1, to: writer, override: corrupt)
                try await writer.sync(on: fixture.eventLoop).get()
                writer.close()
            }
            // A fresh instance, as after a restart.
            let storage = try fixture.fileStorage(torrent)
            defer { storage.close() }
            let progress = ProgressLog()
            let have = try await Recheck.recheck(storage: storage, info: torrent.info, on: fixture.eventLoop) {
                progress.append($0)
            }.get()
            // Piece 2 (bytes 2048..<3072) spans a.bin and c.bin, so c.bin exists; pieces 3–6 are
            // sparse zeros there, 7 was written.
            #expect(have.setIndices == [0, 2, 7])
            #expect(progress.values == Array(1...8))

            // The generic entry point over any storage, with one piece in flight at a time.
            let memory = try InMemoryStorage(info: torrent.info, contents: torrent.content)
            let all = try await Recheck.recheck(storage: memory, info: torrent.info, parallelism: 1,
                                                on: fixture.eventLoop) { _ in }.get()
            #expect(all.isComplete)
        }
    }

    @Test func recheckSurfacesRealIOErrors() async throws {
        try await Fixture.run { fixture in
            let torrent = Self.nested
            let memory = try InMemoryStorage(info: torrent.info, contents: torrent.content)
            var faults = FaultInjectingStorage.Faults()
            faults.failingVerifyPieces = [4]
            let failing = FaultInjectingStorage(wrapping: memory, faults: faults)
            let error = await storageError {
                _ = try await Recheck.recheck(storage: failing, info: torrent.info, parallelism: 2,
                                              on: fixture.eventLoop) { _ in }.get()
            }
            #expect(error == .injectedFault(operation: .reading, piece: 4, errno: .ioError))
        }
    }

    @Test func syncAndCloseLifecycle() async throws {
        try await Fixture.run { fixture in
            let torrent = Self.nested
            let storage = try fixture.fileStorage(torrent)
            try await fixture.write(torrent, piece: 0, to: storage)
            try await storage.sync(on: fixture.eventLoop).get()
            #expect(!fixture.openDescriptorPaths().isEmpty)
            storage.close()
            #expect(fixture.openDescriptorPaths() == [])
            let afterClose = await storageError { try await fixture.write(torrent, piece: 1, to: storage) }
            #expect(afterClose == .closed)
            let syncAfterClose = await storageError { try await storage.sync(on: fixture.eventLoop).get() }
            #expect(syncAfterClose == .closed)
        }
    }

    @Test(arguments: [256, 3])
    func manyConcurrentWritesLandIntact(maximumOpenFiles: Int) async throws {
        try await Fixture.run { fixture in
            let torrent = TestTorrent(pieceLength: 4096, files: (0..<40).map {
                .init(path: ["m", "f\($0)"], length: 1000 + $0 * 37)
            }, seed: 9)
            // With 3 descriptors for 40 files, descriptors are closed and reopened all the time.
            let storage = try FileStorage(info: torrent.info, root: fixture.root, threadPool: fixture.threadPool,
                                          maximumOpenFiles: maximumOpenFiles)
            defer { storage.close() }
            var futures: [EventLoopFuture<Void>] = []
            for piece in 0..<torrent.info.pieceCount {
                let bytes = torrent.bytes(ofPiece: piece)
                for begin in stride(from: 0, to: bytes.count, by: 1024) {
                    let block = ByteBuffer(bytes: bytes[begin..<min(begin + 1024, bytes.count)])
                    futures.append(storage.writeBlock(piece: piece, begin: begin, data: block, on: fixture.eventLoop))
                }
            }
            try await EventLoopFuture.andAllSucceed(futures, on: fixture.eventLoop).get()
            // Files whose descriptor was closed after writing are reopened and flushed too.
            try await storage.sync(on: fixture.eventLoop).get()
            let have = try await Recheck.recheck(storage: storage, info: torrent.info, on: fixture.eventLoop) { _ in }.get()
            #expect(have.isComplete)
        }
    }
}

/// Collects progress callbacks (they arrive on the event loop, one at a time).
final class ProgressLog: Sendable {
    private let storage = NIOLockedValueBox<[Int]>([])
    func append(_ value: Int) { storage.withLockedValue { $0.append(value) } }
    var values: [Int] { storage.withLockedValue { $0 } }
}
