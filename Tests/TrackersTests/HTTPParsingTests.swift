import Bencode
import Testing
import TorrentModel
@testable import Trackers

@Suite struct HTTPParsingTests {
    @Test func percentEncodingKeepsOnlyUnreservedCharacters() {
        #expect(HTTPAnnounceQuery.percentEncode([0x00, 0x41, 0xFF, 0x2D, 0x7E, 0x20, 0x25, 0x26, 0x2E, 0x5F])
            == "%00A%FF-~%20%25%26._")
    }

    @Test func queryCarriesEveryFieldAndKeepsThePasskey() throws {
        let base = try TrackerURL(parsing: "http://tracker.example:6969/announce?passkey=s3cr%20t#frag")
        var request = Fixtures.request(event: .completed)
        request.trackerID = "id 7"
        let url = HTTPAnnounceQuery.url(for: request, announceURL: base)
        #expect(url.path == "/announce")
        #expect(url.query == "passkey=s3cr%20t&info_hash=%00%FF%25%26%3D%20A~-%80%11%11%11%11%11%11%11%11%11%11"
            + "&peer_id=-BW0001-abcdefghijkl&port=51413&uploaded=10&downloaded=20&left=1000&compact=1&numwant=50"
            + "&key=DEADBEEF&event=completed&trackerid=id%207")
        #expect(url.hostHeader == "tracker.example:6969")
    }

    @Test func regularAnnounceHasNoEventParameter() throws {
        let url = HTTPAnnounceQuery.url(for: Fixtures.request(event: .none), announceURL: try TrackerURL(parsing: "http://t.example/a"))
        #expect(url.query?.contains("event=") == false)
        #expect(url.hostHeader == "t.example")
    }

    @Test func urlParsing() throws {
        let https = try TrackerURL(parsing: "HTTPS://Tracker.Example/announce")
        #expect(https.scheme == .https && https.host == "tracker.example" && https.port == 443 && https.path == "/announce")
        let v6 = try TrackerURL(parsing: "udp://[2001:db8::1]:6969")
        #expect(v6.host == "2001:db8::1" && v6.port == 6969 && v6.path == "/" && v6.hostHeader == "[2001:db8::1]:6969")
        #expect(v6.hostIsIPLiteral)
        let bare = try TrackerURL(parsing: "http://t.example?x=1")
        #expect(bare.path == "/" && bare.query == "x=1")
    }

    @Test(arguments: [
        ("wss://tracker.example/announce", "scheme \"wss\" is not supported"),
        ("udp://tracker.example/announce", "a udp tracker URL needs a port"),
        ("http://tracker.example:99999/", "port \"99999\" is not a number from 1 to 65535"),
        ("http:///announce", "no host"),
        ("tracker.example/announce", "no scheme"),
        ("http://bad host/", "contains the character U+20"),
    ])
    func badURLsSayWhatIsWrong(url: String, reason: String) {
        #expect(throws: TrackerError.self) { try TrackerURL(parsing: url) }
        do {
            _ = try TrackerURL(parsing: url)
        } catch {
            guard case .unsupportedURL(let reported, let why) = error else { Issue.record("wrong error \(error)"); return }
            #expect(reported == url)
            #expect(why.hasPrefix(reason), "reason was \(why)")
        }
    }

    @Test func redirectReferencesResolve() throws {
        let base = try TrackerURL(parsing: "http://a.example:8080/x/announce?old=1")
        #expect(try base.resolving(reference: "https://b.example/y").description == "https://b.example/y")
        #expect(try base.resolving(reference: "//c.example/z?q").description == "http://c.example/z?q")
        #expect(try base.resolving(reference: "/other?new=2").description == "http://a.example:8080/other?new=2")
        #expect(try base.resolving(reference: "next").description == "http://a.example:8080/x/next")
    }

    // MARK: Response bodies

    @Test func compactResponseWithEveryOptionalField() throws {
        let body = Bencode.encode([
            "interval": 1800, "min interval": 60, "complete": 12, "incomplete": 3,
            "warning message": "be nice", "tracker id": "T-42",
            "external ip": .bytes([203, 0, 113, 9]),
            "peers": .bytes([10, 0, 0, 1, 0x1A, 0xE1, 10, 0, 0, 2, 0x00, 0x50]),
            "peers6": .bytes([0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1, 0x1A, 0xE1]),
        ])
        let response = try HTTPAnnounceResponseParser.parse(body)
        #expect(response.interval == 1800 && response.minInterval == 60)
        #expect(response.seeders == 12 && response.leechers == 3)
        #expect(response.warning == "be nice" && response.trackerID == "T-42")
        #expect(response.externalIP == [203, 0, 113, 9])
        #expect(response.peers == [Fixtures.peer("10.0.0.1:6881"), Fixtures.peer("10.0.0.2:80"), Fixtures.peer("[2001:db8::1]:6881")])
    }

    @Test func dictionaryPeersSkipHostNames() throws {
        let body = Bencode.encode([
            "interval": 900,
            "peers": [
                ["ip": "192.0.2.5", "port": 6881, "peer id": .bytes(Array(repeating: 1, count: 20))],
                ["ip": "2001:db8::7", "port": 51413],
                ["ip": "peer.example", "port": 6881],
            ],
        ])
        #expect(try HTTPAnnounceResponseParser.parse(body).peers == [Fixtures.peer("192.0.2.5:6881"), Fixtures.peer("[2001:db8::7]:51413")])
    }

    @Test func unsortedKeysAreAccepted() throws {
        let body = Array("d8:intervali60e5:peers0:8:completei1ee".utf8)
        let response = try HTTPAnnounceResponseParser.parse(body)
        #expect(response.interval == 60 && response.seeders == 1 && response.peers.isEmpty)
    }

    @Test func failureReasonBecomesFailure() {
        #expect(throws: TrackerError.failure(reason: "torrent not registered")) {
            try HTTPAnnounceResponseParser.parse(Bencode.encode(["failure reason": "torrent not registered"]))
        }
    }

    @Test(arguments: [
        (Bencode.encode(["interval": 60, "peers": .bytes([1, 2, 3, 4, 5, 6, 7])]), "peers: length 7 is not a multiple of 6"),
        (Bencode.encode(["interval": 60, "peers6": .bytes(Array(repeating: 0, count: 17))]), "peers6: length 17 is not a multiple of 18"),
        (Bencode.encode(["interval": "soon"]), "interval: expected an integer, found a byte string"),
        (Bencode.encode(["interval": 0]), "interval: 0 is not a positive number of seconds"),
        (Bencode.encode(["interval": 60, "peers": [["ip": "1.2.3.4"]]]), "peers[0]: \"port\" is missing or not an integer"),
        (Bencode.encode(["interval": 60, "peers": [5]]), "peers[0]: expected a dictionary, found an integer"),
        (Bencode.encode(["interval": 60, "peers": 5]), "peers: expected a byte string or a list, found an integer"),
        (Bencode.encode([1, 2]), "body is a bencoded list, not a dictionary"),
        (Array("<html>oops</html>".utf8), "body is not bencode"),
        ([UInt8](), "empty body"),
    ])
    func malformedBodiesNameTheProblem(body: [UInt8], message: String) {
        do {
            _ = try HTTPAnnounceResponseParser.parse(body)
            Issue.record("parsed a malformed body")
        } catch {
            guard case .malformedResponse(let text) = error else { Issue.record("wrong error \(error)"); return }
            #expect(text.hasPrefix(message), "message was \(text)")
        }
    }

    @Test func garbagePreviewShowsTheBody() {
        do {
            _ = try HTTPAnnounceResponseParser.parse(Array("<html>oops</html>".utf8))
        } catch {
            #expect(error.description.contains("\"<html>oops</html>\""))
        }
    }
}
