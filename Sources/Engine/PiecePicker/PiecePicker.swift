import TorrentModel

/// Decides which blocks to request from which peer. Pure bookkeeping: no I/O, no clocks; it lives on the
/// torrent session's event loop.
///
/// Policy, in order, for each priority level (`.high` before `.normal`):
/// 1. needed blocks of in-progress pieces this peer already works on, then of other in-progress pieces
///    (few partial pieces means pieces complete, verify and become tradeable sooner);
/// 2. a fresh piece: at random while we have fewer than `randomFirstPieceCount` pieces (something to trade
///    quickly), otherwise rarest first with ties broken randomly.
/// A peer that is choking us is only asked for its allowed-fast pieces (BEP 6). When every missing wanted
/// block is outstanding somewhere (endgame), blocks are requested again from other peers, at most
/// `maxRequestersPerBlock` at once, and `blockReceived` returns the duplicates to cancel.
///
/// Caller protocol: report availability (`peerHas…`, `peerLost`), call `pickBlocks` to fill a peer's
/// request queue, report each arriving block (`blockReceived`), each rejected or timed-out request
/// (`requestRejected`), a lost peer or a choke that discards requests (`peerGone`), and hash results
/// (`pieceVerified`/`pieceFailed`). Inputs from the wire must be validated first (piece index in range,
/// bitfield length): an out-of-range index here is a programming error and stops the process with a
/// message naming it.
final class PiecePicker {
    /// Identifies a peer connection; the session's connection key.
    typealias PeerKey = Int

    static let blockSize = 16_384
    /// Fresh pieces are picked at random until we have this many.
    static let randomFirstPieceCount = 4

    let pieceCount: Int
    let pieceLength: Int
    let totalLength: Int64
    /// Endgame cap: a block is outstanding at no more than this many peers at once.
    var maxRequestersPerBlock = 2

    /// Per-piece priority; every piece starts `.normal`.
    private var priorities: [PiecePriority]
    /// Invariant: availability[p] is the number of connected non-seed peers that announced p (seeds are
    /// counted once in `seedCount` instead, so a seed never costs a loop over all pieces).
    private var availability: [Int32]
    private(set) var seedCount = 0
    /// Invariant: a piece is had only after its hash was verified (`pieceVerified`, or resume data at init).
    private(set) var have: Bitfield
    /// Invariant: wantedMissing[p] == (priorities[p] != .skip && !have[p]); lets `isComplete` be O(1) and
    /// `isInteresting` a byte-wise AND.
    private var wantedMissing: Bitfield
    /// Invariant: the summed length of the pieces set in `wantedMissing`.
    private(set) var wantedRemainingBytes: Int64

    /// Fresh pieces: wanted, missing and without block state, ordered by rarity, one set per wanted level.
    /// Invariant: p is in fresh(priorities[p]) iff priorities[p] != .skip && !have[p] && partialSlot[p] < 0,
    /// and it sits in the bucket of availability[p].
    private var freshHigh: RarityBuckets
    private var freshNormal: RarityBuckets

    /// Pieces with per-block state. Invariants: partialSlot[p] >= 0 iff p is in `partials`, at that index;
    /// a partial piece is never had; it always has a requested or received block (an untouched one reverts
    /// to fresh), and a block is in exactly one of: needed, requested (by peers), received.
    private var partials: [PartialPiece] = []
    private var partialSlot: [Int32]

    /// Invariant: `outstanding[peer]` holds (piece, block) exactly when that block's state lists the peer as
    /// a requester; peers with nothing outstanding have no entry.
    private var outstanding: [PeerKey: Set<BlockAddress>] = [:]
    private var random: SeededRandom

