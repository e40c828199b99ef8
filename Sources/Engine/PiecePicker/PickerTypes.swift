import TorrentModel

/// How much we want a piece. File selection maps onto pieces: a piece takes the highest priority of the
/// files it overlaps, so a piece shared by a skipped and a wanted file is still downloaded.
enum PiecePriority: UInt8, Comparable, Sendable, CaseIterable {
    case skip = 0, normal = 1, high = 2

    static func < (lhs: PiecePriority, rhs: PiecePriority) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One block to request: `length` bytes at `begin` inside `piece`.
struct PickedBlock: Hashable, Sendable, CustomStringConvertible {
    let piece: Int
    let begin: Int
    let length: Int

    init(piece: Int, begin: Int, length: Int) {
        self.piece = piece
        self.begin = begin
        self.length = length
    }

    var description: String { "piece \(piece) [\(begin), +\(length))" }
}

/// What a peer has, as the picker needs it. A seed never costs a per-piece loop.
enum PeerHaves {
    case seed
    case pieces(Bitfield)

    /// A complete bitfield is a seed.
    init(_ bits: Bitfield) { self = bits.isComplete ? .seed : .pieces(bits) }

    func contains(_ piece: Int) -> Bool {
        switch self {
        case .seed: return true
        case .pieces(let bits): return bits[piece]
        }
    }
}

/// A request we must cancel at `peer` because the block arrived from someone else (endgame).
struct BlockCancel: Hashable {
    let peer: PiecePicker.PeerKey
    let block: PickedBlock
}

/// What the picker made of an arriving block.
struct BlockReceipt: Equatable {
    enum Outcome: Equatable {
        /// New data for a block we still needed: write it.
        case accepted
        /// We already had this block (or its whole piece): drop the data.
        case duplicate
        /// A block of a piece we never started asking for: drop the data.
        case unrequested
        /// Not a block of this torrent's geometry (bad index, offset or length): the peer is misbehaving.
        case invalid(String)
    }

    let outcome: Outcome
    /// Every block of the piece is now received: hash it, then call `pieceVerified` or `pieceFailed`.
    let pieceComplete: Bool
    /// Duplicate requests of this block still outstanding at other peers; send them `cancel`.
    let cancels: [BlockCancel]

    /// Only accepted data should be written.
    var accepted: Bool { outcome == .accepted }
}
