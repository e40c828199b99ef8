import Bencode
import Crypto
import Testing
@testable import TorrentModel

@Suite struct MetainfoParsingTests {
    @Test func parsesSingleFileTorrentWithAllTopLevelFields() throws {
        let data = Fixtures.data(count: 40_000)  // 3 pieces, the last one short
        var info = Fixtures.singleFileInfo(name: "movie.mkv", length: Int64(data.count))
        info["pieces"] = .bytes(Fixtures.pieceHashes(data))
        info["private"] = 1
        let bytes = Fixtures.torrent(info: info, extra: [
            "announce": "http://tracker.example/announce",
            "comment": "hello",
            "created by": "Burrow tests",
            "creation date": 1_700_000_000,
        ])
        let metainfo = try Metainfo.parse(bytes)
        let parsed = metainfo.info
        #expect(parsed.name == "movie.mkv")
        #expect(parsed.files == [FileEntry(path: ["movie.mkv"], length: 40_000, offset: 0)])
        #expect(parsed.totalLength == 40_000)
        #expect(parsed.pieceCount == 3)
        #expect(parsed.length(ofPiece: 0) == 16_384)
        #expect(parsed.length(ofPiece: 2) == 40_000 - 2 * 16_384)
        #expect(Array(parsed.hash(ofPiece: 2)) == Array(Insecure.SHA1.hash(data: data[32_768...])))
        #expect(parsed.isPrivate)
        #expect(!parsed.isMultiFile)
        #expect(metainfo.announceTiers == [["http://tracker.example/announce"]])
        #expect(metainfo.comment == "hello")
        #expect(metainfo.createdBy == "Burrow tests")
        #expect(metainfo.creationDate == 1_700_000_000)
    }

    @Test func infoHashIsSHA1OfTheExactRawInfoBytes() throws {
        // Non-canonical key order inside info: the hash must cover the bytes as they are, not a re-encoding.
        let infoText = "d4:name3:abc6:lengthi20000e12:piece lengthi16384e6:pieces40:"
            + String(repeating: "x", count: 40) + "e"
        let bytes = Array(("d8:announce3:url4:info" + infoText + "e").utf8)
        let metainfo = try Metainfo.parse(bytes)
        #expect(metainfo.info.rawBytes == Array(infoText.utf8))
        #expect(metainfo.infoHash.bytes == Array(Insecure.SHA1.hash(data: Array(infoText.utf8))))
        // The same info parsed on its own (as fetched from peers over BEP 9) yields the same hash.
        let alone = try TorrentInfo.parse(infoBytes: Array(infoText.utf8))
        #expect(alone.infoHash == metainfo.infoHash)
    }