    /// The geometry must be consistent (it comes from a validated `TorrentInfo`); `geometryProblem` names
    /// what is wrong with one that is not.
    /// - Parameters:
    ///   - have: pieces already verified on disk (resume data or a recheck).
    ///   - randomSeed: fixes tie-breaking and random-first choices (tests); nil seeds from the system.
    init(pieceCount: Int, pieceLength: Int, totalLength: Int64, have: Bitfield, randomSeed: UInt64? = nil) {
        if let problem = Self.geometryProblem(pieceCount: pieceCount, pieceLength: pieceLength,
                                              totalLength: totalLength, haveCount: have.count) {
            preconditionFailure(problem)
        }
        self.pieceCount = pieceCount
        self.pieceLength = pieceLength
        self.totalLength = totalLength
        self.have = have
        priorities = [PiecePriority](repeating: .normal, count: pieceCount)
        availability = [Int32](repeating: 0, count: pieceCount)
        partialSlot = [Int32](repeating: -1, count: pieceCount)
        freshHigh = RarityBuckets(pieceCount: pieceCount)
        freshNormal = RarityBuckets(pieceCount: pieceCount)
        random = randomSeed.map(SeededRandom.init(seed:)) ?? SeededRandom()
        wantedMissing = Bitfield(count: pieceCount)
        wantedRemainingBytes = 0
        for piece in 0 ..< pieceCount where !have[piece] {
            wantedMissing[piece] = true
            wantedRemainingBytes += Int64(length(ofPiece: piece))
            freshNormal.insert(piece, availability: 0)
        }
    }

    // MARK: - Geometry

    /// Why these numbers cannot describe a torrent, or nil when they can.
    static func geometryProblem(pieceCount: Int, pieceLength: Int, totalLength: Int64, haveCount: Int) -> String? {
        guard pieceLength > 0 else { return "piece length \(pieceLength) is not positive" }
        guard totalLength > 0 else { return "total length \(totalLength) is not positive" }
        let expectedPieces = (totalLength + Int64(pieceLength) - 1) / Int64(pieceLength)
        guard Int64(pieceCount) == expectedPieces else {
            return "\(pieceCount) pieces given, but \(totalLength) bytes in pieces of \(pieceLength) bytes make \(expectedPieces)"
        }
        guard pieceCount < Int(Int32.max) else { return "\(pieceCount) pieces is too many" }
        guard haveCount == pieceCount else { return "have-bitfield has \(haveCount) bits for \(pieceCount) pieces" }
        return nil
    }

    func length(ofPiece piece: Int) -> Int {
        Int(min(Int64(pieceLength), totalLength - Int64(piece) * Int64(pieceLength)))
    }

    func blockCount(ofPiece piece: Int) -> Int {
        (length(ofPiece: piece) + Self.blockSize - 1) / Self.blockSize
    }

    /// Only the last block of the last piece can be short.
    func length(ofBlock block: Int, inPiece piece: Int) -> Int {
        min(Self.blockSize, length(ofPiece: piece) - block * Self.blockSize)
    }

    func pickedBlock(piece: Int, block: Int) -> PickedBlock {
        PickedBlock(piece: piece, begin: block * Self.blockSize, length: length(ofBlock: block, inPiece: piece))
    }

    // MARK: - Priorities

    func priority(ofPiece piece: Int) -> PiecePriority { priorities[piece] }

    func setPriority(_ priority: PiecePriority, forPieces range: Range<Int>) {
        checkRange(range)
        for piece in range { apply(priority, to: piece) }
    }

    /// Sets every piece to the highest priority among the files overlapping it, so a boundary piece shared
    /// by a skipped and a wanted file stays wanted. Pieces no listed file overlaps (e.g. only padding) are
    /// skipped. `files` pairs each file's piece range (`TorrentInfo.pieces(overlappingFile:)`) with its
    /// priority.
    func setFilePriorities(_ files: [(pieces: Range<Int>, priority: PiecePriority)]) {
        var combined = [PiecePriority](repeating: .skip, count: pieceCount)
        for file in files {
            checkRange(file.pieces)
            for piece in file.pieces where file.priority > combined[piece] { combined[piece] = file.priority }
        }
        for piece in 0 ..< pieceCount { apply(combined[piece], to: piece) }
    }

