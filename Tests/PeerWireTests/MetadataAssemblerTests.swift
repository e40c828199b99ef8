import PeerWire
import Testing
import TorrentModel

@Suite struct MetadataAssemblerTests {
    /// FIPS 180 test vector: SHA-1 of one million "a" bytes. 62 pieces, the last one 576 bytes.
    static let millionA = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
    static let millionAHash = InfoHash(hex: "34aa973cd4c4daa4f61eeb2bdbad27316534016f")!
    static let pieceSize = MetadataAssembler.pieceSize

    static func piece(_ index: Int, of bytes: [UInt8]) -> [UInt8] {
        Array(bytes[(index * pieceSize)..<min((index + 1) * pieceSize, bytes.count)])
    }

    @Test func rejectsImpossibleSizes() {
        for size in [0, -1, MetadataAssembler.maximumSize + 1] {
            #expect(throws: MetadataAssemblerError.invalidSize(size, maximum: 16 * 1024 * 1024)) {
                _ = try MetadataAssembler(infoHash: Self.millionAHash, totalSize: size)
            }
        }
        #expect(MetadataAssemblerError.invalidSize(0, maximum: 16).description
            == "metadata size 0 is invalid, expected 1...16")
        #expect(throws: Never.self) {
            _ = try MetadataAssembler(infoHash: Self.millionAHash, totalSize: MetadataAssembler.maximumSize)
        }
    }

    @Test func geometry() throws {
        let assembler = try MetadataAssembler(infoHash: Self.millionAHash, totalSize: 1_000_000)
        #expect(assembler.pieceCount == 62)
        #expect(assembler.expectedLength(ofPiece: 0) == 16384)
        #expect(assembler.expectedLength(ofPiece: 61) == 1_000_000 - 61 * 16384)
        let exact = try MetadataAssembler(infoHash: Self.millionAHash, totalSize: 32768)
        #expect(exact.pieceCount == 2)
        #expect(exact.expectedLength(ofPiece: 1) == 16384)
    }

    @Test func happyPathWithPiecesSpreadOverSeveralPeers() throws {
        var assembler = try MetadataAssembler(infoHash: Self.millionAHash, totalSize: 1_000_000)
        // Three peers each take a different piece; the next reservation skips all three.
        let reserved = [assembler.reservePiece(), assembler.reservePiece(), assembler.reservePiece()]
        #expect(reserved == [0, 1, 2])
        let second = try #require(reserved[1])
        // The second peer rejects: its piece goes back to the pool and is handed out next.
        assembler.releasePiece(second)
        #expect(assembler.reservePiece() == 1)

        var outcome = MetadataAssembler.Outcome.needMore(remaining: -1)
        // Deliver out of order, last piece first.
        for index in (0..<62).reversed() {
            outcome = try assembler.add(piece: index, data: Self.piece(index, of: Self.millionA))
            if index > 0 { #expect(outcome == .needMore(remaining: index)) }
        }
        #expect(outcome == .complete(Self.millionA))
        #expect(assembler.isComplete)
        #expect(assembler.reservePiece() == nil)
        // Late duplicates change nothing.
        #expect(try assembler.add(piece: 0, data: Self.piece(0, of: Self.millionA)) == .needMore(remaining: 0))
    }

    @Test func singlePieceMetadataThroughMessages() throws {
        // SHA-1("abc"), FIPS 180 test vector.
        var assembler = try MetadataAssembler(
            infoHash: InfoHash(hex: "a9993e364706816aba3e25717850c26c9cd0d89d")!, totalSize: 3)
        #expect(try assembler.add(.request(piece: 0)) == nil)
        let message = try #require(try MetadataMessage.decode(
            MetadataMessage.data(piece: 0, totalSize: 3, payload: Fixtures.ascii("abc")).encode()))
        #expect(try assembler.add(message) == .complete(Fixtures.ascii("abc")))
    }

    @Test func hashMismatchDiscardsEverythingAndStartsOver() throws {
        var assembler = try MetadataAssembler(infoHash: Self.millionAHash, totalSize: 1_000_000)
        var corrupt = Self.millionA
        corrupt[20000] = UInt8(ascii: "b")
        for index in 0..<61 {
            _ = try assembler.add(piece: index, data: Self.piece(index, of: corrupt))
        }
        guard case .hashMismatch(let attempt) = try assembler.add(piece: 61, data: Self.piece(61, of: corrupt)) else {
            Issue.record("expected a hash mismatch")
            return
        }
        #expect(attempt.pieces.count == 62)
        #expect(attempt.liars(given: Self.millionA) == [0])
        #expect(!assembler.isComplete)
        #expect(assembler.remainingPieces == 62)
        #expect(assembler.missingPieces == Array(0..<62))
        #expect(assembler.reservePiece() == 0)

        // A second, correct round completes.
        var outcome = MetadataAssembler.Outcome.needMore(remaining: -1)
        for index in 0..<62 {
            outcome = try assembler.add(piece: index, data: Self.piece(index, of: Self.millionA))
        }
        #expect(outcome == .complete(Self.millionA))
    }

    @Test func wrongPieceLengthsAreRejectedWithoutChangingState() throws {
        var assembler = try MetadataAssembler(infoHash: Self.millionAHash, totalSize: 1_000_000)
        #expect(throws: MetadataAssemblerError.wrongPieceLength(piece: 0, length: 16383, expected: 16384)) {
            _ = try assembler.add(piece: 0, data: [UInt8](repeating: 0, count: 16383))
        }
        #expect(throws: MetadataAssemblerError.wrongPieceLength(piece: 61, length: 16384, expected: 576)) {
            _ = try assembler.add(piece: 61, data: [UInt8](repeating: 0, count: 16384))
        }
        #expect(MetadataAssemblerError.wrongPieceLength(piece: 61, length: 16384, expected: 576).description
            == "metadata piece 61 has 16384 bytes, expected 576")
        #expect(throws: MetadataAssemblerError.pieceOutOfRange(62, pieceCount: 62)) {
            _ = try assembler.add(piece: 62, data: [])
        }
        #expect(throws: MetadataAssemblerError.totalSizeMismatch(announced: 999, expected: 1_000_000)) {
            _ = try assembler.add(.data(piece: 0, totalSize: 999, payload: Self.piece(0, of: Self.millionA)))
        }
        #expect(assembler.remainingPieces == 62)
    }

    @Test func duplicateReservationsOnlyWhenAskedFor() throws {
        var assembler = try MetadataAssembler(infoHash: Self.millionAHash, totalSize: 20000)
        #expect(assembler.reservePiece() == 0)
        #expect(assembler.reservePiece() == 1)
        #expect(assembler.reservePiece() == nil)
        #expect(try assembler.add(piece: 0, data: [UInt8](repeating: 0, count: 16384)) == .needMore(remaining: 1))
        #expect(try assembler.add(piece: 0, data: [UInt8](repeating: 0, count: 16384)) == .needMore(remaining: 1))
        #expect(assembler.reservePiece() == nil)
        #expect(assembler.reservePiece(allowingDuplicate: true) == 1)
        // Releasing a received or unknown piece is harmless.
        assembler.releasePiece(0)
        assembler.releasePiece(99)
        #expect(assembler.missingPieces == [1])
    }

    @Test func mismatchNamesWhoSentTheWrongPieces() throws {
        var assembler = try MetadataAssembler(infoHash: Self.millionAHash, totalSize: 1_000_000)
        var corrupt = Self.millionA
        corrupt[5 * Self.pieceSize + 7] = UInt8(ascii: "b")
        // Peer 1 sends the even pieces, peer 2 the odd ones; piece 5 (peer 2's) is wrong.
        var outcome = MetadataAssembler.Outcome.needMore(remaining: -1)
        for index in 0..<62 {
            outcome = try assembler.add(piece: index, data: Self.piece(index, of: corrupt), from: index % 2 == 0 ? 1 : 2)
        }
        guard case .hashMismatch(let attempt) = outcome else {
            Issue.record("expected a hash mismatch, got \(outcome)")
            return
        }
        #expect(attempt.sources == [1, 2])
        #expect(attempt.liars(given: Self.millionA) == [2])
        // Metadata of another size cannot be the true one: every source lied.
        #expect(attempt.liars(given: Array(Self.millionA.prefix(999_999))) == [1, 2])
        #expect(assembler.sources.isEmpty)
    }
}
