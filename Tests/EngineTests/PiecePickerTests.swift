import Testing
import TorrentModel
@testable import Engine

private let kib = 1024
private let block = PiecePicker.blockSize

/// A picker over `pieces` pieces of `blocksPerPiece` full blocks each (the last piece optionally shorter).
private func makePicker(pieces: Int, blocksPerPiece: Int = 4, lastPieceBytes: Int? = nil,
                        have: [Int] = [], seed: UInt64 = 1) -> PiecePicker {
    let pieceLength = blocksPerPiece * block
    let total = Int64(pieceLength) * Int64(pieces - 1) + Int64(lastPieceBytes ?? pieceLength)
    var bits = Bitfield(count: pieces)
    for piece in have { bits[piece] = true }
    return PiecePicker(pieceCount: pieces, pieceLength: pieceLength, totalLength: total, have: bits,
                           randomSeed: seed)
}

private func bitfield(_ count: Int, _ pieces: some Sequence<Int>) -> Bitfield {
    var bits = Bitfield(count: count)
    for piece in pieces { bits[piece] = true }
    return bits
}

private func pieces(of requests: [PickedBlock]) -> [Int] {
    var seen = [Int]()
    for request in requests where seen.last != request.piece { seen.append(request.piece) }
    return seen
}

@Suite("PiecePicker")
struct PiecePickerTests {

    // MARK: Geometry and validation

    @Test func blocksCoverPiecesAndOnlyTheLastBlockIsShort() throws {
        // 3 pieces of 40 KiB (blocks 16+16+8), last piece 20 KiB (16+4).
        let picker = PiecePicker(pieceCount: 3, pieceLength: 40 * kib, totalLength: Int64(100 * kib),
                                     have: Bitfield(count: 3), randomSeed: 1)
        #expect(picker.blockCount(ofPiece: 0) == 3)
        #expect(picker.length(ofBlock: 2, inPiece: 0) == 8 * kib)
        #expect(picker.length(ofPiece: 2) == 20 * kib)
        #expect(picker.blockCount(ofPiece: 2) == 2)
        #expect(picker.length(ofBlock: 1, inPiece: 2) == 4 * kib)
        #expect(picker.wantedRemainingBytes == Int64(100 * kib))
    }