    private func apply(_ new: PiecePriority, to piece: Int) {
        let old = priorities[piece]
        guard old != new else { return }
        priorities[piece] = new
        guard !have[piece] else { return }
        if (old == .skip) != (new == .skip) {
            wantedMissing[piece] = new != .skip
            wantedRemainingBytes += Int64(length(ofPiece: piece)) * (new == .skip ? -1 : 1)
        }
        guard partialSlot[piece] < 0 else { return }   // partial pieces are not in a fresh set
        let count = Int(availability[piece])
        if old != .skip { withFresh(old) { $0.remove(piece, availability: count) } }
        if new != .skip { withFresh(new) { $0.insert(piece, availability: count) } }
    }

    // MARK: - Availability

    /// A peer announced `piece` (have message).
    func peerHas(piece: Int) {
        checkPiece(piece)
        increaseAvailability(of: piece)
    }

    /// A peer sent its bitfield. A complete bitfield may instead be reported with `peerHasAll()`; `peerLost`
    /// must later be given the same form.
    func peerHasBitfield(_ bits: Bitfield) {
        checkBitfield(bits)
        Self.forEachSetBit(bits) { increaseAvailability(of: $0) }
    }

    /// A seed (BEP 6 have-all): counted once, no per-piece work.
    func peerHasAll() { seedCount += 1 }

    /// A peer disconnected (or replaced its bitfield): forget what it announced. `wasSeed`: it was counted
    /// with `peerHasAll`; otherwise `bitfield` is everything it announced through `peerHasBitfield` and
    /// `peerHas`.
    func peerLost(bitfield: Bitfield, wasSeed: Bool) {
        if wasSeed {
            precondition(seedCount > 0, "peerLost(wasSeed: true) without a matching peerHasAll()")
            seedCount -= 1
        } else {
            checkBitfield(bitfield)
            Self.forEachSetBit(bitfield) { decreaseAvailability(of: $0) }
        }
    }

    /// How many connected peers have `piece`, seeds included.
    func availability(ofPiece piece: Int) -> Int { Int(availability[piece]) + seedCount }

    private func increaseAvailability(of piece: Int) {
        let old = Int(availability[piece])
        availability[piece] += 1
        guard isFresh(piece) else { return }
        withFresh(priorities[piece]) { $0.availabilityIncreased(piece, from: old) }
    }

    private func decreaseAvailability(of piece: Int) {
        let old = Int(availability[piece])
        precondition(old > 0, "peerLost for piece \(piece), which no peer announced")
        availability[piece] -= 1
        guard isFresh(piece) else { return }
        withFresh(priorities[piece]) { $0.availabilityDecreased(piece, from: old) }
    }

    // MARK: - Picking

    /// Up to `count` new requests for `peer` (never a block it already has outstanding).
    /// - Parameters:
    ///   - peerHas: what the peer has.
    ///   - peerIsChoking: the peer chokes us; then only `allowedFast` pieces may be requested (BEP 6).
    func pickBlocks(peer: PeerKey, peerHas: Bitfield, count: Int, allowedFast: Set<Int> = [],
                    peerIsChoking: Bool = false) -> [PickedBlock] {
        checkBitfield(peerHas)
        return pickBlocks(peer: peer, peerHas: PeerHaves(peerHas), count: count, allowedFast: allowedFast,
                          peerIsChoking: peerIsChoking)
    }

