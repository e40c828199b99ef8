import Foundation
import Testing

/// A .torrent file over the limit is refused by its size, before Burrow reads it into memory.
@Suite struct InputLimitTests {
    @Test func infoRefusesATorrentFileOver64MiBNamingTheFileAndTheLimit() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.path + "/huge.torrent"
        // Sparse: 65 MiB by its size, no disk used.
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        #expect(truncate(path, 65 * 1024 * 1024) == 0)
        let burrow = try BurrowProcess(["info", path])
        let status = try await burrow.waitForExit()
        let stderr = String(decoding: burrow.stderr, as: UTF8.self)
        #expect(status != 0)
        #expect(stderr.contains("\(path) is larger than the 64 MiB limit (68157440 bytes)"), "\(stderr)")
    }
}