    @Test func inconsistentGeometryIsNamed() {
        #expect(PiecePicker.geometryProblem(pieceCount: 5, pieceLength: block, totalLength: 65536, haveCount: 5)
                == "5 pieces given, but 65536 bytes in pieces of 16384 bytes make 4")
        #expect(PiecePicker.geometryProblem(pieceCount: 4, pieceLength: block, totalLength: 65536, haveCount: 3)
                == "have-bitfield has 3 bits for 4 pieces")
        #expect(PiecePicker.geometryProblem(pieceCount: 4, pieceLength: 0, totalLength: 65536, haveCount: 4)
                == "piece length 0 is not positive")
        #expect(PiecePicker.geometryProblem(pieceCount: 4, pieceLength: block, totalLength: 65536, haveCount: 4) == nil)
    }

    @Test func inconsistentGeometryStopsThePicker() async {
        await #expect(processExitsWith: .failure) {
            _ = PiecePicker(pieceCount: 5, pieceLength: 16_384, totalLength: 65_536, have: Bitfield(count: 5))
        }
    }

    @Test func outOfRangePieceIndexIsAProgrammingError() async {
        await #expect(processExitsWith: .failure) {
            let picker = PiecePicker(pieceCount: 4, pieceLength: 16_384, totalLength: 65_536, have: Bitfield(count: 4))
            picker.peerHas(piece: 4)
        }
        await #expect(processExitsWith: .failure) {
            let picker = PiecePicker(pieceCount: 4, pieceLength: 16_384, totalLength: 65_536, have: Bitfield(count: 4))
            picker.peerHasBitfield(Bitfield(count: 9))
        }
    }

    @Test func invalidAndUnrequestedBlocksAreRefused() throws {
        let picker = makePicker(pieces: 2, blocksPerPiece: 2, lastPieceBytes: 20 * kib, have: [])
        let bad = picker.blockReceived(peer: 1, piece: 9, begin: 0, length: block)
        #expect(bad.outcome == .invalid("piece 9 is out of range (2 pieces)"))
        let unaligned = picker.blockReceived(peer: 1, piece: 0, begin: 100, length: block)
        #expect(unaligned.outcome == .invalid("offset 100 is not a block start in piece 0"))
        let wrongLength = picker.blockReceived(peer: 1, piece: 1, begin: block, length: block)
        #expect(wrongLength.outcome == .invalid("block at 16384 of piece 1 has 16384 bytes, expected 4096"))
        let unrequested = picker.blockReceived(peer: 1, piece: 0, begin: 0, length: block)
        #expect(unrequested.outcome == .unrequested)
        #expect(!unrequested.accepted)
    }

    // MARK: Availability and rarest first

    @Test func picksRarestPieceOnceRandomFirstIsOver() throws {
        // Having 4 pieces ends random-first.
        let picker = makePicker(pieces: 12, blocksPerPiece: 1, have: [0, 1, 2, 3])
        // Piece 9 is held by one peer, piece 5 by two, the rest by three.
        for _ in 0 ..< 3 { picker.peerHasBitfield(bitfield(12, [4, 6, 7, 8, 10, 11])) }
        picker.peerHas(piece: 9)
        picker.peerHas(piece: 5)
        picker.peerHas(piece: 5)
        picker.peerHasAll()
        #expect(picker.availability(ofPiece: 9) == 2)
        #expect(picker.availability(ofPiece: 4) == 4)

        let first = picker.pickBlocks(peer: 1, peerHas: .seed, count: 1)
        #expect(pieces(of: first) == [9])
        let second = picker.pickBlocks(peer: 1, peerHas: .seed, count: 1)
        #expect(pieces(of: second) == [5])
        let rest = picker.pickBlocks(peer: 1, peerHas: .seed, count: 10)
        #expect(Set(pieces(of: rest)) == [4, 6, 7, 8, 10, 11])
    }

    @Test func rarestIsAmongPiecesThePeerHas() throws {
        let picker = makePicker(pieces: 8, blocksPerPiece: 1, have: [0, 1, 2, 3])
        picker.peerHas(piece: 4)          // 4 rarest overall, but the peer lacks it
        picker.peerHasBitfield(bitfield(8, [5, 6, 7]))
        picker.peerHasBitfield(bitfield(8, [5, 6, 7]))
        picker.peerHas(piece: 6)          // 6 less rare than 5 and 7
        let picked = picker.pickBlocks(peer: 2, peerHas: .pieces(bitfield(8, [5, 6, 7])), count: 2)
        #expect(Set(pieces(of: picked)) == [5, 7])
    }

    @Test func tiesAreBrokenRandomly() throws {
        var firstChoices = Set<Int>()
        for seed in 1 ... 40 as ClosedRange<UInt64> {
            let picker = makePicker(pieces: 20, blocksPerPiece: 1, have: [0, 1, 2, 3], seed: seed)
            picker.peerHasAll()
            firstChoices.insert(picker.pickBlocks(peer: 1, peerHas: .seed, count: 1)[0].piece)
        }
        #expect(firstChoices.count >= 8, "tied pieces should be chosen in varying order, got \(firstChoices)")
    }

    @Test func firstPiecesArePickedAtRandomNotRarest() throws {
        // Piece 0 is the unique rarest. Before we have 4 pieces the picker ignores rarity.
        var rarestChosen = 0
        var distinct = Set<Int>()
        for seed in 1 ... 60 as ClosedRange<UInt64> {
            let picker = makePicker(pieces: 30, blocksPerPiece: 1, seed: seed)
            picker.peerHas(piece: 0)
            for _ in 0 ..< 3 { picker.peerHasBitfield(bitfield(30, 1 ..< 30)) }
            let piece = picker.pickBlocks(peer: 7, peerHas: .seed, count: 1)[0].piece
            distinct.insert(piece)
            if piece == 0 { rarestChosen += 1 }
        }
        #expect(rarestChosen < 15, "random-first should rarely hit the rarest piece, hit it \(rarestChosen)/60")
        #expect(distinct.count >= 15)

        // Once 4 pieces are had, the rarest wins every time.
        for seed in 1 ... 20 as ClosedRange<UInt64> {
            let picker = makePicker(pieces: 30, blocksPerPiece: 1, have: [10, 11, 12, 13], seed: seed)
            picker.peerHas(piece: 0)
            for _ in 0 ..< 3 { picker.peerHasBitfield(bitfield(30, 1 ..< 30)) }
            #expect(picker.pickBlocks(peer: 7, peerHas: .seed, count: 1)[0].piece == 0)
        }
    }

    @Test func availabilityFollowsPeersComingAndGoing() throws {
        let picker = makePicker(pieces: 10, blocksPerPiece: 1, have: [0, 1, 2, 3])
        let bits = bitfield(10, [4, 5])
        picker.peerHasBitfield(bits)
        picker.peerHasAll()
        picker.peerHasAll()
        #expect(picker.availability(ofPiece: 4) == 3)
        #expect(picker.availability(ofPiece: 6) == 2)
        picker.peerLost(bitfield: bits, wasSeed: false)
        picker.peerLost(bitfield: Bitfield(count: 10, allSet: true), wasSeed: true)
        #expect(picker.availability(ofPiece: 4) == 1)
        #expect(picker.seedCount == 1)
        // The fresh order stays bucketed by availability after all the moves.
        picker.peerHas(piece: 9)
        #expect(picker.freshPiecesRarestFirst(priority: .normal).last == 9)
    }

    // MARK: Priorities

    @Test func highPriorityPiecesComeFirstAndSkippedNever() throws {
        let picker = makePicker(pieces: 10, blocksPerPiece: 1, have: [0, 1, 2, 3])
        picker.peerHasAll()
        picker.peerHas(piece: 4)   // make 4 the least rare; it is still first because it is high
        picker.setPriority(.high, forPieces: 4 ..< 5)
        picker.setPriority(.skip, forPieces: 7 ..< 10)
        let picked = picker.pickBlocks(peer: 1, peerHas: .seed, count: 10)
        #expect(pieces(of: picked).first == 4)
        #expect(Set(pieces(of: picked)) == [4, 5, 6])
        #expect(picker.wantedRemainingBytes == Int64(3 * block))
    }

    @Test func pieceSharedBySkippedAndWantedFileIsWanted() throws {
        let picker = makePicker(pieces: 6, blocksPerPiece: 1)
        // File A covers pieces 0...2, file B 2...3, file C 4...5. B is wanted, A and C skipped.
        picker.setFilePriorities([(pieces: 0 ..< 3, priority: .skip),
                                      (pieces: 2 ..< 4, priority: .normal),
                                      (pieces: 4 ..< 6, priority: .skip)])
        #expect((0 ..< 6).map(picker.priority(ofPiece:)) == [.skip, .skip, .normal, .normal, .skip, .skip])
        #expect(picker.wantedRemainingBytes == Int64(2 * block))
        picker.peerHasAll()
        let picked = picker.pickBlocks(peer: 1, peerHas: .seed, count: 10)
        #expect(Set(pieces(of: picked)) == [2, 3])
        for piece in [2, 3] {
            let receipt = picker.blockReceived(peer: 1, piece: piece, begin: 0, length: block)
            #expect(receipt.pieceComplete)
            picker.pieceVerified(piece)
        }
        #expect(picker.isComplete)
        #expect(picker.wantedRemainingBytes == 0)
        #expect(!picker.isInteresting(peerHas: .seed))
        // Wanting a skipped file again reopens it.
        picker.setPriority(.normal, forPieces: 0 ..< 1)
        #expect(!picker.isComplete)
        #expect(picker.wants(piece: 0))
    }

    // MARK: In-progress pieces first

    @Test func eachPeerStartsAPieceOfItsOwnWhileFreshOnesRemain() throws {
        let picker = makePicker(pieces: 10, blocksPerPiece: 4, have: [0, 1, 2, 3])
        picker.peerHasAll()
        let a = picker.pickBlocks(peer: 1, peerHas: .seed, count: 3)
        #expect(pieces(of: a).count == 1)
        let started = a[0].piece
        // Another peer does not join that piece (its blocks would arrive out of order): it starts its own.
        let b = picker.pickBlocks(peer: 2, peerHas: .seed, count: 2)
        #expect(pieces(of: b).count == 1)
        #expect(b[0].piece != started)
        #expect(picker.partialPieceCount == 2)
        // The first peer's next pick finishes its own piece first.
        #expect(picker.pickBlocks(peer: 1, peerHas: .seed, count: 1) == [PickedBlock(piece: started, begin: 3 * block, length: block)])
    }

    @Test func anAbandonedPieceIsFinishedBeforeANewOneStarts() throws {
        let picker = makePicker(pieces: 10, blocksPerPiece: 4, have: [0, 1, 2, 3])
        picker.peerHasAll()
        let a = picker.pickBlocks(peer: 1, peerHas: .seed, count: 2)
        for got in a { #expect(picker.blockReceived(peer: 1, piece: got.piece, begin: got.begin).accepted) }
        #expect(picker.peerGone(peer: 1).isEmpty)
        // Half of the piece is in; nobody fetches the rest: the next peer does, before anything new.
        let b = picker.pickBlocks(peer: 2, peerHas: .seed, count: 3)
        #expect(b[0] == PickedBlock(piece: a[0].piece, begin: 2 * block, length: block))
        #expect(b[1] == PickedBlock(piece: a[0].piece, begin: 3 * block, length: block))
        #expect(b[2].piece != a[0].piece)
    }

    @Test func peerPrefersPiecesItAlreadyWorksOn() throws {
        let picker = makePicker(pieces: 10, blocksPerPiece: 8, have: [0, 1, 2, 3])
        picker.peerHasAll()
        let a = picker.pickBlocks(peer: 1, peerHas: .seed, count: 2)
        let pieceA = a[0].piece
        // Peer 2 lacks piece A, so it starts its own piece.
        let withoutA = bitfield(10, (0 ..< 10).filter { $0 != pieceA })
        let b = picker.pickBlocks(peer: 2, peerHas: .pieces(withoutA), count: 2)
        let pieceB = b[0].piece
        #expect(pieceA != pieceB)
        // Both pieces have needed blocks; each peer keeps to its own.
        for _ in 0 ..< 3 {
            #expect(picker.pickBlocks(peer: 2, peerHas: .seed, count: 1)[0].piece == pieceB)
            #expect(picker.pickBlocks(peer: 1, peerHas: .seed, count: 1)[0].piece == pieceA)
        }
        // A newcomer opens a third piece rather than mixing into theirs while fresh pieces remain.
        let c = picker.pickBlocks(peer: 3, peerHas: .seed, count: 1)
        #expect(![pieceA, pieceB].contains(c[0].piece))
        #expect(picker.partialPieceCount == 3)
    }

    // MARK: Endgame

    @Test func endgameDuplicatesAreCappedAndCancelledOnArrival() throws {
        let picker = makePicker(pieces: 1, blocksPerPiece: 2)
        picker.peerHasAll()
        let a = picker.pickBlocks(peer: 1, peerHas: .seed, count: 5)
        #expect(a.count == 2)
        #expect(picker.isEndgame)
        let b = picker.pickBlocks(peer: 2, peerHas: .seed, count: 5)
        #expect(b == a, "in endgame the second peer duplicates the outstanding blocks")
        #expect(picker.pickBlocks(peer: 3, peerHas: .seed, count: 5).isEmpty, "cap of two requesters per block")
        #expect(picker.pickBlocks(peer: 1, peerHas: .seed, count: 5).isEmpty, "never twice at the same peer")

        let first = picker.blockReceived(peer: 1, piece: 0, begin: 0, length: block)
        #expect(first.accepted && !first.pieceComplete)
        #expect(first.cancels == [BlockCancel(peer: 2, block: a[0])])
        // The cancelled duplicate still arrives: dropped.
        #expect(picker.blockReceived(peer: 2, piece: 0, begin: 0, length: block).outcome == .duplicate)

        let second = picker.blockReceived(peer: 2, piece: 0, begin: block, length: block)
        #expect(second.accepted && second.pieceComplete)
        #expect(second.cancels == [BlockCancel(peer: 1, block: a[1])])
        #expect(picker.outstandingCount(of: 1) == 0 && picker.outstandingCount(of: 2) == 0)
        #expect(picker.contributors(ofPiece: 0) == [1, 2])
        picker.pieceVerified(0)
        #expect(picker.isComplete && !picker.isEndgame)
        #expect(picker.invariantViolations().isEmpty)
    }

    @Test func noEndgameWhileSomeWantedBlockIsUnrequested() throws {
        let picker = makePicker(pieces: 2, blocksPerPiece: 2, have: [])
        picker.peerHasAll()
        _ = picker.pickBlocks(peer: 1, peerHas: .pieces(bitfield(2, [0])), count: 5)
        #expect(!picker.isEndgame)
        // Peer 2 has only piece 0, all of which is outstanding: no duplicates before endgame.
        #expect(picker.pickBlocks(peer: 2, peerHas: .pieces(bitfield(2, [0])), count: 5).isEmpty)
    }

    @Test func endgameStartsWhenTheOnlyMissingPiecesAreOnNoConnectedPeer() throws {
        let picker = makePicker(pieces: 3, blocksPerPiece: 2, have: [])
        // Two peers have pieces 0 and 1; nobody connected has piece 2.
        let has = bitfield(3, [0, 1])
        picker.peerHasBitfield(has)
        picker.peerHasBitfield(has)
        let a = picker.pickBlocks(peer: 1, peerHas: .pieces(has), count: 4)
        #expect(a.count == 4)
        #expect(picker.isEndgame)
        let b = picker.pickBlocks(peer: 2, peerHas: .pieces(has), count: 4)
        #expect(Set(b) == Set(a), "the second peer doubles up on the outstanding blocks")
        // Once a peer with piece 2 shows up, there is fresh work again: no more endgame.
        picker.peerHas(piece: 2)
        #expect(!picker.isEndgame)
    }

    // MARK: Choked peers and allowed-fast

    @Test func chokingPeerIsOnlyAskedForAllowedFastPieces() throws {
        let picker = makePicker(pieces: 10, blocksPerPiece: 2, have: [0, 1, 2, 3])
        picker.peerHasAll()
        #expect(picker.pickBlocks(peer: 1, peerHas: .seed, count: 10, peerIsChoking: true).isEmpty)
        let peerHas = PeerHaves.pieces(bitfield(10, [5, 6, 8]))
        let picked = picker.pickBlocks(peer: 1, peerHas: peerHas, count: 10, allowedFast: [2, 6, 7, 8],
                                       peerIsChoking: true)
        // 2 is had, 7 the peer lacks: only 6 and 8.
        #expect(Set(pieces(of: picked)) == [6, 8])
        #expect(picked.count == 4)
        // An in-progress piece outside the allowed set is not requested from the choking peer either.
        _ = picker.pickBlocks(peer: 2, peerHas: .seed, count: 1)
        #expect(picker.pickBlocks(peer: 1, peerHas: .seed, count: 10, allowedFast: [6, 8],
                                  peerIsChoking: true).isEmpty)
    }

    // MARK: Failures and departures

    @Test func rejectedAndLostRequestsReturnToThePool() throws {
        let picker = makePicker(pieces: 6, blocksPerPiece: 4, have: [0, 1, 2, 3])
        picker.peerHasAll()
        let a = picker.pickBlocks(peer: 1, peerHas: .seed, count: 4)
        #expect(picker.requestRejected(peer: 1, block: a[1]))
        #expect(!picker.requestRejected(peer: 1, block: a[1]), "a second reject of the same request is ignored")
        #expect(!picker.requestRejected(peer: 9, block: a[2]), "not outstanding at that peer")
        // Peer 2 takes the last fresh piece, and then, with nothing else left, the returned block.
        let fresh = picker.pickBlocks(peer: 2, peerHas: .seed, count: 4)
        #expect(pieces(of: fresh) == [a[0].piece == 4 ? 5 : 4])
        let b = picker.pickBlocks(peer: 2, peerHas: .seed, count: 1)
        #expect(b == [a[1]])

        let returned = picker.peerGone(peer: 1)
        #expect(returned == [a[0], a[2], a[3]])
        #expect(picker.outstandingCount(of: 1) == 0)
        #expect(picker.peerGone(peer: 1).isEmpty)
        // Peer 2 gets the returned blocks of the piece it already works on.
        let c = picker.pickBlocks(peer: 2, peerHas: .seed, count: 3)
        #expect(Set(c) == Set([a[0], a[2], a[3]]))
    }

    @Test func pieceWithNothingLeftInFlightDropsItsBlockState() throws {
        let picker = makePicker(pieces: 6, blocksPerPiece: 4, have: [0, 1, 2, 3])
        picker.peerHasAll()
        let a = picker.pickBlocks(peer: 1, peerHas: .seed, count: 8)
        #expect(picker.partialPieceCount == 2)
        _ = picker.peerGone(peer: 1)
        #expect(picker.partialPieceCount == 0)
        #expect(Set(picker.freshPiecesRarestFirst(priority: .normal)) == [4, 5])
        #expect(a.count == 8)
    }

    @Test func hashFailureResetsThePieceAndNamesItsContributors() throws {
        let picker = makePicker(pieces: 5, blocksPerPiece: 2, have: [0, 1, 2, 3])
        picker.peerHasAll()
        let a = picker.pickBlocks(peer: 1, peerHas: .seed, count: 1)
        let b = picker.pickBlocks(peer: 2, peerHas: .seed, count: 1)
        #expect(picker.blockReceived(peer: 1, piece: 4, begin: a[0].begin, length: block).accepted)
        #expect(picker.blockReceived(peer: 2, piece: 4, begin: b[0].begin).pieceComplete)
        #expect(picker.contributors(ofPiece: 4) == [1, 2])
        #expect(picker.pieceFailed(4) == [1, 2])
        #expect(!picker.have[4])
        #expect(picker.wantedRemainingBytes == Int64(2 * block))
        let again = picker.pickBlocks(peer: 3, peerHas: .seed, count: 5)
        #expect(again.count == 2 && pieces(of: again) == [4])
        for request in again {
            _ = picker.blockReceived(peer: 3, piece: 4, begin: request.begin, length: block)
        }
        picker.pieceVerified(4)
        #expect(picker.isComplete)
    }

    @Test func interestFollowsWhatWeStillWant() throws {
        let picker = makePicker(pieces: 20, blocksPerPiece: 1, have: [0, 1])
        #expect(picker.isInteresting(peerHas: .seed))
        #expect(!picker.isInteresting(peerHas: .pieces(bitfield(20, [0, 1]))))
        #expect(picker.isInteresting(peerHas: .pieces(bitfield(20, [1, 17]))))
        picker.setPriority(.skip, forPieces: 17 ..< 18)
        #expect(!picker.isInteresting(peerHas: .pieces(bitfield(20, [1, 17]))))
        #expect(picker.wants(piece: 16) && !picker.wants(piece: 17) && !picker.wants(piece: 0))
    }

    // MARK: Scale

    @Test func handlesSixteenThousandPiecesCheaply() throws {
        // 4 GiB in 256 KiB pieces.
        let count = 16_384
        let picker = PiecePicker(pieceCount: count, pieceLength: 256 * kib, totalLength: 4 << 30,
                                     have: Bitfield(count: count), randomSeed: 3)
        var random = SeededRandom(seed: 9)
        var peers = [Bitfield]()
        for _ in 0 ..< 50 {
            var bits = Bitfield(count: count)
            for piece in 0 ..< count where Int.random(in: 0 ..< 4, using: &random) == 0 { bits[piece] = true }
            picker.peerHasBitfield(bits)
            peers.append(bits)
        }
        var requested = 0
        for (index, bits) in peers.enumerated() {
            requested += picker.pickBlocks(peer: index, peerHas: .pieces(bits), count: 64).count
        }
        #expect(requested == 50 * 64)
        #expect(picker.partialPieceCount == 200)
        for bits in peers { picker.peerLost(bitfield: bits, wasSeed: false) }
        #expect((0 ..< count).allSatisfy { picker.availability(ofPiece: $0) == 0 })
        #expect(picker.invariantViolations().isEmpty)
    }
}