    func pickBlocks(peer: PeerKey, peerHas: PeerHaves, count: Int, allowedFast: Set<Int> = [],
                    peerIsChoking: Bool = false) -> [PickedBlock] {
        guard count > 0, !(peerIsChoking && allowedFast.isEmpty) else { return [] }
        let pieceCount = self.pieceCount   // the closure must not capture self, which picking mutates
        let mayRequest: (Int) -> Bool = { piece in
            piece >= 0 && piece < pieceCount && peerHas.contains(piece)
                && (!peerIsChoking || allowedFast.contains(piece))
        }
        var picked = [PickedBlock]()
        // A peer keeps to pieces of its own while fresh ones remain: its blocks then arrive in order, so
        // each piece is hashed as it lands (PieceWriter) instead of being read back, and one slow peer
        // holds up only its own pieces. Another peer's piece is joined only when nothing else is left.
        for level in [PiecePriority.high, .normal] {
            takeFromPartials(level: level, peer: peer, kind: .own, mayRequest, limit: count, into: &picked)
            takeFromPartials(level: level, peer: peer, kind: .abandoned, mayRequest, limit: count, into: &picked)
            takeFreshPieces(level: level, peer: peer, peerIsChoking: peerIsChoking, allowedFast: allowedFast,
                            mayRequest, limit: count, into: &picked)
            takeFromPartials(level: level, peer: peer, kind: .othersActive, mayRequest, limit: count, into: &picked)
            if picked.count == count { return picked }
        }
        if isEndgame {
            takeDuplicates(peer: peer, mayRequest, limit: count, into: &picked)
        }
        return picked
    }

    /// Every missing wanted block is outstanding somewhere (or received, awaiting its hash check).
    /// Pieces no connected peer has cannot be asked for, so they do not hold endgame back: otherwise one
    /// piece missing from the swarm would keep a torrent's last blocks waiting on its slowest peers.
    var isEndgame: Bool {
        guard !isComplete else { return false }
        let freshObtainable = seedCount > 0
            ? !(freshHigh.isEmpty && freshNormal.isEmpty)
            : freshHigh.hasAvailableMember || freshNormal.hasAvailableMember
        guard !freshObtainable else { return false }
        return !partials.contains { partial in
            priorities[partial.piece] != .skip && partial.neededCount > 0 && availability(ofPiece: partial.piece) > 0
        }
    }

    /// Which partial pieces a pass of `takeFromPartials` draws from.
    private enum PartialKind {
        /// Pieces `peer` has asked for or delivered blocks of.
        case own
        /// Other pieces nobody is fetching now (their peers left or rejected): finished before new ones start.
        case abandoned
        /// Other pieces that other peers are fetching.
        case othersActive

        func matches(_ partial: PartialPiece, peer: PiecePicker.PeerKey) -> Bool {
            switch self {
            case .own: return partial.participants.contains(peer)
            case .abandoned: return !partial.participants.contains(peer) && partial.requestedCount == 0
            case .othersActive: return !partial.participants.contains(peer) && partial.requestedCount > 0
            }
        }
    }

    private func takeFromPartials(level: PiecePriority, peer: PeerKey, kind: PartialKind,
                                           _ mayRequest: (Int) -> Bool, limit: Int,
                                           into picked: inout [PickedBlock]) {
        var slot = 0
        while slot < partials.count && picked.count < limit {
            let piece = partials[slot].piece
            if partials[slot].neededCount > 0, priorities[piece] == level,
               kind.matches(partials[slot], peer: peer), mayRequest(piece) {
                requestNeeded(slot: slot, peer: peer, limit: limit, into: &picked)
            }
            slot += 1
        }
    }

    private func takeFreshPieces(level: PiecePriority, peer: PeerKey, peerIsChoking: Bool,
                                          allowedFast: Set<Int>, _ mayRequest: (Int) -> Bool, limit: Int,
                                          into picked: inout [PickedBlock]) {
        if peerIsChoking {
            // Allowed-fast sets are small (BEP 6 suggests 10): their order beats rarity here.
            for piece in allowedFast.sorted() where picked.count < limit {
                guard mayRequest(piece), isFresh(piece), priorities[piece] == level else { continue }
                requestNeeded(slot: startPartial(piece), peer: peer, limit: limit, into: &picked)
            }
            return
        }
        let randomFirst = have.cardinality < Self.randomFirstPieceCount
        while picked.count < limit {
            var rng = random
            let chosen = withFresh(level) { fresh in
                randomFirst ? fresh.random(where: mayRequest, using: &rng) : fresh.rarest(where: mayRequest, using: &rng)
            }
            random = rng
            guard let piece = chosen else { return }
            requestNeeded(slot: startPartial(piece), peer: peer, limit: limit, into: &picked)
        }
    }

