import Testing
import TorrentModel

@Suite struct MagnetLinkTests {
    let hex = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"

    @Test func parsesHexInfoHashNameTrackersAndPeers() throws {
        let link = try MagnetLink.parse(
            "magnet:?xt=urn:btih:\(hex.uppercased())&dn=Big+Buck%20Bunny"
                + "&tr=udp%3A%2F%2Ftracker.example%3A6969%2Fannounce&tr=http%3A%2F%2Fb.example%2Fannounce"
                + "&tr=udp%3A%2F%2Ftracker.example%3A6969%2Fannounce&x.pe=10.0.0.1%3A6881&x.pe=[::1]:51413")
        #expect(link.infoHash.hex == hex)
        #expect(link.displayName == "Big Buck Bunny")
        #expect(link.trackers == ["udp://tracker.example:6969/announce", "http://b.example/announce"])
        #expect(link.peers == ["10.0.0.1:6881", "[::1]:51413"])
    }

    @Test func parsesBase32InfoHash() throws {
        // Base32 of the 20 bytes 0x00, 0x01, ... 0x13.
        let link = try MagnetLink.parse("magnet:?xt=urn:btih:AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT")
        #expect(link.infoHash.bytes == Array(0..<20))
        let lower = try MagnetLink.parse("magnet:?xt=urn:btih:aaaqeayeaudaocajbifqydiob4ibceqt")
        #expect(lower.infoHash == link.infoHash)
    }

    @Test func acceptsNumberedParametersAndIgnoresUnknownOnes() throws {
        let link = try MagnetLink.parse(
            "MAGNET:?xt.1=urn:btmh:1220abcd&xt.2=urn:btih:\(hex)&tr.1=http%3A%2F%2Fa&tr.2=http%3A%2F%2Fb&xl=123&ws=x")
        #expect(link.infoHash.hex == hex)
        #expect(link.trackers == ["http://a", "http://b"])
        #expect(link.displayName == nil)
        #expect(link.peers.isEmpty)
    }

    @Test func rendersAndReparsesToAnEqualLink() throws {
        let original = MagnetLink(
            infoHash: try #require(InfoHash(hex: hex)), displayName: "Ünïcode & spaces/slashes?",
            trackers: ["udp://t.example:1337/announce?key=a&b=c", "http://x.example/"],
            peers: ["[2001:db8::1]:6881"])
        let uri = original.uri
        #expect(uri.hasPrefix("magnet:?xt=urn:btih:\(hex)&dn="))
        #expect(!uri.contains(" "))
        #expect(try MagnetLink.parse(uri) == original)
        let minimal = MagnetLink(infoHash: original.infoHash, displayName: nil, trackers: [], peers: [])
        #expect(minimal.uri == "magnet:?xt=urn:btih:\(hex)")
    }

    @Test(arguments: [
        ("http://example.com/?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a", MagnetLinkError.notAMagnetURI),
        ("", .notAMagnetURI),
        ("magnet:", .notAMagnetURI),
        ("magnet:?dn=name&tr=http%3A%2F%2Fa", .missingInfoHash),
        ("magnet:?xt=urn:btmh:1220c12fe1c06bba254a9dc9f519b335aa7c1367a88a", .missingInfoHash),
        ("magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88", .invalidInfoHash("c12fe1c06bba254a9dc9f519b335aa7c1367a88")),
        ("magnet:?xt=urn:btih:z12fe1c06bba254a9dc9f519b335aa7c1367a88a", .invalidInfoHash("z12fe1c06bba254a9dc9f519b335aa7c1367a88a")),
        ("magnet:?xt=urn:btih:AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQ1", .invalidInfoHash("AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQ1")),
        ("magnet:?xt=urn:btih:", .invalidInfoHash("")),
        ("magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&xt=urn:btih:0000000000000000000000000000000000000000",
         .conflictingInfoHashes),
        ("magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&tr=%zz", .invalidPercentEncoding(parameter: "tr")),
        ("magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=%4", .invalidPercentEncoding(parameter: "dn")),
        ("magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=%ff", .invalidPercentEncoding(parameter: "dn")),
    ])
    func refusesGarbage(uri: String, expected: MagnetLinkError) throws {
        let error = try #require(throws: MagnetLinkError.self) { try MagnetLink.parse(uri) }
        #expect(error == expected)
    }

    @Test func errorMessagesSayWhatIsWrong() {
        #expect(MagnetLinkError.missingInfoHash.description == "magnet URI has no \"xt=urn:btih:\" info hash")
        #expect(MagnetLinkError.invalidInfoHash("xyz").description
            == "magnet info hash \"xyz\" is neither 40 hex nor 32 base32 characters")
    }
}

@Suite struct MagnetLinkWarningTests {
    static let hash = String(repeating: "0f", count: 20)

    @Test func unusablePeersAreDroppedWithAWarningEach() throws {
        let (link, warnings) = try MagnetLink.parseReportingWarnings(
            "magnet:?xt=urn:btih:\(Self.hash)&x.pe=10.0.0.1:6881&x.pe=peer.example:6881&x.pe=10.0.0.2"
            + "&x.pe=[::1]:51413&x.pe=10.0.0.3:0&x.pe=10.0.0.4:70000&x.pe=peer.example:6881&x.pe=%20")
        #expect(link.peers == ["10.0.0.1:6881", "[::1]:51413"])
        #expect(warnings == [.invalidPeer("peer.example:6881"), .invalidPeer("10.0.0.2"),
                             .invalidPeer("10.0.0.3:0"), .invalidPeer("10.0.0.4:70000")])
        #expect(warnings[0].description == "ignoring magnet peer x.pe=\"peer.example:6881\": expected ip:port or [ipv6]:port")
        // Plain `parse` drops the same peers.
        #expect(try MagnetLink.parse("magnet:?xt=urn:btih:\(Self.hash)&x.pe=peer.example:6881").peers.isEmpty)
    }

    @Test func aCleanLinkHasNoWarnings() throws {
        let (_, warnings) = try MagnetLink.parseReportingWarnings("magnet:?xt=urn:btih:\(Self.hash)&x.pe=10.0.0.1:6881")
        #expect(warnings.isEmpty)
    }
}
