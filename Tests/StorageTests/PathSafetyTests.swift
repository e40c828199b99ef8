import Foundation
import NIOCore
@testable import Storage
import Testing
import TorrentModel

@Suite("Path safety")
struct PathSafetyTests {
    private func torrent(paths: [[String]]) -> TestTorrent {
        TestTorrent(pieceLength: 64, files: paths.map { .init(path: $0, length: 40) })
    }

    @Test func dotDotComponentIsRefusedBeforeAnythingIsWritten() async throws {
        try await Fixture.run { fixture in
            // Built by hand: a parser would have rejected it, storage must refuse it again.
            let hostile = torrent(paths: [["t", "..", "..", "escape.bin"]])
            let error = await storageError { _ = try fixture.fileStorage(hostile) }
            #expect(error == .unsafePath(path: "t/../../escape.bin", reason: "component \"..\" is not allowed"))
            #expect(error?.description == "refusing path t/../../escape.bin: component \"..\" is not allowed")
            #expect(!fixture.exists(fixture.base + "/escape.bin"))
            #expect(!fixture.exists((fixture.base as NSString).deletingLastPathComponent + "/escape.bin"))
        }
    }

    @Test(arguments: [
        (["a", ".", "b"], "component \".\" is not allowed"),
        (["a", "", "b"], "it has an empty component"),
        (["a/b"], "component \"a/b\" contains \"/\""),
        (["a\u{0}b"], "a component contains a NUL byte"),
        ([String](), "the path is empty"),
    ])
    func malformedComponentsAreRefused(components: [String], reason: String) throws {
        #expect(throws: StorageError.unsafePath(path: components.joined(separator: "/"), reason: reason)) {
            try RootedDirectory.validate(components)
        }
    }

    @Test func plainNamesAreAccepted() throws {
        try RootedDirectory.validate(["Movie", "Extras", "..hidden..", "a b.mkv"])
    }

    @Test func symlinkedFolderInsideRootIsNotFollowed() async throws {
        try await Fixture.run { fixture in
            let outside = fixture.base + "/outside"
            try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: fixture.root, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: fixture.path("t"), withDestinationPath: outside)
            let torrent = torrent(paths: [["t", "f.bin"]])
            let storage = try fixture.fileStorage(torrent)
            defer { storage.close() }
            let error = await storageError { try await fixture.write(torrent, piece: 0, to: storage) }
            #expect(error == .symlinkRefused(path: "t"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
            let readError = await storageError { _ = try await fixture.read(from: storage, piece: 0, begin: 0, length: 8) }
            #expect(readError == .symlinkRefused(path: "t"))
        }
    }

    @Test func symlinkedFileInsideRootIsNotFollowed() async throws {
        try await Fixture.run { fixture in
            let target = fixture.base + "/precious.txt"
            let original = Array("keep me".utf8)
            #expect(FileManager.default.createFile(atPath: target, contents: Data(original)))
            try FileManager.default.createDirectory(atPath: fixture.path("t"), withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: fixture.path("t/f.bin"), withDestinationPath: target)
            let torrent = torrent(paths: [["t", "f.bin"]])
            let storage = try fixture.fileStorage(torrent)
            defer { storage.close() }
            let error = await storageError { try await fixture.write(torrent, piece: 0, to: storage) }
            #expect(error == .symlinkRefused(path: "t/f.bin"))
            #expect(FileManager.default.contents(atPath: target).map { Array($0) } == original)
            let readError = await storageError { _ = try await fixture.read(from: storage, piece: 0, begin: 0, length: 8) }
            #expect(readError == .symlinkRefused(path: "t/f.bin"))
        }
    }

    @Test func aZeroLengthFileBehindASymlinkIsNotCreatedOutside() async throws {
        try await Fixture.run { fixture in
            let outside = fixture.base + "/outside"
            try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: fixture.root, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: fixture.path("z"), withDestinationPath: outside)
            let torrent = TestTorrent(pieceLength: 64, files: [
                .init(path: ["z", "empty"], length: 0), .init(path: ["ok"], length: 10),
            ])
            let error = await storageError { _ = try fixture.fileStorage(torrent) }
            #expect(error == .symlinkRefused(path: "z"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
        }
    }

    @Test func aFolderWhereAFileBelongsIsReported() async throws {
        try await Fixture.run { fixture in
            try FileManager.default.createDirectory(atPath: fixture.path("t/f.bin"), withIntermediateDirectories: true)
            let torrent = torrent(paths: [["t", "f.bin"]])
            let storage = try fixture.fileStorage(torrent)
            defer { storage.close() }
            let error = await storageError { try await fixture.write(torrent, piece: 0, to: storage) }
            #expect(error == .notARegularFile(path: "t/f.bin"))
        }
    }
}
