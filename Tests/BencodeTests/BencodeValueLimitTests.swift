import Bencode
import Testing

@Suite struct BencodeValueLimitTests {
    private func decode(_ text: String, maxValues: Int) throws -> BValue {
        var options = Bencode.DecodingOptions.strict
        options.maxValues = maxValues
        return try Bencode.decode(Array(text.utf8), options: options)
    }

    @Test func theParseStopsAtTheFirstValueOverTheLimit() throws {
        #expect(try decode("li1ei2ei3ee", maxValues: 4) == .list([.integer(1), .integer(2), .integer(3)]))
        // The list, then 1 and 2: the third integer (at offset 7) is one too many.
        let list = try #require(throws: BencodeError.self) { try decode("li1ei2ei3ee", maxValues: 3) }
        #expect(list.reason == .tooManyValues(offset: 7, limit: 3))
        // Keys count too: dictionary, key, value.
        #expect(try decode("d1:ai1ee", maxValues: 3) == .dictionary([BKey("a"): .integer(1)]))
        let dictionary = try #require(throws: BencodeError.self) { try decode("d1:ai1ee", maxValues: 2) }
        #expect(dictionary.reason == .tooManyValues(offset: 4, limit: 2))
        #expect(list.description == "[2]: more than 3 values (the limit) at offset 7")
    }
}
