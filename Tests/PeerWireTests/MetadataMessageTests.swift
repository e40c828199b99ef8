import NIOCore
import PeerWire
import Testing

@Suite struct MetadataMessageTests {
    @Test func requestAndRejectEncodeAsInBEP9() throws {
        #expect(MetadataMessage.request(piece: 0).encode() == Fixtures.ascii("d8:msg_typei0e5:piecei0ee"))
        #expect(MetadataMessage.reject(piece: 3).encode() == Fixtures.ascii("d8:msg_typei2e5:piecei3ee"))
        #expect(try MetadataMessage.decode(Fixtures.ascii("d8:msg_typei0e5:piecei0ee")) == .request(piece: 0))
        #expect(try MetadataMessage.decode(Fixtures.ascii("d8:msg_typei2e5:piecei3ee")) == .reject(piece: 3))
    }

    @Test func dataMessageCarriesTheBytesAfterTheDictionary() throws {
        // The raw bytes look like bencode themselves; they must not be parsed.
        let raw = Fixtures.ascii("d4:infod6:lengthi1ee") + [0, 0xFF, UInt8(ascii: "e")]
        let payload = Fixtures.ascii("d8:msg_typei1e5:piecei1e10:total_sizei34256ee") + raw
        let message = try MetadataMessage.decode(payload)
        #expect(message == .data(piece: 1, totalSize: 34256, payload: raw))
        #expect(message?.encode() == payload)
    }

    @Test func dataMessageRoundTripsThroughAByteBuffer() throws {
        let original = MetadataMessage.data(piece: 2, totalSize: 40000, payload: Array(repeating: 7, count: 7232))
        let decoded = try MetadataMessage.decode(ByteBuffer(bytes: original.encode()))
        #expect(decoded == original)
        #expect(decoded?.piece == 2)
    }

    @Test func toleratesUnsortedKeysAndExtraKeys() throws {
        let payload = Fixtures.ascii("d5:piecei4e10:total_sizei9e8:msg_typei1e3:zzzi0ee") + [1, 2, 3]
        #expect(try MetadataMessage.decode(payload) == .data(piece: 4, totalSize: 9, payload: [1, 2, 3]))
    }

    @Test func unknownMessageTypesAreIgnored() throws {
        #expect(try MetadataMessage.decode(Fixtures.ascii("d8:msg_typei7e5:piecei0ee")) == nil)
    }

    @Test(arguments: [
        ("d5:piecei0ee", "ut_metadata: required key 'msg_type' is missing"),
        ("d8:msg_typei0ee", "ut_metadata: required key 'piece' is missing"),
        ("d8:msg_typei0e5:piece1:0e", "ut_metadata: key 'piece' is a byte string, expected an integer"),
        ("d8:msg_typei0e5:piecei-1ee", "ut_metadata: key 'piece' is -1, expected 0...2147483647"),
        ("d8:msg_type1:15:piecei0ee", "ut_metadata: key 'msg_type' is a byte string, expected an integer"),
        ("d8:msg_typei1e5:piecei0ee", "ut_metadata: required key 'total_size' is missing"),
        ("d8:msg_typei1e5:piecei0e10:total_sizei0ee", "ut_metadata: key 'total_size' is 0, expected 1...2147483647"),
        ("i5e", "ut_metadata: payload is an integer, expected a dictionary"),
    ])
    func malformedMessagesAreErrorsNamingTheKey(payload: String, message: String) throws {
        let error = try #require(throws: ExtensionMessageError.self) {
            try MetadataMessage.decode(Fixtures.ascii(payload))
        }
        #expect(error.description == message)
    }

    @Test func dataLongerThanAPieceIsAnError() throws {
        let payload = Fixtures.ascii("d8:msg_typei1e5:piecei0e10:total_sizei99999ee")
            + [UInt8](repeating: 0, count: 16 * 1024 + 1)
        let error = try #require(throws: ExtensionMessageError.self) { try MetadataMessage.decode(payload) }
        #expect(error.description == "ut_metadata: key 'piece data' has 16385 bytes, expected at most 16384")
    }

    @Test func truncatedDictionaryIsAnError() throws {
        let error = try #require(throws: ExtensionMessageError.self) {
            try MetadataMessage.decode(Fixtures.ascii("d8:msg_typei1e5:pie"))
        }
        guard case .notBencoded = error.problem else {
            Issue.record("expected notBencoded, got \(error)")
            return
        }
    }
}
