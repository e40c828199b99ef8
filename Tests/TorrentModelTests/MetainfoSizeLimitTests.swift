import Bencode
import Testing
import TorrentModel

/// A torrent with absurdly many files is refused, and its parse stops early so memory stays bounded.
@Suite struct MetainfoSizeLimitTests {
    /// A multi-file torrent whose `files` list is `entries` (each a bencoded file dictionary).
    static func torrent(fileCount: Int, entry: (Int) -> [UInt8]) -> [UInt8] {
        var files: [UInt8] = Array("l".utf8)
        for index in 0..<fileCount { files += entry(index) }
        files += Array("e".utf8)
        let pieceCount = (fileCount + 16383) / 16384  // every file is 1 byte long
        var info: [UInt8] = Array("d5:files".utf8) + files + Array("4:name4:many12:piece lengthi16384e6:pieces".utf8)
        info += Array("\(pieceCount * 20):".utf8) + [UInt8](repeating: 0, count: pieceCount * 20) + Array("e".utf8)
        return Array("d4:info".utf8) + info + Array("e".utf8)
    }

    @Test func moreFilesThanTheCapAreRefusedNamingTheField() throws {
        let bytes = Self.torrent(fileCount: TorrentInfo.maximumFileCount + 1) { index in
            let name = Array("f\(index)".utf8)
            return Array("d6:lengthi1e4:pathl\(name.count):".utf8) + name + Array("ee".utf8)
        }
        let error = try #require(throws: MetainfoError.self) { try Metainfo.parse(bytes) }
        #expect(error == .invalidValue(field: "info.files", reason: "lists 100001 files; Burrow accepts at most 100000"))
    }

    @Test func aHugeFileListStopsTheParseAtTheValueLimit() throws {
        // 400 000 files of 6 values each: the decoder gives up at 2 000 000 values, before the end.
        let entry = Array("d6:lengthi1e4:pathl1:xee".utf8)
        let bytes = Self.torrent(fileCount: 400_000) { _ in entry }
        let error = try #require(throws: MetainfoError.self) { try Metainfo.parse(bytes) }
        guard case .malformedBencode(let bencode) = error, case .tooManyValues(let offset, let limit) = bencode.reason else {
            Issue.record("expected the value limit, got \(error)")
            return
        }
        #expect(limit == Metainfo.maximumBencodeValues)
        #expect(offset < bytes.count * 9 / 10)
    }
}