    /// Endgame: ask `peer` for blocks already outstanding elsewhere, least-duplicated first.
    private func takeDuplicates(peer: PeerKey, _ mayRequest: (Int) -> Bool, limit: Int,
                                         into picked: inout [PickedBlock]) {
        guard maxRequestersPerBlock > 1 else { return }
        for requesters in 1 ..< maxRequestersPerBlock {
            for level in [PiecePriority.high, .normal] {
                for slot in partials.indices where picked.count < limit {
                    let piece = partials[slot].piece
                    guard priorities[piece] == level, partials[slot].requestedCount > 0, mayRequest(piece) else { continue }
                    for block in 0 ..< partials[slot].blockCount where picked.count < limit {
                        let state = partials[slot].blocks[block]
                        guard state.requesterCount == requesters, !state.isRequested(by: peer) else { continue }
                        partials[slot].addDuplicateRequester(peer, block: block)
                        outstanding[peer, default: []].insert(BlockAddress(piece: piece, block: block))
                        picked.append(pickedBlock(piece: piece, block: block))
                    }
                }
            }
        }
    }

    private func requestNeeded(slot: Int, peer: PeerKey, limit: Int, into picked: inout [PickedBlock]) {
        let piece = partials[slot].piece
        let blocks = partials[slot].requestNeeded(by: peer, limit: limit - picked.count)
        guard !blocks.isEmpty else { return }
        var own = outstanding.removeValue(forKey: peer) ?? []
        for block in blocks {
            own.insert(BlockAddress(piece: piece, block: block))
            picked.append(pickedBlock(piece: piece, block: block))
        }
        outstanding[peer] = own
    }

    /// Moves a fresh piece into `partials`; returns its slot.
    private func startPartial(_ piece: Int) -> Int {
        let count = Int(availability[piece])
        withFresh(priorities[piece]) { $0.remove(piece, availability: count) }
        partialSlot[piece] = Int32(partials.count)
        partials.append(PartialPiece(piece: piece, blockCount: blockCount(ofPiece: piece)))
        return partials.count - 1
    }

    // MARK: - Block and request outcomes

    /// Reports a block's data arriving from `peer`; `length`, when given, is checked against the geometry.
    /// Only an accepted receipt's data should be written.
    func blockReceived(peer: PeerKey, piece: Int, begin: Int, length: Int? = nil) -> BlockReceipt {
        guard piece >= 0 && piece < pieceCount else {
            return BlockReceipt(outcome: .invalid("piece \(piece) is out of range (\(pieceCount) pieces)"),
                                pieceComplete: false, cancels: [])
        }
        let blockCount = blockCount(ofPiece: piece)
        guard begin >= 0, begin % Self.blockSize == 0, begin / Self.blockSize < blockCount else {
            return BlockReceipt(outcome: .invalid("offset \(begin) is not a block start in piece \(piece)"),
                                pieceComplete: false, cancels: [])
        }
        let block = begin / Self.blockSize
        let expected = self.length(ofBlock: block, inPiece: piece)
        if let length, length != expected {
            return BlockReceipt(outcome: .invalid("block at \(begin) of piece \(piece) has \(length) bytes, expected \(expected)"),
                                pieceComplete: false, cancels: [])
        }
        if have[piece] { return BlockReceipt(outcome: .duplicate, pieceComplete: false, cancels: []) }
        let slot = Int(partialSlot[piece])
        guard slot >= 0 else { return BlockReceipt(outcome: .unrequested, pieceComplete: false, cancels: []) }
        if case .received = partials[slot].blocks[block] {
            return BlockReceipt(outcome: .duplicate, pieceComplete: false, cancels: [])
        }
        // A needed block may still arrive unasked, e.g. after its request timed out: the data is good.
        let address = BlockAddress(piece: piece, block: block)
        removeOutstanding(address, of: peer)
        let others = partials[slot].markReceived(block: block, from: peer)
        var cancels = [BlockCancel]()
        cancels.reserveCapacity(others.count)
        for other in others {
            removeOutstanding(address, of: other)
            cancels.append(BlockCancel(peer: other, block: pickedBlock(piece: piece, block: block)))
        }
        return BlockReceipt(outcome: .accepted, pieceComplete: partials[slot].isFullyReceived, cancels: cancels)
    }

