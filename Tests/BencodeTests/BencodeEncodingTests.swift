import Bencode
import Testing

@Suite struct BencodeEncodingTests {
    private func text(_ value: BValue) -> String { String(decoding: Bencode.encode(value), as: UTF8.self) }

    @Test func encodesEveryKind() {
        #expect(text(0) == "i0e")
        #expect(text(-42) == "i-42e")
        #expect(text(.integer(.max)) == "i9223372036854775807e")
        #expect(text(.integer(.min)) == "i-9223372036854775808e")
        #expect(text("") == "0:")
        #expect(text("spam") == "4:spam")
        #expect(text(["spam", 7, []]) == "l4:spami7elee")
        #expect(text([:]) == "de")
    }

    @Test func dictionaryKeysAreSortedBytewise() {
        let value: BValue = ["zebra": 1, "b": 2, "ab": 3, "a": 4, "aa": 5]
        #expect(text(value) == "d1:ai4e2:aai5e2:abi3e1:bi2e5:zebrai1ee")
        let binary = BValue.dictionary([BKey([0xff]): 1, BKey([0x7f]): 2, BKey([]): 3])
        #expect(Bencode.encode(binary) == Array("d0:i3e1:".utf8) + [0x7f] + Array("i2e1:".utf8) + [0xff] + Array("i1ee".utf8))
    }

    @Test func encodeIntoAppends() {
        var out = Array("prefix".utf8)
        Bencode.encode(["k": "v"], into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "prefixd1:k1:ve")
    }

    @Test(arguments: [
        "i0e", "i-1e", "i1234567890e", "0:", "3:\u{0}\u{1}\u{2}", "le", "de", "lli1eeli2eee",
        "d3:bar4:spam3:fooi42ee", "d4:infod6:lengthi10e4:name1:ae1:zl0:0:ee",
    ])
    func canonicalInputRoundTripsByteForByte(text: String) throws {
        let bytes = Array(text.utf8)
        #expect(Bencode.encode(try Bencode.decode(bytes)) == bytes)
    }

    @Test func unsortedInputIsCanonicalisedOnReencode() throws {
        let value = try Bencode.decode(Array("d1:bi1e1:ai2ee".utf8), options: .lenient)
        #expect(text(value) == "d1:ai2e1:bi1ee")
    }

    @Test func randomValuesRoundTrip() throws {
        var generator = SplitMix64(seed: 0x5eed)
        for _ in 0..<300 {
            let value = randomValue(depth: 0, using: &generator)
            let encoded = Bencode.encode(value)
            #expect(try Bencode.decode(encoded) == value)
        }
    }

    private func randomValue(depth: Int, using generator: inout SplitMix64) -> BValue {
        let kind = depth >= 4 ? Int.random(in: 0...1, using: &generator) : Int.random(in: 0...3, using: &generator)
        switch kind {
        case 0:
            return .integer(Int64.random(in: .min ... .max, using: &generator) >> Int64.random(in: 0...63, using: &generator))
        case 1:
            return .bytes((0..<Int.random(in: 0...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        case 2:
            return .list((0..<Int.random(in: 0...5, using: &generator)).map { _ in randomValue(depth: depth + 1, using: &generator) })
        default:
            var entries = [BKey: BValue]()
            for _ in 0..<Int.random(in: 0...5, using: &generator) {
                let key = BKey((0..<Int.random(in: 0...6, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) })
                entries[key] = randomValue(depth: depth + 1, using: &generator)
            }
            return .dictionary(entries)
        }
    }
}

/// Deterministic generator so a failing case reproduces.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
