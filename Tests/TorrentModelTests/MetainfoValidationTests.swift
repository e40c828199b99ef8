import Bencode
import Testing
import TorrentModel

/// One hostile or broken .torrent and the exact complaint it must produce.
struct RefusedTorrent: Sendable, CustomTestStringConvertible {
    let label: String
    let bytes: [UInt8]
    let field: String?
    let message: String
    var testDescription: String { label }

    init(_ label: String, info: [BKey: BValue], extra: [BKey: BValue] = [:], field: String?, message: String) {
        self.label = label
        self.bytes = Fixtures.torrent(info: info, extra: extra)
        self.field = field
        self.message = message
    }

    init(_ label: String, top: [BKey: BValue], field: String?, message: String) {
        self.label = label
        self.bytes = Bencode.encode(.dictionary(top))
        self.field = field
        self.message = message
    }
}

private func single(_ change: (inout [BKey: BValue]) -> Void) -> [BKey: BValue] {
    var info = Fixtures.singleFileInfo()
    change(&info)
    return info
}

private func multi(_ paths: [[String]], lengths: [Int64]? = nil) -> [BKey: BValue] {
    Fixtures.multiFileInfo(files: paths.enumerated().map { ($1, lengths?[$0] ?? 100) })
}

private func multiFiles(_ files: [BValue], pieces: Int = 1) -> [BKey: BValue] {
    var info = Fixtures.multiFileInfo(files: [])
    info["files"] = .list(files)
    info["pieces"] = .bytes([UInt8](repeating: 0, count: pieces * 20))
    return info
}