    /// The peer rejected a request (BEP 6), or it timed out: the block returns to the pool unless other
    /// peers still have it outstanding. Returns false when it was not outstanding at that peer.
    @discardableResult
    func requestRejected(peer: PeerKey, block request: PickedBlock) -> Bool {
        let piece = request.piece, begin = request.begin
        guard piece >= 0, piece < pieceCount, begin >= 0, begin % Self.blockSize == 0 else { return false }
        let address = BlockAddress(piece: piece, block: begin / Self.blockSize)
        guard outstanding[peer]?.contains(address) == true else { return false }
        removeOutstanding(address, of: peer)
        releaseBlock(address, of: peer)
        return true
    }

    /// The peer disconnected, or choked us without the fast extension (which discards our requests): every
    /// block it had outstanding returns to the pool. Returns those requests, in piece/offset order.
    @discardableResult
    func peerGone(peer: PeerKey) -> [PickedBlock] {
        guard let addresses = outstanding.removeValue(forKey: peer) else { return [] }
        let ordered = addresses.sorted()
        for address in ordered { releaseBlock(address, of: peer) }
        return ordered.map { pickedBlock(piece: $0.piece, block: $0.block) }
    }

    /// Blocks outstanding at `peer`, in piece/offset order.
    func outstandingRequests(of peer: PeerKey) -> [PickedBlock] {
        (outstanding[peer] ?? []).sorted().map { pickedBlock(piece: $0.piece, block: $0.block) }
    }

    func outstandingCount(of peer: PeerKey) -> Int { outstanding[peer]?.count ?? 0 }

    /// The piece's hash matched: it is had from now on. Normally called after `blockReceived` reported the
    /// piece complete; if the piece was verified while blocks were still outstanding (e.g. a recheck), the
    /// returned requests should be cancelled.
    @discardableResult
    func pieceVerified(_ piece: Int) -> [BlockCancel] {
        checkPiece(piece)
        guard !have[piece] else { return [] }
        var cancels = [BlockCancel]()
        if partialSlot[piece] >= 0 {
            cancels = dropPartial(piece)
        } else if isFresh(piece) {
            let count = Int(availability[piece])
            withFresh(priorities[piece]) { $0.remove(piece, availability: count) }
        }
        have[piece] = true
        if wantedMissing[piece] {
            wantedMissing[piece] = false
            wantedRemainingBytes -= Int64(length(ofPiece: piece))
        }
        return cancels
    }

    /// The piece's hash did not match (or a recheck found a had piece damaged): its received blocks are
    /// needed again. Returns the peers whose data was in it, for the caller to hold against them.
    @discardableResult
    func pieceFailed(_ piece: Int) -> Set<PeerKey> {
        checkPiece(piece)
        if have[piece] {
            have[piece] = false
            if priorities[piece] != .skip {
                wantedMissing[piece] = true
                wantedRemainingBytes += Int64(length(ofPiece: piece))
                let count = Int(availability[piece])
                withFresh(priorities[piece]) { $0.insert(piece, availability: count) }
            }
            return []
        }
        let slot = Int(partialSlot[piece])
        guard slot >= 0 else { return [] }   // never started: nothing to reset
        let suspects = partials[slot].contributors
        partials[slot].forgetReceivedBlocks()
        // Requests still outstanding (only if called before the piece was complete) stay valid.
        if partials[slot].isUntouched { revertToFresh(piece) }
        return suspects
    }

    /// Peers that delivered blocks of an in-progress piece (ask before `pieceFailed`, which also returns them).
    func contributors(ofPiece piece: Int) -> Set<PeerKey> {
        guard piece >= 0 && piece < pieceCount, partialSlot[piece] >= 0 else { return [] }
        return partials[Int(partialSlot[piece])].contributors
    }

