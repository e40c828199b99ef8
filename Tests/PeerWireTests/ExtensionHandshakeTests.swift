import NIOCore
import PeerWire
import Testing

@Suite struct ExtensionHandshakeTests {
    /// Shaped like the handshake libtorrent 2.x (qBittorrent 4.6) sends, keys in libtorrent's order.
    static let libtorrentPayload: [UInt8] =
        Fixtures.ascii(
            "d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e"
                + "11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei31235e1:pi51413e4:reqqi500e11:upload_onlyi0e"
                + "1:v17:qBittorrent/4.6.26:yourip4:") + [203, 0, 113, 7] + Fixtures.ascii("e")

    @Test func decodesLibtorrentHandshake() throws {
        let handshake = try ExtensionHandshake.decode(Self.libtorrentPayload)
        #expect(handshake.m == [
            "lt_donthave": 7, "share_mode": 8, "upload_only": 3, "ut_holepunch": 4, "ut_metadata": 2, "ut_pex": 1,
        ])
        #expect(handshake.messageID(for: LocalExtensionIDs.utMetadataName) == 2)
        #expect(handshake.messageID(for: LocalExtensionIDs.utPexName) == 1)
        #expect(handshake.messageID(for: "lt_unknown") == nil)
        #expect(handshake.port == 51413)
        #expect(handshake.client == "qBittorrent/4.6.2")
        #expect(handshake.yourIP == [203, 0, 113, 7])
        #expect(handshake.requestQueueLength == 500)
        #expect(handshake.metadataSize == 31235)
        #expect(handshake.uploadOnly == false)
        #expect(handshake.ipv4 == nil && handshake.ipv6 == nil)
    }

    @Test func decodesFromAByteBufferSliceOfTheFrame() throws {
        let frame = try Fixtures.decodeMessages(
            try Fixtures.wire([.extended(id: 0, payload: ByteBuffer(bytes: Self.libtorrentPayload))]))
        guard case .extended(0, let payload) = frame.first else {
            Issue.record("expected an extension handshake, got \(frame)")
            return
        }
        #expect(try ExtensionHandshake.decode(payload).client == "qBittorrent/4.6.2")
    }

    @Test func ourHandshakeEncodesCanonically() {
        let ours = ExtensionHandshake(
            m: LocalExtensionIDs.all, port: 6881, client: "Burrow 0.1", requestQueueLength: 250)
        #expect(ours.encode() == Fixtures.ascii(
            "d1:md11:ut_metadatai1e6:ut_pexi2ee1:pi6881e4:reqqi250e1:v10:Burrow 0.1e"))
    }

    @Test func everyFieldRoundTripsWithIPv6YourIP() throws {
        let v6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
        let original = ExtensionHandshake(
            m: ["ut_metadata": 3, "ut_pex": 0], port: 1, client: "tëst", yourIP: v6, ipv4: [10, 0, 0, 1],
            ipv6: v6, requestQueueLength: 0, metadataSize: 16 * 1024 * 1024, uploadOnly: true)
        let decoded = try ExtensionHandshake.decode(original.encode())
        #expect(decoded == original)
        #expect(decoded.yourIP?.count == 16)
        #expect(decoded.messageID(for: "ut_pex") == nil)  // 0 = disabled
    }

    @Test func yourIPv4RoundTrips() throws {
        let original = ExtensionHandshake(m: [:], yourIP: [192, 0, 2, 1])
        #expect(try ExtensionHandshake.decode(original.encode()).yourIP == [192, 0, 2, 1])
    }

    @Test func toleratesUnsortedDictionariesAndUnknownKeys() throws {
        let payload = Fixtures.ascii(
            "d1:v5:Other1:md6:ut_pexi5e11:ut_metadatai6ee1:ei1e7:unknownld1:xi1eee1:pi80e11:upload_onlyi1ee")
        let handshake = try ExtensionHandshake.decode(payload)
        #expect(handshake.m == ["ut_pex": 5, "ut_metadata": 6])
        #expect(handshake.client == "Other")
        #expect(handshake.port == 80)
        #expect(handshake.uploadOnly)
    }

    @Test func emptyDictionaryIsAValidHandshake() throws {
        #expect(try ExtensionHandshake.decode(Fixtures.ascii("de")) == ExtensionHandshake())
    }

    @Test(arguments: [
        ("d1:p4:6881e", "extension handshake: key 'p' is a byte string, expected an integer"),
        ("d1:pi70000ee", "extension handshake: key 'p' is 70000, expected 0...65535"),
        ("d1:mi1ee", "extension handshake: key 'm' is an integer, expected a dictionary"),
        ("d1:md6:ut_pex1:1ee", "extension handshake: key 'm.ut_pex' is a byte string, expected an integer"),
        ("d1:md6:ut_pexi256eee", "extension handshake: key 'm.ut_pex' is 256, expected 0...255"),
        ("d6:yourip5:abcdee", "extension handshake: key 'yourip' has length 5, expected 4 or 16"),
        ("d4:ipv45:abcdee", "extension handshake: key 'ipv4' has length 5, expected 4"),
        ("d4:ipv63:abce", "extension handshake: key 'ipv6' has length 3, expected 16"),
        ("d4:reqqi-1ee", "extension handshake: key 'reqq' is -1, expected 0...\(Int.max)"),
        ("d13:metadata_size3:abce", "extension handshake: key 'metadata_size' is a byte string, expected an integer"),
        ("d11:upload_only1:1e", "extension handshake: key 'upload_only' is a byte string, expected an integer"),
        ("li1ee", "extension handshake: payload is a list, expected a dictionary"),
    ])
    func wrongTypesOfKnownKeysAreErrorsNamingTheKey(payload: String, message: String) throws {
        let error = try #require(throws: ExtensionMessageError.self) {
            try ExtensionHandshake.decode(Fixtures.ascii(payload))
        }
        #expect(error.description == message)
    }

    /// Found by the extension-message fuzz target: with several bad entries in `m`, which one the error
    /// named followed the dictionary's iteration order, which differs between two decodes of the same bytes
    /// (it depends on where the dictionary's storage was allocated, and on its size: hence the varied sizes
    /// and the ballast that keeps each decode from reusing the last one's memory).
    @Test func theSameBytesAlwaysGiveTheSameErrorNamingTheFirstBadEntry() throws {
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        var ballast: [[UInt8]] = []
        for count in 8..<40 {
            let entries = (0..<count).map { "6:bad_\(letters[$0 / 26])\(letters[$0 % 26])i\(300 + $0)e" }
            let error = try #require(throws: ExtensionMessageError.self) {
                try ExtensionHandshake.decode(Fixtures.ascii("d1:md" + entries.joined() + "ee"))
            }
            #expect(error.description == "extension handshake: key 'm.bad_aa' is 300, expected 0...255")
            ballast.append([UInt8](repeating: 0, count: 48 * count))
        }
    }

    /// Two names that differ in bytes but are equal as Swift strings ("é" precomposed and decomposed): the
    /// later one in wire order wins, every time.
    @Test func namesEqualAsTextResolveTheSameWayEveryTime() throws {
        let payload = Fixtures.ascii("d1:md3:e") + [0xCC, 0x81] + Fixtures.ascii("i1e2:") + [0xC3, 0xA9]
            + Fixtures.ascii("i2eee")
        for _ in 0..<20 {
            #expect(try ExtensionHandshake.decode(payload).m == ["\u{E9}": 2])
        }
    }

    @Test func invalidBencodeIsAnError() throws {
        let error = try #require(throws: ExtensionMessageError.self) {
            try ExtensionHandshake.decode(Fixtures.ascii("d1:m"))
        }
        guard case .notBencoded = error.problem else {
            Issue.record("expected notBencoded, got \(error)")
            return
        }
        #expect(error.description.hasPrefix("extension handshake: payload is not valid bencode: "))
    }

    @Test func localExtensionIDsAreFixed() {
        #expect(LocalExtensionIDs.utMetadata == 1)
        #expect(LocalExtensionIDs.utPex == 2)
        #expect(LocalExtensionIDs.name(of: 1) == "ut_metadata")
        #expect(LocalExtensionIDs.name(of: 2) == "ut_pex")
        #expect(LocalExtensionIDs.name(of: 3) == nil)
    }
}
