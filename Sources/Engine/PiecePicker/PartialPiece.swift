/// Where one 16 KiB block of an in-progress piece stands.
enum BlockState: Equatable {
    case needed
    /// Outstanding at `first` and, only in endgame, also at `others` (never containing `first`, no repeats).
    case requested(first: PiecePicker.PeerKey, others: [PiecePicker.PeerKey])
    /// Data arrived from `from` and was handed to storage; kept to blame peers when the hash fails.
    case received(from: PiecePicker.PeerKey)

    var requesters: [PiecePicker.PeerKey] {
        if case .requested(let first, let others) = self { return [first] + others }
        return []
    }

    var requesterCount: Int {
        if case .requested(_, let others) = self { return 1 + others.count }
        return 0
    }

    func isRequested(by peer: PiecePicker.PeerKey) -> Bool {
        if case .requested(let first, let others) = self { return first == peer || others.contains(peer) }
        return false
    }
}

/// Per-block state of a piece being downloaded. Only pieces in progress carry one, so a torrent with
/// tens of thousands of pieces costs memory only for the few dozen being fetched.
struct PartialPiece {
    let piece: Int
    /// Invariant: every block is in exactly one state: needed, requested (by one or more peers) or received.
    private(set) var blocks: [BlockState]
    /// Invariant: neededCount and receivedCount equal the number of blocks in those states.
    private(set) var neededCount: Int
    private(set) var receivedCount: Int
    /// No block below this index is needed, so picking need not rescan finished blocks.
    private var firstPossiblyNeeded = 0
    /// Peers asked for (or that delivered) a block of this piece since it started, without repeats. Picking
    /// keeps a peer on pieces it already works on. An array: it holds one peer or a few, and is consulted
    /// for every block, where a set's hashing costs more than the scan.
    private(set) var participants: [PiecePicker.PeerKey] = []

    private mutating func addParticipant(_ peer: PiecePicker.PeerKey) {
        if !participants.contains(peer) { participants.append(peer) }
    }

    init(piece: Int, blockCount: Int) {
        self.piece = piece
        blocks = [BlockState](repeating: .needed, count: blockCount)
        neededCount = blockCount
        receivedCount = 0
    }

    var blockCount: Int { blocks.count }
    var requestedCount: Int { blocks.count - neededCount - receivedCount }
    var isFullyReceived: Bool { receivedCount == blocks.count }
    /// Nothing requested and nothing received: the piece may drop its block state and become fresh again.
    var isUntouched: Bool { neededCount == blocks.count }

    /// Peers whose data is in the piece: the suspects when its hash fails.
    var contributors: Set<PiecePicker.PeerKey> {
        var peers = Set<PiecePicker.PeerKey>()
        for case .received(let peer) in blocks { peers.insert(peer) }
        return peers
    }

    /// Marks up to `limit` needed blocks as requested by `peer`, lowest first; returns their indices.
    mutating func requestNeeded(by peer: PiecePicker.PeerKey, limit: Int) -> [Int] {
        guard limit > 0, neededCount > 0 else { return [] }
        var taken = [Int]()
        var index = firstPossiblyNeeded
        while index < blocks.count && taken.count < limit {
            if blocks[index] == .needed {
                blocks[index] = .requested(first: peer, others: [])
                neededCount -= 1
                taken.append(index)
            }
            index += 1
        }
        // Every block before `index` is now known not to be needed.
        firstPossiblyNeeded = index
        addParticipant(peer)
        return taken
    }

    /// Endgame: adds `peer` as one more requester of an outstanding block.
    mutating func addDuplicateRequester(_ peer: PiecePicker.PeerKey, block: Int) {
        guard case .requested(let first, var others) = blocks[block], first != peer, !others.contains(peer) else {
            preconditionFailure("block \(block) of piece \(piece) cannot take a duplicate request from \(peer)")
        }
        others.append(peer)
        blocks[block] = .requested(first: first, others: others)
        addParticipant(peer)
    }

    /// Drops `peer`'s request of `block`; the block becomes needed again when nobody else asked for it.
    /// Returns whether `peer` had requested it.
    @discardableResult
    mutating func removeRequester(_ peer: PiecePicker.PeerKey, block: Int) -> Bool {
        guard case .requested(let first, var others) = blocks[block] else { return false }
        if first == peer {
            if others.isEmpty {
                blocks[block] = .needed
                neededCount += 1
                firstPossiblyNeeded = min(firstPossiblyNeeded, block)
            } else {
                let next = others.removeFirst()
                blocks[block] = .requested(first: next, others: others)
            }
            return true
        }
        guard let at = others.firstIndex(of: peer) else { return false }
        others.remove(at: at)
        blocks[block] = .requested(first: first, others: others)
        return true
    }

    /// After a hash failure: received blocks are needed again; outstanding requests stay. Participants are
    /// reset to the peers still asked, so picking no longer favours the peers that sent bad data.
    mutating func forgetReceivedBlocks() {
        var stillAsked = Set<PiecePicker.PeerKey>()
        for index in blocks.indices {
            switch blocks[index] {
            case .received:
                blocks[index] = .needed
                neededCount += 1
                firstPossiblyNeeded = min(firstPossiblyNeeded, index)
            case .requested(let first, let others):
                stillAsked.insert(first)
                stillAsked.formUnion(others)
            case .needed:
                break
            }
        }
        receivedCount = 0
        participants = participants.filter(stillAsked.contains)
    }

    /// Records the block's data as received from `peer`; returns the other peers it was still requested
    /// from. Precondition: the block is not already received.
    mutating func markReceived(block: Int, from peer: PiecePicker.PeerKey) -> [PiecePicker.PeerKey] {
        let state = blocks[block]
        if case .received = state { preconditionFailure("block \(block) of piece \(piece) was already received") }
        if state == .needed { neededCount -= 1 }
        blocks[block] = .received(from: peer)
        receivedCount += 1
        addParticipant(peer)
        // Usually the block was asked of `peer` alone: no array is built then.
        guard case .requested(let first, let rest) = state, first != peer || !rest.isEmpty else { return [] }
        return ([first] + rest).filter { $0 != peer }
    }
}
