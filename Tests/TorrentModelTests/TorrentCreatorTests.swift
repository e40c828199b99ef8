import Foundation
import Crypto
import Testing
import TorrentModel

@Suite struct TorrentCreatorTests {
    @Test func inMemoryMultiFileTorrentParsesBackWithCorrectHashes() throws {
        let a = Fixtures.data(count: 20_000, seed: 1)
        let b = Fixtures.data(count: 0)
        let c = Fixtures.data(count: 30_001, seed: 7)
        let bytes = try TorrentCreator.create(
            files: [(["docs", "a.txt"], a), (["docs", "empty"], b), (["c.bin"], c)],
            name: "bundle", pieceLength: 16_384,
            announce: [["http://t1.example/announce", "http://t2.example/announce"], ["udp://t3.example:80"]],
            isPrivate: true)
        let metainfo = try Metainfo.parse(bytes)
        #expect(metainfo.announceTiers == [
            ["http://t1.example/announce", "http://t2.example/announce"], ["udp://t3.example:80"],
        ])
        let info = metainfo.info
        #expect(info.isPrivate)
        #expect(info.files.map(\.relativePath) == ["bundle/docs/a.txt", "bundle/docs/empty", "bundle/c.bin"])
        #expect(info.totalLength == 50_001)
        #expect(info.pieceHashes == Fixtures.pieceHashes(a + b + c))
        // Deterministic: same input, same bytes, same info hash.
        let again = try TorrentCreator.create(
            files: [(["docs", "a.txt"], a), (["docs", "empty"], b), (["c.bin"], c)],
            name: "bundle", pieceLength: 16_384,
            announce: [["http://t1.example/announce", "http://t2.example/announce"], ["udp://t3.example:80"]],
            isPrivate: true)
        #expect(again == bytes)
    }

    @Test func singleFileTorrent() throws {
        let data = Fixtures.data(count: 16_384 * 2)
        let bytes = try TorrentCreator.create(
            singleFile: "exact.bin", data: data, pieceLength: 16_384,
            details: .init(announce: [["http://t.example/a"]], comment: "c", createdBy: "Burrow", creationDate: 42))
        let metainfo = try Metainfo.parse(bytes)
        #expect(metainfo.info.files == [FileEntry(path: ["exact.bin"], length: 32_768, offset: 0)])
        #expect(metainfo.info.pieceHashes == Fixtures.pieceHashes(data))
        #expect(metainfo.announceTiers == [["http://t.example/a"]])
        #expect(metainfo.comment == "c")
        #expect(metainfo.createdBy == "Burrow")
        #expect(metainfo.creationDate == 42)
        #expect(!metainfo.info.isPrivate)
    }

    @Test func directoryOnDiskMatchesTheSameFilesInMemory() throws {
        let root = FileManager.default.temporaryDirectory
            .appendingPathComponent("burrow-creator-\(UInt64.random(in: 0 ... .max))")
            .appendingPathComponent("share")
        defer { try? FileManager.default.removeItem(at: root.deletingLastPathComponent()) }
        let files: [(path: [String], data: [UInt8])] = [
            (["B.txt"], Fixtures.data(count: 5_000, seed: 2)),
            (["a", "nested", "x.bin"], Fixtures.data(count: 1_500_000, seed: 3)),  // spans several read chunks
            (["a", "y.bin"], Fixtures.data(count: 17_000, seed: 4)),
        ]
        for file in files {
            let url = file.path.reduce(root) { $0.appendingPathComponent($1) }
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(file.data).write(to: url)
        }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("empty-dir"), withIntermediateDirectories: true)

        let fromDisk = try TorrentCreator.create(contentsOf: root.path, pieceLength: 32_768)
        // Bytewise order: "B.txt" < "a/..." because 'B' (0x42) < 'a' (0x61).
        let fromMemory = try TorrentCreator.create(files: files, name: "share", pieceLength: 32_768)
        #expect(fromDisk == fromMemory)
        let info = try Metainfo.parse(fromDisk).info
        #expect(info.files.map(\.relativePath) == ["share/B.txt", "share/a/nested/x.bin", "share/a/y.bin"])

        let single = try TorrentCreator.create(
            contentsOf: root.appendingPathComponent("B.txt").path, pieceLength: 16_384)
        #expect(try Metainfo.parse(single).info.files == [FileEntry(path: ["B.txt"], length: 5_000, offset: 0)])
    }

    @Test func refusesWhatTheParserWouldRefuse() throws {
        let collision = try #require(throws: TorrentCreatorError.self) {
            try TorrentCreator.create(files: [(["a"], [1]), (["A"], [2])], name: "x", pieceLength: 16_384)
        }
        #expect(collision.description
            == "torrent would be invalid: info.files[1].path: \"A\" collides with info.files[0].path")
        #expect(throws: TorrentCreatorError.noFiles) {
            try TorrentCreator.create(files: [], name: "x", pieceLength: 16_384)
        }
        let badPiece = try #require(throws: TorrentCreatorError.self) {
            try TorrentCreator.create(singleFile: "x", data: [1], pieceLength: 1000)
        }
        #expect(badPiece == .invalidTorrent(.invalidValue(
            field: "info.piece length", reason: "1000 is not a multiple of 16 KiB between 16 KiB and 64 MiB")))
        #expect(throws: TorrentCreatorError.self) {
            try TorrentCreator.create(contentsOf: "/nonexistent/burrow/path", pieceLength: 16_384)
        }
    }
}
