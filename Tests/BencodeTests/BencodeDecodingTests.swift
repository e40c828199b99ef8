import Bencode
import Testing

private func decode(_ text: String, options: Bencode.DecodingOptions = .strict) throws -> BValue {
    try Bencode.decode(Array(text.utf8), options: options)
}

@Suite struct BencodeDecodingTests {
    @Test func decodesEveryKind() throws {
        #expect(try decode("i42e") == .integer(42))
        #expect(try decode("i-17e") == .integer(-17))
        #expect(try decode("i0e") == .integer(0))
        #expect(try decode("0:") == .bytes([]))
        #expect(try decode("4:spam") == "spam")
        #expect(try decode("le") == .list([]))
        #expect(try decode("de") == .dictionary([:]))
        #expect(try decode("l4:spami7ee") == ["spam", 7])
        let dict = try decode("d3:cow3:moo4:spaml1:a1:bee")
        #expect(dict == ["cow": "moo", "spam": ["a", "b"]])
        #expect(dict["cow"]?.string == "moo")
        #expect(dict["spam"]?.list?.count == 2)
        #expect(dict["missing"] == nil)
    }

    @Test func decodesIntegerExtremes() throws {
        #expect(try decode("i9223372036854775807e") == .integer(.max))
        #expect(try decode("i-9223372036854775808e") == .integer(.min))
    }

    @Test func binaryStringsSurviveAndStringAccessorRequiresUTF8() throws {
        let value = try Bencode.decode([UInt8(ascii: "3"), UInt8(ascii: ":"), 0xff, 0x00, 0xfe])
        #expect(value.bytes == [0xff, 0x00, 0xfe])
        #expect(value.string == nil)
        #expect(try decode("5:héé").string == "héé")
    }

    @Test(arguments: [
        ("i03e", BencodeError.Reason.leadingZero(offset: 0)),
        ("i-03e", .leadingZero(offset: 0)),
        ("i00e", .leadingZero(offset: 0)),
        ("i-0e", .negativeZero(offset: 0)),
        ("ie", .emptyInteger(offset: 0)),
        ("i-e", .emptyInteger(offset: 0)),
        ("03:abc", .leadingZero(offset: 0)),
        ("00:", .leadingZero(offset: 0)),
        ("l03:abce", .leadingZero(offset: 1)),
        ("i9223372036854775808e", .integerOverflow(offset: 0)),
        ("i-9223372036854775809e", .integerOverflow(offset: 0)),
        ("99999999999999999999:x", .integerOverflow(offset: 0)),
        ("i12", .unexpectedEndOfInput(offset: 3, expected: "'e'")),
        ("i1x", .unexpectedByte(UInt8(ascii: "x"), offset: 2, expected: "a digit or 'e'")),
        ("i+1e", .unexpectedByte(UInt8(ascii: "+"), offset: 1, expected: "a digit")),
        ("5:abc", .stringLengthExceedsInput(length: 5, offset: 0, remaining: 3)),
        ("3abc", .unexpectedByte(UInt8(ascii: "a"), offset: 1, expected: "a digit or ':'")),
        ("-3:abc", .unexpectedByte(UInt8(ascii: "-"), offset: 0, expected: "'i', 'l', 'd' or a string length")),
        ("", .unexpectedEndOfInput(offset: 0, expected: "a value")),
        ("l", .unexpectedEndOfInput(offset: 1, expected: "'e' or another element")),
        ("d3:key", .unexpectedEndOfInput(offset: 6, expected: "a value")),
        ("d3:keye", .unexpectedByte(UInt8(ascii: "e"), offset: 6, expected: "'i', 'l', 'd' or a string length")),
        ("di1ei2ee", .nonStringKey(offset: 1)),
        ("d1:ai1e1:ai2ee", .duplicateKey("a", offset: 7)),
        ("d1:bi1e1:ai2ee", .unsortedKey("a", offset: 7)),
        ("i1ei2e", .trailingData(offset: 3)),
        ("4:spamx", .trailingData(offset: 6)),
        ("e", .unexpectedByte(UInt8(ascii: "e"), offset: 0, expected: "'i', 'l', 'd' or a string length")),
    ])
    func rejectsMalformedInput(text: String, expected: BencodeError.Reason) throws {
        let error = try #require(throws: BencodeError.self) { try decode(text) }
        #expect(error.reason == expected)
        #expect(error.offset == expected.offset)
    }