/// A whole download against fake peers: random bitfields, random delivery order, peers that leave
/// mid-piece and new ones that join, a choking peer with allowed-fast pieces, and one hash failure.
@Suite("PiecePicker swarm simulation")
struct PiecePickerSimulationTests {
    private struct FakePeer {
        let key: Int
        var bits: Bitfield
        let isSeed: Bool
        let choking: Bool
        let allowedFast: Set<Int>
        var queue: [PickedBlock] = []

        var haves: PeerHaves { isSeed ? .seed : .pieces(bits) }
    }

    private static let pieceCount = 48
    private static let blocksPerPiece = 4
    private static let queueDepth = 6

    @Test(arguments: [1, 2, 3, 4, 5, 6] as [UInt64])
    func everyWantedBlockIsDownloadedExactlyOnce(seed: UInt64) throws {
        var random = SeededRandom(seed: seed &* 7919)
        let pieceCount = Self.pieceCount
        let picker = makePicker(pieces: pieceCount, blocksPerPiece: Self.blocksPerPiece,
                                    lastPieceBytes: 20 * kib, have: [0, 5], seed: seed)
        picker.setPriority(.skip, forPieces: 30 ..< 34)
        picker.setPriority(.high, forPieces: 40 ..< 44)
        let skipped = Set(30 ..< 34)

        var peers = [FakePeer]()
        var nextKey = 0
        func randomBits() -> Bitfield {
            var bits = Bitfield(count: pieceCount)
            for piece in 0 ..< pieceCount where Int.random(in: 0 ..< 10, using: &random) < 4 { bits[piece] = true }
            return bits
        }
        func join(seed isSeed: Bool, choking: Bool = false) {
            let bits = isSeed ? Bitfield(count: pieceCount, allSet: true) : randomBits()
            let fast = choking ? Set(bits.setIndices.prefix(3)) : []
            if isSeed { picker.peerHasAll() } else { picker.peerHasBitfield(bits) }
            peers.append(FakePeer(key: nextKey, bits: bits, isSeed: isSeed, choking: choking, allowedFast: fast))
            nextKey += 1
        }
        join(seed: true)
        for _ in 0 ..< 5 { join(seed: false) }
        join(seed: false, choking: true)

        // Simulation's own view, checked against the picker.
        var requesters = [BlockAddress: Set<Int>]()
        var accepted = Set<BlockAddress>()
        var deliveredBy = [Int: Set<Int>]()    // piece -> peers whose accepted data is in it
        var failedOnce = false
        var steps = 0

        func refill(_ index: Int) {
            let peer = peers[index]
            let wanted = Self.queueDepth - peer.queue.count
            let wasEndgame = picker.isEndgame
            let picked = picker.pickBlocks(peer: peer.key, peerHas: peer.haves, count: wanted,
                                           allowedFast: peer.allowedFast, peerIsChoking: peer.choking)
            // Endgame may begin inside this call, once its first picks took the last unrequested blocks.
            let endgame = wasEndgame || picker.isEndgame
            var sawDuplicate = false
            #expect(picked.count <= wanted)
            for request in picked {
                let piece = request.piece
                let address = BlockAddress(piece: piece, block: request.begin / block)
                #expect(peer.isSeed || peer.bits[piece], "asked a peer for a piece it lacks")
                #expect(!peer.choking || peer.allowedFast.contains(piece), "asked a choking peer outside allowed-fast")
                #expect(!skipped.contains(piece) && !picker.have[piece] && !accepted.contains(address))
                #expect(!requesters[address, default: []].contains(peer.key), "same block twice at one peer")
                if !requesters[address, default: []].isEmpty {
                    #expect(endgame, "duplicate request outside endgame: \(request)")
                    sawDuplicate = true
                } else {
                    #expect(!sawDuplicate, "unrequested blocks must be picked before duplicates")
                }
                requesters[address, default: []].insert(peer.key)
                #expect(requesters[address]!.count <= 2)
                #expect(request.length == picker.length(ofBlock: address.block, inPiece: piece))
            }
            peers[index].queue += picked
        }

        while !picker.isComplete {
            steps += 1
            try #require(steps < 20_000, "download stalled")
            let violations = picker.invariantViolations()
            try #require(violations.isEmpty, "picker invariants broken at step \(steps): \(violations)")
            for index in peers.indices { refill(index) }

            // Now and then a wanted piece changes between normal and high priority (file priorities edited).
            if Int.random(in: 0 ..< 30, using: &random) == 0 {
                let piece = Int.random(in: 0 ..< pieceCount, using: &random)
                if !skipped.contains(piece) {
                    picker.setPriority(Bool.random(using: &random) ? .high : .normal, forPieces: piece ..< piece + 1)
                }
            }
            // Now and then a peer announces a piece, or leaves mid-piece and a new one joins.
            if Int.random(in: 0 ..< 15, using: &random) == 0, let index = peers.indices.randomElement(using: &random),
               !peers[index].isSeed {
                let piece = Int.random(in: 0 ..< pieceCount, using: &random)
                if !peers[index].bits[piece] {
                    peers[index].bits[piece] = true
                    picker.peerHas(piece: piece)
                }
            }
            if Int.random(in: 0 ..< 25, using: &random) == 0,
               let index = peers.indices.filter({ !peers[$0].isSeed && !peers[$0].queue.isEmpty }).randomElement(using: &random) {
                let leaving = peers.remove(at: index)
                let returned = picker.peerGone(peer: leaving.key)
                #expect(Set(returned) == Set(leaving.queue), "peerGone must return exactly the peer's requests")
                for request in returned {
                    requesters[BlockAddress(piece: request.piece, block: request.begin / block)]?.remove(leaving.key)
                }
                picker.peerLost(bitfield: leaving.bits, wasSeed: leaving.isSeed)
                join(seed: false)
                continue
            }

            // One block arrives from a random peer, in random order within its queue.
            let busy = peers.indices.filter { !peers[$0].queue.isEmpty }
            guard let index = busy.randomElement(using: &random) else { continue }
            let request = peers[index].queue.remove(at: Int.random(in: 0 ..< peers[index].queue.count, using: &random))
            let key = peers[index].key
            let piece = request.piece
            let address = BlockAddress(piece: piece, block: request.begin / block)
            let receipt = picker.blockReceived(peer: key, piece: piece, begin: request.begin,
                                               length: request.length)
            #expect(receipt.accepted, "a block still queued must be new: \(request) -> \(receipt.outcome)")
            #expect(!accepted.contains(address), "block downloaded twice: \(request)")
            accepted.insert(address)
            deliveredBy[piece, default: []].insert(key)
            requesters[address]?.remove(key)
            for cancel in receipt.cancels {
                #expect(cancel.block == request)
                #expect(requesters[address]?.contains(cancel.peer) == true, "cancel for a request never made")
                requesters[address]?.remove(cancel.peer)
                if let other = peers.firstIndex(where: { $0.key == cancel.peer }) {
                    peers[other].queue.removeAll { $0 == request }
                }
            }
            #expect(requesters[address, default: []].isEmpty, "all duplicates of a received block are cancelled")

            guard receipt.pieceComplete else { continue }
            let blocks = picker.blockCount(ofPiece: piece)
            #expect((0 ..< blocks).allSatisfy { accepted.contains(BlockAddress(piece: piece, block: $0)) })
            if !failedOnce {
                // The first completed piece fails its hash check.
                failedOnce = true
                #expect(picker.contributors(ofPiece: piece) == deliveredBy[piece])
                let suspects = picker.pieceFailed(piece)
                #expect(suspects == deliveredBy[piece])
                for block in 0 ..< blocks { accepted.remove(BlockAddress(piece: piece, block: block)) }
                deliveredBy[piece] = nil
            } else {
                picker.pieceVerified(piece)
            }
        }

        #expect(failedOnce)
        for piece in 0 ..< pieceCount {
            if skipped.contains(piece) {
                #expect(!picker.have[piece])
            } else {
                #expect(picker.have[piece], "wanted piece \(piece) not had")
            }
        }
        let downloaded = (0 ..< pieceCount).filter { !skipped.contains($0) && ![0, 5].contains($0) }
        let expectedBlocks = downloaded.reduce(0) { $0 + picker.blockCount(ofPiece: $1) }
        #expect(accepted.count == expectedBlocks)
        #expect(picker.wantedRemainingBytes == 0)
        #expect(picker.partialPieceCount == 0)
        #expect(picker.invariantViolations().isEmpty)
    }

