import Foundation
import NIOConcurrencyHelpers
import SystemPackage
import Testing
import TorrentModel
@testable import Storage

/// A full descriptor table (EMFILE) must slow storage down, never fail the torrent.
@Suite struct DescriptorShortageTests {
    /// Four files, but the "process" has room for only two of ours: each open past that fails with
    /// EMFILE until the cache gives one back.
    @Test func outOfDescriptorsShedsIdleOnesAndRetries() async throws {
        try await Fixture.run { fixture in
            let torrent = TestTorrent(pieceLength: 16384, files: (0..<4).map { .init(path: ["d", "f\($0)"], length: 1000) })
            let directory = try RootedDirectory(root: fixture.root)
            try directory.createRoot()
            let room = 2
            let cacheBox = NIOLockedValueBox<DescriptorCache?>(nil)
            let refusals = NIOLockedValueBox(0)
            let cache = DescriptorCache(directory: directory, files: torrent.info.files, maximumOpen: 64) { path, access in
                if let cache = cacheBox.withLockedValue({ $0 }), cache.openDescriptorCount >= room {
                    refusals.withLockedValue { $0 += 1 }
                    throw StorageError.system(operation: .opening, path: path.joined(separator: "/"), offset: nil,
                                              errno: .tooManyOpenFiles)
                }
                return try directory.openFile(path, access: access)
            }
            cacheBox.withLockedValue { $0 = cache }
            for round in 0..<2 {
                for index in torrent.info.files.indices {
                    let bytes = torrent.bytes(ofFile: index)
                    try cache.withDescriptor(fileIndex: index, forWriting: true, operation: .writing) { fd in
                        try bytes.withUnsafeBytes { raw in
                            try PositionalIO.writeFully(fd: fd, from: raw, at: 0)
                        }
                    }
                    #expect(cache.openDescriptorCount <= room, "round \(round), file \(index)")
                }
            }
            try cache.syncDirtyFiles()
            cache.closeAll()
            #expect(refusals.withLockedValue { $0 } >= 6)
            for index in torrent.info.files.indices {
                #expect(fixture.contents("d/f\(index)") == torrent.bytes(ofFile: index))
            }
        }
    }

    /// With every descriptor of ours in use, an open waits (about a second) and then reports EMFILE.
    @Test func outOfDescriptorsWithNothingToShedFailsAfterWaiting() async throws {
        try await Fixture.run { fixture in
            let torrent = TestTorrent(pieceLength: 16384, files: [.init(path: ["only"], length: 100)])
            let directory = try RootedDirectory(root: fixture.root)
            let cache = DescriptorCache(directory: directory, files: torrent.info.files) { path, _ in
                throw StorageError.system(operation: .opening, path: path.joined(separator: "/"), offset: nil, errno: .tooManyOpenFiles)
            }
            let started = ContinuousClock.now
            #expect(throws: StorageError.self) {
                try cache.withDescriptor(fileIndex: 0, forWriting: true, operation: .writing) { _ in }
            }
            #expect(ContinuousClock.now - started > .milliseconds(300))
        }
    }
}