let refusedTorrents: [RefusedTorrent] = [
    // Path traversal and names that are not single components.
    RefusedTorrent("dot-dot component", info: multi([["ok"], ["a"], ["b"], ["..", "etc", "passwd"]]),
                   field: "info.files[3].path", message: "info.files[3].path: component \"..\" is not allowed"),
    RefusedTorrent("dot component", info: multi([[".", "x"]]),
                   field: "info.files[0].path", message: "info.files[0].path: component \".\" is not allowed"),
    RefusedTorrent("absolute path (empty first component)", info: multi([["", "etc", "passwd"]]),
                   field: "info.files[0].path", message: "info.files[0].path: empty path component is not allowed"),
    RefusedTorrent("slash inside component", info: multi([["a/../../b"]]),
                   field: "info.files[0].path", message: "info.files[0].path: component \"a/../../b\" contains \"/\""),
    RefusedTorrent("backslash inside component", info: multi([["..\\..\\win.ini"]]),
                   field: "info.files[0].path",
                   message: "info.files[0].path: component \"..\\\\..\\\\win.ini\" contains \"\\\""),
    RefusedTorrent("NUL inside component", info: multi([["evil\u{0}.txt"]]),
                   field: "info.files[0].path", message: "info.files[0].path: component \"evil\\0.txt\" contains a NUL byte"),
    RefusedTorrent("empty path list", info: multi([[]]),
                   field: "info.files[0].path", message: "info.files[0].path: must have at least one component"),
    RefusedTorrent("single-file name is dot-dot", info: single { $0["name"] = ".." },
                   field: "info.name", message: "info.name: component \"..\" is not allowed"),
    RefusedTorrent("single-file name with slash", info: single { $0["name"] = "/etc/passwd" },
                   field: "info.name", message: "info.name: component \"/etc/passwd\" contains \"/\""),
    RefusedTorrent("empty name", info: single { $0["name"] = "" },
                   field: "info.name", message: "info.name: empty path component is not allowed"),
    RefusedTorrent("multi-file root name is dot-dot", info: Fixtures.multiFileInfo(name: "..", files: [(["a"], 10)]),
                   field: "info.name", message: "info.name: component \"..\" is not allowed"),
    RefusedTorrent("path component of wrong type", info: multiFiles([["length": 5, "path": ["a", 7]]]),
                   field: "info.files[0].path[1]", message: "info.files[0].path[1]: expected byte string, found integer"),

    // Files landing on the same place.
    RefusedTorrent("exact duplicate path", info: multi([["a", "b.txt"], ["c"], ["a", "b.txt"]]),
                   field: "info.files[2].path",
                   message: "info.files[2].path: \"a/b.txt\" collides with info.files[0].path"),
    RefusedTorrent("case-insensitive duplicate", info: multi([["Readme.TXT"], ["README.txt"]]),
                   field: "info.files[1].path",
                   message: "info.files[1].path: \"README.txt\" collides with info.files[0].path"),
    RefusedTorrent("file then directory of the same name", info: multi([["a"], ["a", "b"]]),
                   field: "info.files[1].path",
                   message: "info.files[1].path: uses \"a\" as a directory but it is a file in info.files[0].path"),
    RefusedTorrent("directory then file of the same name", info: multi([["a", "b", "c"], ["a", "b"]]),
                   field: "info.files[1].path",
                   message: "info.files[1].path: \"a/b\" is also a directory in info.files[0].path"),

    // Piece geometry.
    RefusedTorrent("pieces not a multiple of 20", info: single { $0["pieces"] = .bytes([UInt8](repeating: 0, count: 59)) },
                   field: "info.pieces", message: "info.pieces: length 59 is not a multiple of 20"),
    RefusedTorrent("too few piece hashes", info: single { $0["pieces"] = .bytes([UInt8](repeating: 0, count: 40)) },
                   field: "info.pieces", message: "info.pieces: has 2 hashes but 40000 bytes in pieces of 16384 need 3"),
    RefusedTorrent("too many piece hashes", info: single { $0["pieces"] = .bytes([UInt8](repeating: 0, count: 80)) },
                   field: "info.pieces", message: "info.pieces: has 4 hashes but 40000 bytes in pieces of 16384 need 3"),
    RefusedTorrent("zero piece length", info: single { $0["piece length"] = 0 },
                   field: "info.piece length", message: "info.piece length: must be positive, got 0"),
    RefusedTorrent("negative piece length", info: single { $0["piece length"] = -16384 },
                   field: "info.piece length", message: "info.piece length: must be positive, got -16384"),
    RefusedTorrent("piece length not a multiple of 16 KiB", info: single { $0["piece length"] = 20_000 },
                   field: "info.piece length",
                   message: "info.piece length: 20000 is not a multiple of 16 KiB between 16 KiB and 64 MiB"),
    RefusedTorrent("piece length above 64 MiB", info: single { $0["piece length"] = .integer(128 * 1024 * 1024) },
                   field: "info.piece length",
                   message: "info.piece length: 134217728 is not a multiple of 16 KiB between 16 KiB and 64 MiB"),

    // Lengths.
    RefusedTorrent("negative single-file length", info: single { $0["length"] = -1 },
                   field: "info.length", message: "info.length: negative length -1"),
    RefusedTorrent("negative file length", info: multi([["a"], ["b"]], lengths: [100, -5]),
                   field: "info.files[1].length", message: "info.files[1].length: negative length -5"),
    RefusedTorrent("total length overflow",
                   info: multiFiles([["length": .integer(.max), "path": ["a"]], ["length": 1, "path": ["b"]]]),
                   field: "info.files[1].length",
                   message: "info.files[1].length: total length overflows a 64-bit integer"),
    RefusedTorrent("no data at all", info: multi([["a"], ["b"]], lengths: [0, 0]),
                   field: "info", message: "info: torrent holds no data (total length is 0)"),
    RefusedTorrent("empty files list", info: multiFiles([]),
                   field: "info.files", message: "info.files: must list at least one file"),

    // Missing fields and wrong types.
    RefusedTorrent("no info", top: ["announce": "http://x"], field: "info", message: "info: required field is missing"),
    RefusedTorrent("info is a list", top: ["info": ["a"]], field: "info", message: "info: expected dictionary, found list"),
    RefusedTorrent("missing name", info: single { $0["name"] = nil },
                   field: "info.name", message: "info.name: required field is missing"),
    RefusedTorrent("missing piece length", info: single { $0["piece length"] = nil },
                   field: "info.piece length", message: "info.piece length: required field is missing"),
    RefusedTorrent("missing pieces", info: single { $0["pieces"] = nil },
                   field: "info.pieces", message: "info.pieces: required field is missing"),
    RefusedTorrent("neither length nor files", info: single { $0["length"] = nil },
                   field: "info.length", message: "info.length: required field is missing"),
    RefusedTorrent("both length and files", info: single { $0["files"] = [["length": 1, "path": ["a"]]] },
                   field: "info", message: "info: has both \"length\" (single file) and \"files\" (multiple files)"),
    RefusedTorrent("length is a string", info: single { $0["length"] = "40000" },
                   field: "info.length", message: "info.length: expected integer, found byte string"),
    RefusedTorrent("pieces is an integer", info: single { $0["pieces"] = 5 },
                   field: "info.pieces", message: "info.pieces: expected byte string, found integer"),
    RefusedTorrent("files is a dictionary", info: single { $0["length"] = nil; $0["files"] = ["a": 1] },
                   field: "info.files", message: "info.files: expected list, found dictionary"),
    RefusedTorrent("file entry is a string", info: multiFiles(["oops"]),
                   field: "info.files[0]", message: "info.files[0]: expected dictionary, found byte string"),
    RefusedTorrent("file entry without length", info: multiFiles([["path": ["a"]]]),
                   field: "info.files[0].length", message: "info.files[0].length: required field is missing"),
    RefusedTorrent("file entry without path", info: multiFiles([["length": 3]]),
                   field: "info.files[0].path", message: "info.files[0].path: required field is missing"),
    RefusedTorrent("private flag of wrong type", info: single { $0["private"] = "yes" },
                   field: "info.private", message: "info.private: expected integer, found byte string"),
    RefusedTorrent("v2-only torrent",
                   info: ["name": "x", "piece length": 16384, "meta version": 2, "file tree": ["x": [:]]],
                   field: "info.meta version", message: "info.meta version: BitTorrent v2-only torrents are not supported"),
    RefusedTorrent("announce-list tier of wrong type", info: Fixtures.singleFileInfo(), extra: ["announce-list": ["x"]],
                   field: "announce-list[0]", message: "announce-list[0]: expected list, found byte string"),
    RefusedTorrent("announce-list URL of wrong type", info: Fixtures.singleFileInfo(), extra: ["announce-list": [["a", 1]]],
                   field: "announce-list[0][1]", message: "announce-list[0][1]: expected byte string, found integer"),
    RefusedTorrent("announce of wrong type", info: Fixtures.singleFileInfo(), extra: ["announce": 1],
                   field: "announce", message: "announce: expected byte string, found integer"),
]