    @Test func errorDescriptionsNameTheProblemAndOffset() throws {
        let error = try #require(throws: BencodeError.self) { try decode("d1:ai03ee") }
        #expect(error.description == "a: leading zero in number at offset 4")
        let duplicate = try #require(throws: BencodeError.self) { try decode("d3:fooi1e3:fooi2ee") }
        #expect(duplicate.description == "duplicate dictionary key \"foo\" at offset 9")
        let binaryKey = try #require(throws: BencodeError.self) { try Bencode.decode(Array("d1:\u{1}i1e1:\u{1}i2ee".utf8)) }
        #expect(binaryKey.description == "duplicate dictionary key 0x01 at offset 7")
    }

    @Test func lenientModeAcceptsUnsortedKeysButStillRefusesDuplicates() throws {
        let value = try decode("d1:bi1e1:ai2ee", options: .lenient)
        #expect(value == ["a": 2, "b": 1])
        // The repeat is not adjacent to its twin, so only a full lookup finds it.
        let error = try #require(throws: BencodeError.self) { try decode("d1:bi1e1:ai2e1:bi3ee", options: .lenient) }
        #expect(error.reason == .duplicateKey("b", offset: 13))
    }

    @Test func sortingIsBytewiseNotByLength() throws {
        // "ab" < "b" bytewise even though it is longer; 0x80 sorts after ASCII (unsigned compare).
        #expect(try decode("d2:abi1e1:bi2ee") == ["ab": 1, "b": 2])
        #expect(try decode("d1:ai1e2:aai2ee") == ["a": 1, "aa": 2])
        let high: [UInt8] = Array("d1:zi1e1:".utf8) + [0x80] + Array("i2ee".utf8)
        #expect(try Bencode.decode(high)[BKey([0x80])] == .integer(2))
    }

    @Test func stringLongerThanConfiguredLimitIsRefusedBeforeReading() throws {
        let options = Bencode.DecodingOptions(maxStringLength: 4)
        #expect(try decode("4:spam", options: options) == "spam")
        let error = try #require(throws: BencodeError.self) { try decode("5:spams", options: options) }
        #expect(error.reason == .stringLengthExceedsLimit(offset: 0, limit: 4))
        // A huge claimed length fails on the limit / the input, never by allocating.
        let huge = try #require(throws: BencodeError.self) { try decode("9999999999999:x") }
        #expect(huge.reason == .stringLengthExceedsLimit(offset: 0, limit: Bencode.DecodingOptions.strict.maxStringLength))
    }

