import Testing
import TorrentModel

@Suite struct GeometryTests {
    /// Files of 10 000, 0, 30 000 and 5 000 bytes in 16 KiB pieces (total 45 000, 3 pieces, last short).
    let info: TorrentInfo = {
        let dict = Fixtures.multiFileInfo(files: [(["a"], 10_000), (["empty"], 0), (["b"], 30_000), (["c"], 5_000)])
        return try! Metainfo.parse(Fixtures.torrent(info: dict)).info
    }()

    @Test func pieceLengthsWithShortLastPiece() {
        #expect(info.pieceCount == 3)
        #expect((0..<3).map(info.length(ofPiece:)) == [16_384, 16_384, 45_000 - 32_768])
    }

    @Test func filesOverlappingEachPiece() {
        // Piece 0 covers bytes 0..<16384: "a" (0..<10000) and the start of "b" (10000..<40000).
        // The zero-length file sits exactly at offset 10000 inside the range, so the contiguous
        // range includes it; callers skip zero-length files when reading.
        #expect(info.files(overlappingPiece: 0) == 0..<3)
        #expect(info.files(overlappingPiece: 1) == 2..<3)
        // Piece 2 covers 32768..<45000: the end of "b" and all of "c".
        #expect(info.files(overlappingPiece: 2) == 2..<4)
    }

    @Test func piecesOverlappingEachFile() {
        #expect(info.pieces(overlappingFile: 0) == 0..<1)
        #expect(info.pieces(overlappingFile: 1) == 0..<0)
        #expect(info.pieces(overlappingFile: 2) == 0..<3)
        #expect(info.pieces(overlappingFile: 3) == 2..<3)
    }

    @Test func fileBoundaryExactlyOnPieceBoundary() throws {
        let dict = Fixtures.multiFileInfo(files: [(["a"], 16_384), (["b"], 16_384)])
        let info = try Metainfo.parse(Fixtures.torrent(info: dict)).info
        #expect(info.files(overlappingPiece: 0) == 0..<1)
        #expect(info.files(overlappingPiece: 1) == 1..<2)
        #expect(info.pieces(overlappingFile: 0) == 0..<1)
        #expect(info.pieces(overlappingFile: 1) == 1..<2)
    }

    @Test func bitfieldWireRoundTrip() throws {
        var bitfield = Bitfield(count: 11)
        bitfield[0] = true
        bitfield[7] = true
        bitfield[10] = true
        #expect(bitfield.bytes == [0b1000_0001, 0b0010_0000])
        #expect(bitfield.cardinality == 3)
        let received = try #require(Bitfield(count: 11, wireBytes: bitfield.bytes))
        #expect(received == bitfield)
        #expect(received.setIndices == [0, 7, 10])
        let full = Bitfield(count: 11, allSet: true)
        #expect(full.bytes == [0xff, 0b1110_0000])
        #expect(full.isComplete)
    }

    @Test func bitfieldRejectsSpareBitsAndWrongLength() {
        #expect(Bitfield(count: 11, wireBytes: [0xff, 0b1111_0000]) == nil)  // bit 11 set
        #expect(Bitfield(count: 11, wireBytes: [0xff, 0b0000_0001]) == nil)  // bit 15 set
        #expect(Bitfield(count: 11, wireBytes: [0xff]) == nil)
        #expect(Bitfield(count: 11, wireBytes: [0xff, 0, 0]) == nil)
        #expect(Bitfield(count: 16, wireBytes: [0xff, 0xff]) != nil)
    }

    @Test func compactPeerAddressesRoundTrip() throws {
        let v4 = try #require(PeerAddress.parseCompact([10, 0, 0, 1, 0x1a, 0xe1, 192, 168, 1, 2, 0, 80], ipv6: false))
        #expect(v4.map(\.description) == ["10.0.0.1:6881", "192.168.1.2:80"])
        #expect(v4[0].compact == [10, 0, 0, 1, 0x1a, 0xe1])
        #expect(PeerAddress.parseCompact([1, 2, 3, 4, 5], ipv6: false) == nil)
        let v6Bytes: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1, 0x1a, 0xe1]
        let v6 = try #require(PeerAddress.parseCompact(v6Bytes, ipv6: true))
        #expect(v6.first?.description == "[2001:db8::1]:6881")
        #expect(v6.first?.compact == v6Bytes)
    }

    @Test(arguments: [
        ("::1", "::1"), ("::", "::"), ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"), ("1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0"),
        ("fe80::1%eth0", "fe80::1"), ("::ffff:1.2.3.4", "::ffff:102:304"), ("1::", "1::"),
    ])
    func ipv6TextIsRFC5952(input: String, expected: String) throws {
        let bytes = try #require(IPAddressText.parseV6(input))
        let address = try #require(PeerAddress(ip: bytes, port: 1))
        #expect(address.ipString == expected)
        #expect(PeerAddress(parsing: "[\(input)]:1") == address)
    }

    @Test func peerAddressTextParsing() {
        #expect(PeerAddress(parsing: "127.0.0.1:6881")?.ip == [127, 0, 0, 1])
        #expect(PeerAddress(parsing: "[::1]:51413")?.port == 51413)
        #expect(PeerAddress(parsing: "example.com:80") == nil)
        #expect(PeerAddress(parsing: "1.2.3.4") == nil)
        #expect(PeerAddress(parsing: "1.2.3.256:1") == nil)
        #expect(PeerAddress(parsing: "[1:2:3:4:5:6:7:8:9]:1") == nil)
    }
}
