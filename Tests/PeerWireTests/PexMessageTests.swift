import PeerWire
import Testing
import TorrentModel

@Suite struct PexMessageTests {
    static let v4a = PeerAddress(ip: [192, 0, 2, 1], port: 6881)!
    static let v4b = PeerAddress(ip: [198, 51, 100, 9], port: 51413)!
    static let v6a = PeerAddress(ip: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1], port: 6881)!
    static let v6b = PeerAddress(ip: [UInt8](repeating: 0, count: 15) + [1], port: 443)!

    @Test func ipv4RoundTrip() throws {
        let message = PexMessage(
            added: [Self.v4a, Self.v4b], addedFlags: [PexPeerFlags.seed, PexPeerFlags.supportsUTP | PexPeerFlags.reachable],
            dropped: [Self.v4b])
        #expect(try PexMessage.decode(message.encode()) == message)
    }

    @Test func ipv6RoundTrip() throws {
        let message = PexMessage(added6: [Self.v6a, Self.v6b], added6Flags: [0, PexPeerFlags.prefersEncryption], dropped6: [Self.v6a])
        #expect(try PexMessage.decode(message.encode()) == message)
    }

    @Test func handWrittenPayloadDecodes() throws {
        let payload = Fixtures.ascii("d5:added12:") + Self.v4a.compact + Self.v4b.compact
            + Fixtures.ascii("7:added.f2:") + [0x02, 0x10]
            + Fixtures.ascii("6:added60:7:dropped6:") + Self.v4b.compact
            + Fixtures.ascii("8:dropped618:") + Self.v6b.compact + Fixtures.ascii("e")
        let message = try PexMessage.decode(payload)
        #expect(message.added == [Self.v4a, Self.v4b])
        #expect(message.addedFlags == [0x02, 0x10])
        #expect(message.added6.isEmpty && message.added6Flags.isEmpty)
        #expect(message.dropped == [Self.v4b])
        #expect(message.dropped6 == [Self.v6b])
    }

    @Test func encodingIsCanonicalAndWritesEveryList() {
        let message = PexMessage(added: [Self.v4a], addedFlags: [1])
        #expect(message.encode() == Fixtures.ascii("d5:added6:") + Self.v4a.compact
            + Fixtures.ascii("7:added.f1:") + [1] + Fixtures.ascii("6:added60:8:added6.f0:7:dropped0:8:dropped60:e"))
    }

    @Test func flagsThatDoNotMatchThePeersAreReadAsZero() throws {
        let payload = Fixtures.ascii("d5:added12:") + Self.v4a.compact + Self.v4b.compact
            + Fixtures.ascii("7:added.f1:") + [0x02] + Fixtures.ascii("e")
        let message = try PexMessage.decode(payload)
        #expect(message.addedFlags == [0, 0])
    }

    @Test func missingFlagsAreSentAsZeroAndWrongFamiliesAreLeftOut() throws {
        let message = PexMessage(added: [Self.v4a, Self.v6a, Self.v4b], addedFlags: [3])
        let decoded = try PexMessage.decode(message.encode())
        #expect(decoded.added == [Self.v4a, Self.v4b])
        #expect(decoded.addedFlags == [3, 0])
    }

    @Test func decodingTruncatesHugeListsAndEncodingCapsAtFifty() throws {
        let many = (0..<1000).map { PeerAddress(ip: [10, 0, UInt8($0 >> 8), UInt8($0 & 0xff)], port: 1)! }
        let payload = Fixtures.ascii("d5:added6000:") + many.flatMap(\.compact)
            + Fixtures.ascii("7:added.f1000:") + [UInt8](repeating: 2, count: 1000) + Fixtures.ascii("e")
        let decoded = try PexMessage.decode(payload)
        #expect(decoded.added == Array(many.prefix(PexMessage.maxDecodedEntries)))
        #expect(decoded.addedFlags == [UInt8](repeating: 2, count: PexMessage.maxDecodedEntries))

        let reencoded = try PexMessage.decode(decoded.encode())
        #expect(reencoded.added == Array(many.prefix(PexMessage.maxEncodedEntries)))
        #expect(reencoded.addedFlags.count == 50)
    }

    @Test(arguments: [
        ("d5:added7:abcdefge", "ut_pex: key 'added' has length 7, which is not a multiple of 6"),
        ("d6:added66:abcdefe", "ut_pex: key 'added6' has length 6, which is not a multiple of 18"),
        ("d5:addedi1ee", "ut_pex: key 'added' is an integer, expected a byte string"),
        ("d7:droppedlee", "ut_pex: key 'dropped' is a list, expected a byte string"),
        ("d5:added0:7:added.fi0ee", "ut_pex: key 'added.f' is an integer, expected a byte string"),
        ("le", "ut_pex: payload is a list, expected a dictionary"),
    ])
    func malformedMessagesAreErrors(payload: String, message: String) throws {
        let error = try #require(throws: ExtensionMessageError.self) { try PexMessage.decode(Fixtures.ascii(payload)) }
        #expect(error.description == message)
    }

    @Test func emptyMessageAndUnknownKeysAreFine() throws {
        #expect(try PexMessage.decode(Fixtures.ascii("de")) == PexMessage())
        #expect(try PexMessage.decode(Fixtures.ascii("d1:xi1e1:ali1eee")) == PexMessage())
    }
}