    @Test func benchmarkPickAndReceiveForOneGiBWithThreePeers() throws {
        let count = 1024
        let picker = PiecePicker(pieceCount: count, pieceLength: 1 << 20, totalLength: 1 << 30,
                                     have: Bitfield(count: count), randomSeed: 11)
        let full = Bitfield(count: count, allSet: true)
        var almost = full
        for piece in stride(from: 0, to: count, by: 3) { almost[piece] = false }
        let haves: [PeerHaves] = [.seed, .pieces(full), .pieces(almost)]
        picker.peerHasAll()
        picker.peerHasBitfield(full)
        picker.peerHasBitfield(almost)

        var queues = [[PickedBlock]](repeating: [], count: 3)
        var picks = 0, receipts = 0, blocksAccepted = 0
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            while !picker.isComplete {
                for peer in 0 ..< 3 {
                    if queues[peer].count < 32 {
                        queues[peer] += picker.pickBlocks(peer: peer, peerHas: haves[peer], count: 32 - queues[peer].count)
                        picks += 1
                    }
                    guard !queues[peer].isEmpty else { continue }
                    let request = queues[peer].removeFirst()
                    let receipt = picker.blockReceived(peer: peer, piece: request.piece, begin: request.begin,
                                                       length: request.length)
                    receipts += 1
                    if receipt.accepted { blocksAccepted += 1 }
                    for cancel in receipt.cancels { queues[cancel.peer].removeAll { $0 == cancel.block } }
                    if receipt.pieceComplete { picker.pieceVerified(request.piece) }
                }
            }
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let operations = Double(picks + receipts)
        print("PiecePicker benchmark: 1 GiB / 1 MiB pieces, 3 peers: \(picks) pickBlocks + \(receipts) blockReceived "
              + "in \(Int(seconds * 1000)) ms = \(Int(operations / seconds)) operations/s")
        #expect(blocksAccepted == 65_536)
        #expect(picker.isComplete)
    }
}
