import Foundation
import Storage
import Testing

@Suite struct BoundedFileReaderTests {
    @Test func aFileWithinTheLimitIsReadWhole() throws {
        try Fixture.runSync { base in
            let path = base + "/small.torrent"
            try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
            #expect(try BoundedFileReader.contents(of: path, limit: 3) == [1, 2, 3])
        }
    }

    @Test func aLargerFileIsRefusedByItsSizeBeforeReading() throws {
        try Fixture.runSync { base in
            let path = base + "/huge.torrent"
            // Sparse: 65 MiB on paper, nothing on disk.
            #expect(FileManager.default.createFile(atPath: path, contents: nil))
            #expect(truncate(path, 65 * 1024 * 1024) == 0)
            let error = try #require(throws: BoundedFileError.self) {
                try BoundedFileReader.contents(of: path, limit: 64 * 1024 * 1024)
            }
            #expect(error == .tooLarge(path: path, limit: 64 * 1024 * 1024, size: 65 * 1024 * 1024))
            #expect(error.description == "\(path) is larger than the 64 MiB limit (68157440 bytes); refused without reading it whole")
        }
    }

    @Test func anEndlessDeviceStopsAtTheLimit() throws {
        let error = try #require(throws: BoundedFileError.self) { try BoundedFileReader.contents(of: "/dev/zero", limit: 1 << 20) }
        #expect(error == .tooLarge(path: "/dev/zero", limit: 1 << 20, size: nil))
    }

    @Test func aMissingFileOrAFolderIsUnreadable() throws {
        try Fixture.runSync { base in
            #expect(throws: BoundedFileError.unreadable(path: base + "/none", reason: "No such file or directory")) {
                try BoundedFileReader.contents(of: base + "/none", limit: 10)
            }
            #expect(throws: BoundedFileError.unreadable(path: base, reason: "it is a directory")) {
                try BoundedFileReader.contents(of: base, limit: 10)
            }
        }
    }
}
