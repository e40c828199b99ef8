import Crypto
import TorrentModel

/// Collects the info dictionary of a magnet link from `ut_metadata` data messages (BEP 9), possibly
/// from several peers at once, and checks it against the info hash.
///
/// Usage: `reservePiece()` picks a piece for a peer to be asked for; `releasePiece(_:)` hands it back
/// when that peer rejects, times out or disconnects (callers tracking requests themselves can use
/// `missingPieces` instead); `add(piece:data:)` stores data and, with the last piece, verifies SHA-1 of
/// the whole against the info hash. On a mismatch every piece is discarded and assembly starts over; the
/// discarded pieces come back with the mismatch, each with the `source` (a caller's tag, e.g. a peer) that
/// sent it, so the caller can find out who lied once the true metadata is known.
///
/// Memory: piece bytes are kept only once received, so a peer that merely claims a huge `metadata_size`
/// costs a few bytes per piece, not the size it claimed.
public struct MetadataAssembler: Sendable {
    /// BEP 9 leaves the bound to clients; real info dictionaries are far below this.
    public static let maximumSize = 16 * 1024 * 1024
    public static let pieceSize = MetadataMessage.pieceSize

    public enum Outcome: Equatable, Sendable {
        /// `remaining` pieces are still missing. Also the answer for a piece that had already been
        /// received, and for any piece after completion (with 0): nothing changed then.
        case needMore(remaining: Int)
        /// The last piece arrived and the bytes hash to the info hash: these are the info dictionary.
        case complete([UInt8])
        /// The last piece arrived but the bytes do not hash to the info hash. Everything was discarded
        /// and is handed back, with who sent what.
        case hashMismatch(FailedMetadataAttempt)
    }

    private enum PieceState: Equatable, Sendable {
        /// `reservations` peers have been asked for it and have not answered.
        case missing(reservations: Int)
        /// Its bytes arrived from `source`.
        case received(source: Int, bytes: [UInt8])
        var isReceived: Bool { if case .received = self { return true } else { return false } }
    }

    public let infoHash: InfoHash
    /// Size of the info dictionary in bytes (`metadata_size` / `total_size`).
    public let totalSize: Int
    public let pieceCount: Int

    /// Invariant: `pieces.count == pieceCount`; `receivedCount` is the number of `.received` entries,
    /// each holding exactly `expectedLength(ofPiece:)` bytes.
    private var pieces: [PieceState]
    private var receivedCount = 0
    /// Set once verified: later data is ignored.
    public private(set) var isComplete = false

    /// `totalSize` is the peer-announced `metadata_size`; zero, negative or over `maximumSize` throws.
    public init(infoHash: InfoHash, totalSize: Int) throws(MetadataAssemblerError) {
        guard totalSize > 0, totalSize <= Self.maximumSize else {
            throw .invalidSize(totalSize, maximum: Self.maximumSize)
        }
        self.infoHash = infoHash
        self.totalSize = totalSize
        self.pieceCount = (totalSize + Self.pieceSize - 1) / Self.pieceSize
        self.pieces = Array(repeating: .missing(reservations: 0), count: pieceCount)
    }

    public var remainingPieces: Int { pieceCount - receivedCount }

    /// Pieces not yet received, in order.
    public var missingPieces: [Int] {
        pieces.indices.filter { !pieces[$0].isReceived }
    }

    /// The byte count piece `piece` must have: `pieceSize` for all but the last.
    public func expectedLength(ofPiece piece: Int) -> Int {
        precondition(pieces.indices.contains(piece), "metadata piece \(piece) out of range 0..<\(pieceCount)")
        return piece == pieceCount - 1 ? totalSize - piece * Self.pieceSize : Self.pieceSize
    }

    /// Picks the lowest missing piece nobody has been asked for and records that it has been asked for.
    /// When every missing piece is already out, returns nil, or with `allowingDuplicate` the missing
    /// piece with the fewest outstanding requests (to race a slow peer).
    public mutating func reservePiece(allowingDuplicate: Bool = false) -> Int? {
        var best: (piece: Int, reservations: Int)?
        for (index, state) in pieces.enumerated() {
            guard case .missing(let reservations) = state else { continue }
            if reservations == 0 { best = (index, 0); break }
            if allowingDuplicate, best == nil || reservations < best!.reservations { best = (index, reservations) }
        }
        guard let best else { return nil }
        pieces[best.piece] = .missing(reservations: best.reservations + 1)
        return best.piece
    }

    /// Undoes one `reservePiece()` for `piece` (the peer rejected, timed out or left). Ignored for
    /// pieces already received or out of range, so callers need not track that themselves.
    public mutating func releasePiece(_ piece: Int) {
        guard pieces.indices.contains(piece), case .missing(let reservations) = pieces[piece] else { return }
        pieces[piece] = .missing(reservations: max(0, reservations - 1))
    }