    // MARK: - Queries

    /// Every wanted piece is had.
    var isComplete: Bool { wantedMissing.isEmpty }

    /// Pieces currently carrying block state (started, not yet verified).
    var partialPieceCount: Int { partials.count }

    func isPartial(_ piece: Int) -> Bool { partialSlot[piece] >= 0 }

    /// We want `piece` and do not have it: a peer's have-message for it makes the peer interesting.
    func wants(piece: Int) -> Bool { piece >= 0 && piece < pieceCount && wantedMissing[piece] }

    /// Whether the peer has anything we want. A byte-wise AND, stopping at the first hit (O(1) for a seed);
    /// for a single new have-message `wants(piece:)` suffices.
    func isInteresting(peerHas: Bitfield) -> Bool {
        checkBitfield(peerHas)
        return isInteresting(peerHas: PeerHaves(peerHas))
    }

    func isInteresting(peerHas: PeerHaves) -> Bool {
        switch peerHas {
        case .seed:
            return !isComplete
        case .pieces(let bits):
            guard !isComplete else { return false }
            let theirs = bits.bytes, ours = wantedMissing.bytes
            for index in theirs.indices where theirs[index] & ours[index] != 0 { return true }
            return false
        }
    }

    /// Fresh pieces of a level, rarest first (tests and diagnostics).
    func freshPiecesRarestFirst(priority: PiecePriority) -> [Int] {
        switch priority {
        case .skip: return []
        case .normal: return freshNormal.membersRarestFirst
        case .high: return freshHigh.membersRarestFirst
        }
    }

    // MARK: - Private helpers

    private func isFresh(_ piece: Int) -> Bool {
        switch priorities[piece] {
        case .skip: return false
        case .normal: return freshNormal.contains(piece)
        case .high: return freshHigh.contains(piece)
        }
    }

    private func withFresh<Result>(_ level: PiecePriority, _ body: (inout RarityBuckets) -> Result) -> Result {
        switch level {
        case .high: return body(&freshHigh)
        case .normal: return body(&freshNormal)
        case .skip: preconditionFailure("skipped pieces have no fresh set")
        }
    }

    private func removeOutstanding(_ address: BlockAddress, of peer: PeerKey) {
        guard var own = outstanding.removeValue(forKey: peer) else { return }
        own.remove(address)
        if !own.isEmpty { outstanding[peer] = own }
    }

    /// Takes `peer` off the block's requesters; a piece left with nothing requested or received drops its
    /// block state and becomes fresh again.
    private func releaseBlock(_ address: BlockAddress, of peer: PeerKey) {
        let slot = Int(partialSlot[address.piece])
        guard slot >= 0 else { return }
        partials[slot].removeRequester(peer, block: address.block)
        if partials[slot].isUntouched { revertToFresh(address.piece) }
    }

    /// An untouched partial piece drops its block state: per-block state exists only for pieces in progress.
    private func revertToFresh(_ piece: Int) {
        dropPartial(piece)
        if priorities[piece] != .skip {
            let count = Int(availability[piece])
            withFresh(priorities[piece]) { $0.insert(piece, availability: count) }
        }
    }

    /// Removes a piece's block state, withdrawing the requests still outstanding for it (returned).
    @discardableResult
    private func dropPartial(_ piece: Int) -> [BlockCancel] {
        let slot = Int(partialSlot[piece])
        var withdrawn = [BlockCancel]()
        for block in 0 ..< partials[slot].blockCount {
            for peer in partials[slot].blocks[block].requesters {
                removeOutstanding(BlockAddress(piece: piece, block: block), of: peer)
                withdrawn.append(BlockCancel(peer: peer, block: pickedBlock(piece: piece, block: block)))
            }
        }
        let last = partials.count - 1
        if slot != last {
            partials.swapAt(slot, last)
            partialSlot[partials[slot].piece] = Int32(slot)
        }
        partials.removeLast()
        partialSlot[piece] = -1
        return withdrawn
    }

