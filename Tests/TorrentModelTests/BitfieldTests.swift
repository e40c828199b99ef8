import Testing
import TorrentModel

@Suite struct BitfieldWireTests {
    @Test func aWrongLengthNamesBothSizes() {
        #expect(throws: BitfieldError.wrongLength(bytes: 3, expectedBytes: 2, pieces: 10)) {
            try Bitfield(count: 10, validatingWireBytes: [0xff, 0xc0, 0])
        }
        #expect(BitfieldError.wrongLength(bytes: 3, expectedBytes: 2, pieces: 10).description
                == "bitfield of 3 bytes for 10 pieces, which take 2")
    }

    @Test func setSpareBitsAreNamedAsTheProblem() {
        #expect(throws: BitfieldError.spareBitsSet(lastByte: 0xc1, pieces: 10)) {
            try Bitfield(count: 10, validatingWireBytes: [0xff, 0xc1])
        }
        #expect(BitfieldError.spareBitsSet(lastByte: 0xc1, pieces: 10).description
                == "bitfield sets some of the 6 spare bits after piece 9 (last byte 0xc1)")
        #expect(Bitfield(count: 10, wireBytes: [0xff, 0xc1]) == nil)
    }

    @Test func aValidBitfieldIsAccepted() throws {
        let field = try Bitfield(count: 10, validatingWireBytes: [0xff, 0xc0])
        #expect(field.isComplete)
        #expect(try Bitfield(count: 16, validatingWireBytes: [0xff, 0xff]).cardinality == 16)
    }
}