    /// Stores one piece sent by `source`. Throws (changing nothing) when the piece index or length is
    /// wrong: the sending peer is faulty and should not be asked again.
    public mutating func add(piece: Int, data: [UInt8], from source: Int = 0) throws(MetadataAssemblerError) -> Outcome {
        guard pieces.indices.contains(piece) else {
            throw .pieceOutOfRange(piece, pieceCount: pieceCount)
        }
        let expected = expectedLength(ofPiece: piece)
        guard data.count == expected else {
            throw .wrongPieceLength(piece: piece, length: data.count, expected: expected)
        }
        if isComplete || pieces[piece].isReceived { return .needMore(remaining: remainingPieces) }

        pieces[piece] = .received(source: source, bytes: data)
        receivedCount += 1
        guard receivedCount == pieceCount else { return .needMore(remaining: remainingPieces) }

        var whole: [UInt8] = []
        whole.reserveCapacity(totalSize)
        var received: [FailedMetadataAttempt.Piece] = []
        for (index, state) in pieces.enumerated() {
            guard case .received(let source, let bytes) = state else { continue }
            whole.append(contentsOf: bytes)
            received.append(.init(index: index, source: source, bytes: bytes))
        }
        guard Array(Insecure.SHA1.hash(data: whole)) == infoHash.bytes else {
            // Some piece was wrong and there is no telling which yet: start over, and hand the pieces
            // back so the caller can judge their senders against the true metadata later.
            pieces = Array(repeating: .missing(reservations: 0), count: pieceCount)
            receivedCount = 0
            return .hashMismatch(FailedMetadataAttempt(totalSize: totalSize, pieces: received))
        }
        isComplete = true
        // The caller has the bytes now: keep only who sent what.
        pieces = pieces.map { if case .received(let source, _) = $0 { .received(source: source, bytes: []) } else { $0 } }
        return .complete(whole)
    }

    /// Sources that sent at least one piece now held.
    public var sources: Set<Int> {
        Set(pieces.compactMap { if case .received(let source, _) = $0 { return source } else { return nil } })
    }

    /// Adds a decoded `data` message, first checking that its `total_size` is the size assembly started
    /// with. Request and reject messages carry no data and return nil.
    public mutating func add(_ message: MetadataMessage) throws(MetadataAssemblerError) -> Outcome? {
        guard case .data(let piece, let announcedSize, let payload) = message else { return nil }
        guard announcedSize == totalSize else {
            throw .totalSizeMismatch(announced: announcedSize, expected: totalSize)
        }
        return try add(piece: piece, data: payload)
    }
}

/// The pieces of an assembly that failed the info hash, with the source each came from.
public struct FailedMetadataAttempt: Equatable, Sendable {
    public struct Piece: Equatable, Sendable {
        public let index: Int
        public let source: Int
        public let bytes: [UInt8]
    }

    public let totalSize: Int
    public let pieces: [Piece]

    public var sources: Set<Int> { Set(pieces.map(\.source)) }

    /// The sources that sent bytes differing from `verified`, the info dictionary that did hash to the
    /// info hash. Metadata of another size than the true one is wrong as a whole: all its sources lied.
    public func liars(given verified: [UInt8]) -> Set<Int> {
        guard verified.count == totalSize else { return sources }
        var liars: Set<Int> = []
        for piece in pieces {
            let start = piece.index * MetadataAssembler.pieceSize
            if !verified[start..<start + piece.bytes.count].elementsEqual(piece.bytes) { liars.insert(piece.source) }
        }
        return liars
    }
}

public enum MetadataAssemblerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A `metadata_size` that is zero, negative or above `MetadataAssembler.maximumSize`.
    case invalidSize(Int, maximum: Int)
    case pieceOutOfRange(Int, pieceCount: Int)
    case wrongPieceLength(piece: Int, length: Int, expected: Int)
    /// A data message's `total_size` differs from the size assembly started with.
    case totalSizeMismatch(announced: Int, expected: Int)

    public var description: String {
        switch self {
        case .invalidSize(let size, let maximum):
            return "metadata size \(size) is invalid, expected 1...\(maximum)"
        case .pieceOutOfRange(let piece, let pieceCount):
            return "metadata piece \(piece) is out of range 0..<\(pieceCount)"
        case .wrongPieceLength(let piece, let length, let expected):
            return "metadata piece \(piece) has \(length) bytes, expected \(expected)"
        case .totalSizeMismatch(let announced, let expected):
            return "metadata total size \(announced) differs from the expected \(expected)"
        }
    }
}