@Suite struct MetainfoValidationTests {
    @Test(arguments: refusedTorrents)
    func refusesWithTheFieldNamed(_ torrent: RefusedTorrent) throws {
        let error = try #require(Fixtures.metainfoError(torrent.bytes))
        #expect(error.field == torrent.field)
        #expect(error.description == torrent.message)
    }

    @Test func infoParsedAloneAppliesTheSameValidation() throws {
        let info = Bencode.encode(.dictionary(multi([["a"], ["..", "b"]])))
        let error = try #require(throws: MetainfoError.self) { try TorrentInfo.parse(infoBytes: info) }
        #expect(error.description == "info.files[1].path: component \"..\" is not allowed")
        let trailing = try #require(throws: MetainfoError.self) { try TorrentInfo.parse(infoBytes: info + [0x00]) }
        #expect(trailing == .malformedBencode(BencodeError(.trailingData(offset: info.count), path: BencodePath([.key("info")]))))
    }

    @Test func pieceLengthBoundsAreAccepted() throws {
        for pieceLength: Int64 in [16 * 1024, 48 * 1024, 64 * 1024 * 1024] {
            var info = Fixtures.singleFileInfo(length: 100)
            info["piece length"] = .integer(pieceLength)
            #expect(try Metainfo.parse(Fixtures.torrent(info: info)).info.pieceLength == Int(pieceLength))
        }
    }

    @Test func nonUTF8NamesAreKeptUsable() throws {
        var info = Fixtures.singleFileInfo()
        info["name"] = .bytes([0x63, 0x61, 0x66, 0xe9])  // "café" in Latin-1
        let parsed = try Metainfo.parse(Fixtures.torrent(info: info)).info
        #expect(parsed.name == "caf\u{FFFD}")
    }
}
