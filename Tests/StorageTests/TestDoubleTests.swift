import NIOCore
import Storage
import Testing
import TorrentModel

@Suite("Test doubles")
struct TestDoubleTests {
    static let torrent = TestTorrent(pieceLength: 1024, files: [
        .init(path: ["d", "a"], length: 1000),
        .init(path: ["d", ".pad", "24"], length: 24, isPadding: true),
        .init(path: ["d", "b"], length: 2500),
    ], seed: 5)

    @Test func inMemoryStorageStoresVerifiesAndCloses() async throws {
        try await Fixture.run { fixture in
            let torrent = Self.torrent
            let storage = InMemoryStorage(info: torrent.info)
            #expect(try await storage.verifyPiece(0, on: fixture.eventLoop).get() == false)
            for piece in 0..<torrent.info.pieceCount {
                try await fixture.write(torrent, piece: piece, to: storage, blockSize: 300)
            }
            #expect(storage.contents == torrent.content)
            #expect(storage.bytes(ofPiece: 3) == torrent.bytes(ofPiece: 3))
            for piece in 0..<torrent.info.pieceCount {
                #expect(try await storage.verifyPiece(piece, on: fixture.eventLoop).get())
            }
            #expect(try await fixture.read(from: storage, piece: 1, begin: 10, length: 20) == Array(torrent.content[1034..<1054]))
            let outOfBounds = await storageError { _ = try await fixture.read(from: storage, piece: 3, begin: 400, length: 100) }
            #expect(outOfBounds == .outOfBounds(piece: 3, begin: 400, length: 100, reason: "piece 3 is 452 bytes long"))
            storage.close()
            let closed = await storageError { try await storage.sync(on: fixture.eventLoop).get() }
            #expect(closed == .closed)
            #expect(throws: StorageError.self) { try InMemoryStorage(info: torrent.info, contents: [1, 2, 3]) }
        }
    }

    @Test func faultInjectionFailsChosenPiecesAndAFullDisk() async throws {
        try await Fixture.run { fixture in
            let torrent = Self.torrent
            let memory = InMemoryStorage(info: torrent.info)
            let storage = FaultInjectingStorage(wrapping: memory)
            var faults = FaultInjectingStorage.Faults()
            faults.failingWritePieces = [1]
            faults.failingReadPieces = [0]
            storage.faults = faults
            try await fixture.write(torrent, piece: 0, to: storage)
            let writeError = await storageError { try await fixture.write(torrent, piece: 1, to: storage) }
            #expect(writeError == .injectedFault(operation: .writing, piece: 1, errno: .ioError))
            #expect(writeError?.description == "writing piece 1: Input/output error (injected fault)")
            let readError = await storageError { _ = try await fixture.read(from: storage, piece: 0, begin: 0, length: 1) }
            #expect(readError == .injectedFault(operation: .reading, piece: 0, errno: .ioError))
            // The piece written before the faults is intact underneath.
            #expect(try await memory.verifyPiece(0, on: fixture.eventLoop).get())

            // A disk with room for piece 1 and 500 more bytes.
            storage.faults = FaultInjectingStorage.Faults()
            #expect(storage.bytesWritten == 1024)
            storage.faults.writableBytes = 1024 + 1024 + 500
            try await fixture.write(torrent, piece: 1, to: storage)
            let full = await storageError { try await fixture.write(torrent, piece: 2, to: storage, blockSize: 400) }
            #expect(full == .injectedFault(operation: .writing, piece: 2, errno: .noSpace))
            #expect(storage.bytesWritten == 1024 + 1024 + 400)
            storage.faults.failSync = true
            let syncError = await storageError { try await storage.sync(on: fixture.eventLoop).get() }
            #expect(syncError?.description == "syncing (all files): Input/output error")
        }
    }

    @Test func countingStorageCountsWhatReachedTheDisk() async throws {
        try await Fixture.run { fixture in
            let torrent = Self.torrent
            let storage = CountingStorage(wrapping: InMemoryStorage(info: torrent.info))
            try await fixture.write(torrent, piece: 2, to: storage, blockSize: 512)
            _ = try await fixture.read(from: storage, piece: 2, begin: 0, length: 100)
            _ = try await storage.verifyPiece(2, on: fixture.eventLoop).get()
            _ = try await storage.verifyPiece(2, on: fixture.eventLoop).get()
            try await storage.sync(on: fixture.eventLoop).get()
            let counts = storage.counts
            #expect(counts.bytesWritten == [2: 1024])
            #expect(counts.bytesRead == [2: 100])
            #expect(counts.verifications == [2: 2])
            #expect(counts.syncs == 1)
            #expect(counts.totalBytesWritten == 1024)
        }
    }
}