    @Test func parsesMultiFileTorrentWithNestedFoldersAndZeroLengthFile() throws {
        let info = Fixtures.multiFileInfo(name: "album", files: [
            (["cover.jpg"], 20_000),
            (["cd1", "01 intro.flac"], 30_000),
            (["cd1", "empty.txt"], 0),
            (["cd2", "deep", "02.flac"], 5_000),
        ])
        let parsed = try Metainfo.parse(Fixtures.torrent(info: info)).info
        #expect(parsed.isMultiFile)
        #expect(parsed.files.map(\.relativePath) == [
            "album/cover.jpg", "album/cd1/01 intro.flac", "album/cd1/empty.txt", "album/cd2/deep/02.flac",
        ])
        #expect(parsed.files.map(\.offset) == [0, 20_000, 50_000, 50_000])
        #expect(parsed.totalLength == 55_000)
        #expect(parsed.pieceCount == 4)
    }

    @Test func honoursUTF8NameAndPathVariants() throws {
        var info = Fixtures.multiFileInfo(name: "legacy", files: [(["caf\u{e9}"], 100)])
        info["name.utf-8"] = "Café Mix"
        info["files"] = [["length": 100, "path": ["x"], "path.utf-8": ["Ünïcode", "song.mp3"]]]
        let parsed = try Metainfo.parse(Fixtures.torrent(info: info)).info
        #expect(parsed.name == "Café Mix")
        #expect(parsed.files[0].path == ["Café Mix", "Ünïcode", "song.mp3"])
    }

    @Test func paddingFilesAreMarkedAndMayShareANameWithoutColliding() throws {
        var info = Fixtures.multiFileInfo(files: [])
        info["files"] = [
            ["length": 1_000, "path": ["a.bin"]],
            ["length": 15_384, "path": [".pad", "15384"], "attr": "p"],
            ["length": 1_000, "path": ["b.bin"]],
            ["length": 15_384, "path": [".pad", "15384"], "attr": "p"],
            ["length": 10, "path": ["c.sh"], "attr": "x"],
        ]
        info["pieces"] = .bytes([UInt8](repeating: 1, count: 3 * 20))
        let parsed = try Metainfo.parse(Fixtures.torrent(info: info)).info
        #expect(parsed.files.map(\.isPadding) == [false, true, false, true, false])
        #expect(parsed.files[2].offset == 16_384)
        #expect(parsed.files[4].offset == 32_768)
    }

    @Test func announceListTiersAreDedupedAndEmptiesDropped() throws {
        let bytes = Fixtures.torrent(info: Fixtures.singleFileInfo(), extra: [
            "announce": "http://ignored.example/announce",
            "announce-list": [
                ["http://a.example/announce", " http://b.example/announce ", ""],
                [],
                ["http://a.example/announce", "udp://c.example:6969"],
                ["", "http://b.example/announce"],
            ],
        ])
        let metainfo = try Metainfo.parse(bytes)
        #expect(metainfo.announceTiers == [
            ["http://a.example/announce", "http://b.example/announce"],
            ["udp://c.example:6969"],
        ])
    }

    @Test func emptyAnnounceListFallsBackToAnnounce() throws {
        let bytes = Fixtures.torrent(info: Fixtures.singleFileInfo(), extra: [
            "announce": "http://only.example/announce", "announce-list": [[""], []],
        ])
        #expect(try Metainfo.parse(bytes).announceTiers == [["http://only.example/announce"]])
        let trackerless = Fixtures.torrent(info: Fixtures.singleFileInfo())
        #expect(try Metainfo.parse(trackerless).announceTiers == [])
    }

    @Test func acceptsUnsortedTopLevelKeys() throws {
        let info = Bencode.encode(.dictionary(Fixtures.singleFileInfo()))
        let bytes = Array("d4:info".utf8) + info + Array("8:announce3:urle".utf8)
        let metainfo = try Metainfo.parse(bytes)
        #expect(metainfo.announceTiers == [["url"]])
        #expect(metainfo.info.rawBytes == info)
    }

    @Test func informationalFieldsOfWrongTypeAreIgnored() throws {
        let bytes = Fixtures.torrent(info: Fixtures.singleFileInfo(), extra: [
            "comment": 5, "created by": ["x"], "creation date": "yesterday",
        ])
        let metainfo = try Metainfo.parse(bytes)
        #expect(metainfo.comment == nil)
        #expect(metainfo.createdBy == nil)
        #expect(metainfo.creationDate == nil)
    }

    @Test func malformedBencodeIsReportedAsSuch() throws {
        let error = Fixtures.metainfoError(Array("d4:infod".utf8))
        guard case .malformedBencode(let inner) = try #require(error) else {
            Issue.record("expected malformedBencode, got \(String(describing: error))")
            return
        }
        #expect(inner.offset == 8)
        #expect(error?.description == "info: malformed bencode: input ends at offset 8 where 'e' or another element was expected")
        let duplicate = Fixtures.metainfoError(Array("d4:infode4:infodee".utf8))
        #expect(duplicate == .malformedBencode(BencodeError(.duplicateKey("info", offset: 9))))
        #expect(duplicate?.description == "malformed bencode: duplicate dictionary key \"info\" at offset 9")
        #expect(Fixtures.metainfoError(Array("le".utf8)) == .malformedBencode(BencodeError(.topLevelNotDictionary(offset: 0))))
    }

    @Test func malformedBencodeNamesTheEnclosingField() throws {
        let good = Fixtures.torrent(info: [
            "files": [["length": 1, "path": ["a"]], ["length": 2, "path": ["b"]], ["length": 3, "path": ["c"]],
                      ["length": 4, "path": ["d"]]],
            "name": "multi", "piece length": 16384, "pieces": .bytes([UInt8](repeating: 0, count: 20)),
        ])
        // Spell the fourth file's length with a leading zero.
        let text = String(decoding: good, as: UTF8.self)
        let spot = try #require(text.range(of: "6:lengthi4e"))
        let bad = Array(text.replacingCharacters(in: spot, with: "6:lengthi04e").utf8)
        let offset = text.utf8.distance(from: text.utf8.startIndex, to: spot.lowerBound) + "6:length".utf8.count
        let error = try #require(Fixtures.metainfoError(bad))
        #expect(error.field == "info.files[3].length")
        #expect(error.description == "info.files[3].length: malformed bencode: leading zero in number at offset \(offset)")

        // The same info dictionary fetched from peers (magnet) names the field the same way.
        let info = try #require(Bencode.rawValueRanges(ofTopLevelDictionary: good)["info"])
        var infoBytes = Array(good[info])
        let infoText = String(decoding: infoBytes, as: UTF8.self)
        let infoSpot = try #require(infoText.range(of: "6:lengthi4e"))
        infoBytes = Array(infoText.replacingCharacters(in: infoSpot, with: "6:lengthi04e").utf8)
        let fetched = try #require(throws: MetainfoError.self) { try TorrentInfo.parse(infoBytes: infoBytes) }
        #expect(fetched.field == "info.files[3].length")
    }
}