    private static func forEachSetBit(_ bits: Bitfield, _ body: (Int) -> Void) {
        for (byteIndex, byte) in bits.bytes.enumerated() where byte != 0 {
            var remaining = byte
            while remaining != 0 {
                let bit = remaining.leadingZeroBitCount
                body(byteIndex * 8 + bit)
                remaining &= ~(0x80 >> UInt8(bit))
            }
        }
    }

    private func checkPiece(_ piece: Int) {
        precondition(piece >= 0 && piece < pieceCount,
                     "piece index \(piece) is out of range (the torrent has \(pieceCount) pieces)")
    }

    private func checkRange(_ range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= pieceCount,
                     "piece range \(range) is out of bounds (the torrent has \(pieceCount) pieces)")
    }

    private func checkBitfield(_ bits: Bitfield) {
        precondition(bits.count == pieceCount, "bitfield has \(bits.count) bits but the torrent has \(pieceCount) pieces")
    }
}

extension PiecePicker {
    /// Every invariant stated on the stored properties, checked the slow way; empty when all hold.
    /// For tests and debugging: O(pieces + blocks in progress).
    func invariantViolations() -> [String] {
        var problems = [String]()
        var requestedBy = [PeerKey: Set<BlockAddress>]()
        var remaining: Int64 = 0
        for piece in 0 ..< pieceCount {
            let wantedAndMissing = priorities[piece] != .skip && !have[piece]
            if wantedMissing[piece] != wantedAndMissing { problems.append("wantedMissing[\(piece)] is stale") }
            if wantedAndMissing { remaining += Int64(length(ofPiece: piece)) }
            let shouldBeFresh = wantedAndMissing && partialSlot[piece] < 0
            let inHigh = freshHigh.contains(piece), inNormal = freshNormal.contains(piece)
            if shouldBeFresh != (inHigh || inNormal) || (inHigh && priorities[piece] != .high)
                || (inNormal && priorities[piece] != .normal) {
                problems.append("piece \(piece) fresh-set membership is wrong")
            }
            if have[piece] && partialSlot[piece] >= 0 { problems.append("had piece \(piece) has block state") }
        }
        if remaining != wantedRemainingBytes { problems.append("wantedRemainingBytes \(wantedRemainingBytes) != \(remaining)") }
        for (name, set) in [("high", freshHigh), ("normal", freshNormal)] {
            let misplaced = set.misplacedMembers { Int(self.availability[$0]) }
            if !misplaced.isEmpty { problems.append("\(name) rarity buckets misplace \(misplaced)") }
        }
        for (slot, partial) in partials.enumerated() {
            if partialSlot[partial.piece] != Int32(slot) { problems.append("partialSlot of \(partial.piece) is wrong") }
            if partial.isUntouched { problems.append("untouched piece \(partial.piece) kept block state") }
            var needed = 0, received = 0
            for (block, state) in partial.blocks.enumerated() {
                switch state {
                case .needed: needed += 1
                case .received: received += 1
                case .requested:
                    let requesters = state.requesters
                    if Set(requesters).count != requesters.count || requesters.count > max(1, maxRequestersPerBlock) {
                        problems.append("block \(block) of \(partial.piece) has requesters \(requesters)")
                    }
                    for peer in requesters {
                        requestedBy[peer, default: []].insert(BlockAddress(piece: partial.piece, block: block))
                    }
                }
            }
            if needed != partial.neededCount || received != partial.receivedCount {
                problems.append("block counts of piece \(partial.piece) are stale")
            }
        }
        if requestedBy != outstanding { problems.append("per-peer outstanding sets disagree with block states") }
        return problems
    }
}

/// One block of one piece, by index: the key of the picker's per-peer request sets.
struct BlockAddress: Hashable, Comparable {
    let piece: Int
    let block: Int

    static func < (lhs: BlockAddress, rhs: BlockAddress) -> Bool {
        (lhs.piece, lhs.block) < (rhs.piece, rhs.block)
    }
}