    @Test func nestingUpToTheLimitIsAccepted() throws {
        let depth = 64
        let text = String(repeating: "l", count: depth) + String(repeating: "e", count: depth)
        var value = try decode(text)
        for _ in 0..<(depth - 1) { value = try #require(value.list?.first) }
        #expect(value == .list([]))
    }

    @Test func nestingBombFailsFastWithoutStackOverflow() throws {
        let bomb = [UInt8](repeating: UInt8(ascii: "l"), count: 1_000_000)
        let error = try #require(throws: BencodeError.self) { try Bencode.decode(bomb) }
        #expect(error.reason == .nestingTooDeep(offset: 64, limit: 64))
        // Dictionaries count too.
        let dictBomb = Array(String(repeating: "d1:a", count: 100).utf8)
        #expect(try #require(throws: BencodeError.self) { try Bencode.decode(dictBomb) }.reason == .nestingTooDeep(offset: 64 * 4, limit: 64))
        // A raised limit works too: the parser itself is iterative.
        let deep = [UInt8](repeating: UInt8(ascii: "l"), count: 1_000) + [UInt8](repeating: UInt8(ascii: "e"), count: 1_000)
        let value = try Bencode.decode(deep, options: .init(maxDepth: 1_000))
        #expect(value.list?.count == 1)
    }

    @Test func prefixDecodeReportsConsumedBytes() throws {
        // A ut_metadata data message: a dictionary followed by raw piece bytes.
        let message = Array("d8:msg_typei1e5:piecei0e10:total_sizei3ee".utf8) + [0xde, 0xad, 0xbe]
        let (value, consumed) = try Bencode.decodePrefix(message)
        #expect(value["msg_type"]?.int == 1)
        #expect(consumed == message.count - 3)
        #expect(Array(message[consumed...]) == [0xde, 0xad, 0xbe])
        // The strict full decode refuses the same bytes.
        #expect(try #require(throws: BencodeError.self) { try Bencode.decode(message) }.reason == .trailingData(offset: consumed))
    }

    @Test func decodesSlicesWithOffsetsRelativeToTheSlice() throws {
        let buffer = Array("xxi5e4:spam".utf8)
        let (first, consumed) = try Bencode.decodePrefix(buffer[2...])
        #expect(first == 5)
        #expect(consumed == 3)
        #expect(try Bencode.decode(buffer[5...]) == "spam")
        let error = try #require(throws: BencodeError.self) { try Bencode.decode(buffer[2...]) }
        #expect(error.reason == .trailingData(offset: 3))
    }

    @Test func recordsRawRangesOfTopLevelValues() throws {
        let bytes = Array("d8:announce3:url4:infod4:name1:x6:lengthi3eee".utf8)
        let ranges = try Bencode.rawValueRanges(ofTopLevelDictionary: bytes, options: .lenient)
        let info = try #require(ranges["info"])
        #expect(String(decoding: bytes[info], as: UTF8.self) == "d4:name1:x6:lengthi3ee")
        let announce = try #require(ranges["announce"])
        #expect(String(decoding: bytes[announce], as: UTF8.self) == "3:url")
        // Nested dictionaries' keys are not top-level entries.
        #expect(ranges["name"] == nil)
        let decoded = try Bencode.decodeTopLevelDictionary(bytes, options: .lenient)
        #expect(decoded.entries["announce"] == "url")
    }

    @Test func rawRangesRequireADictionary() throws {
        #expect(try #require(throws: BencodeError.self) { try Bencode.rawValueRanges(ofTopLevelDictionary: Array("li1ee".utf8)) }.reason
            == .topLevelNotDictionary(offset: 0))
        #expect(try #require(throws: BencodeError.self) { try Bencode.rawValueRanges(ofTopLevelDictionary: Array("de1:x".utf8)) }.reason
            == .trailingData(offset: 2))
    }
}

@Suite struct BencodeErrorPathTests {
    @Test(arguments: [
        ("d4:infod5:filesld6:lengthi1eed6:lengthi03eeeee", "info.files[1].length", "leading zero in number at offset 38"),
        ("li1eli2ei3e", "[1][2]", "input ends at offset 11 where 'e' or another element was expected"),
        ("d1:ad1:bi1e1:bi2eee", "a", "duplicate dictionary key \"b\" at offset 11"),
        ("d1:al5:abce", "a[0]", "byte string at offset 5 claims 5 bytes but only 4 remain"),
        ("d3:\u{1}\u{2}xi-0ee", "0x010278", "negative zero in integer at offset 6"),
        ("d4:a.b[li-ee", "a.b[[0]", "integer without digits at offset 8"),
        ("i03e", "", "leading zero in number at offset 0"),
        ("d4:infod12:piece lengthi-0eee", "info.piece length", "negative zero in integer at offset 23"),
    ])
    func errorsNameTheEnclosingField(text: String, path: String, reason: String) throws {
        let error = try #require(throws: BencodeError.self) { try Bencode.decode(Array(text.utf8), options: .lenient) }
        #expect(error.path.description == path)
        #expect(error.reason.description == reason)
        #expect(error.description == (path.isEmpty ? reason : "\(path): \(reason)"))
    }

    @Test func nestingUnderAnOuterPathPrefixesIt() throws {
        let error = try #require(throws: BencodeError.self) { try Bencode.decode(Array("d1:xi03ee".utf8)) }
        let nested = error.nested(under: BencodePath([.key("info"), .index(2)]))
        #expect(nested.description == "info[2].x: leading zero in number at offset 4")
        #expect(nested.reason == error.reason)
    }
}
