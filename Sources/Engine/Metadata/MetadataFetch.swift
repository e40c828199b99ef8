import PeerWire
import TorrentModel

/// Fetches a magnet's info dictionary from peers (BEP 9) when some of them lie. Peers are named by
/// their session keys.
///
/// Sizes: every peer claims a `metadata_size`, and the first claim must not decide: up to
/// `maxAssemblies` claimed sizes are assembled side by side (the ones most peers claim), each only from
/// the peers claiming it, so a liar's size pins nothing while honest peers answer. A size nobody claims
/// any more (its claimers left, were banned, rejected or timed out) is dropped with its pieces.
///
/// Blame: an attempt that fails the info hash with pieces from one peer proves that peer lied. With
/// pieces from several, the next attempt at that size takes every piece from one peer at a time, which
/// either proves that peer a liar or yields the true metadata; the failed attempts are kept until then
/// (at most `maxKeptAttempts` per size) and whoever sent pieces that differ from the truth is named a
/// liar, as is anyone who sent data for a size that turned out wrong.
///
/// Memory: at most `maxAssemblies` assemblies of `MetadataAssembler.maximumSize`, plus
/// `maxKeptAttempts` failed attempts each; only bytes peers actually sent are held.
struct MetadataFetch {
    static let maxAssemblies = 3
    static let maxKeptAttempts = 2

    private struct Assembly {
        var assembler: MetadataAssembler
        /// After a failed attempt with several sources: only this peer is asked until it completes the
        /// metadata or fails alone. nil in the normal, shared mode.
        var soleSource: Int?
        var singleSourceMode = false
        var triedSoleSources: Set<Int> = []
        var failedAttempts: [FailedMetadataAttempt] = []
    }

    enum Event: Equatable {
        case needMore
        /// The attempt failed; `liars` (possibly none yet) are proven to have sent bad metadata.
        case failed(liars: Set<Int>)
        /// The info dictionary, hashed to the info hash; `liars` sent bad pieces on the way.
        case complete([UInt8], liars: Set<Int>)
    }

    let infoHash: InfoHash
    /// Peer → the size it claims. Invariant: only connected peers still willing to serve metadata.
    private(set) var claims: [Int: Int] = [:]
    /// Size → assembly. Invariant: `count <= maxAssemblies`; every key is claimed in `claims`.
    private var assemblies: [Int: Assembly] = [:]

    init(infoHash: InfoHash) { self.infoHash = infoHash }

    var assembledSizes: Set<Int> { Set(assemblies.keys) }

    /// Records `peer`'s claim; an invalid size (zero, negative, above `MetadataAssembler.maximumSize`) is
    /// refused with the error to report.
    mutating func claim(peer: Int, size: Int) throws(MetadataAssemblerError) {
        guard size > 0, size <= MetadataAssembler.maximumSize else {
            throw .invalidSize(size, maximum: MetadataAssembler.maximumSize)
        }
        if let old = claims[peer], old != size { forget(peer: peer) }
        claims[peer] = size
        startAssemblies()
    }

    /// `peer` left, was banned, rejected us or timed out: it is no longer asked; its size may go.
    mutating func forget(peer: Int) {
        guard let size = claims.removeValue(forKey: peer) else { return }
        if assemblies[size]?.soleSource == peer { assemblies[size]?.soleSource = nil }
        if !claims.values.contains(size) { assemblies[size] = nil }
        startAssemblies()
    }

    /// The size to ask `peer` for, when its size is being assembled and it may be asked now.
    mutating func size(toAsk peer: Int) -> Int? {
        guard let size = claims[peer], var assembly = assemblies[size] else { return nil }
        if assembly.singleSourceMode {
            if assembly.soleSource == nil {
                let untried = claims.filter { $0.value == size && !assembly.triedSoleSources.contains($0.key) }.keys
                assembly.soleSource = untried.min() ?? claims.filter { $0.value == size }.keys.min()
                if let sole = assembly.soleSource { assembly.triedSoleSources.insert(sole) }
                assemblies[size] = assembly
            }
            guard assembly.soleSource == peer else { return nil }
        }
        return size
    }

    mutating func reservePiece(for peer: Int, allowingDuplicate: Bool) -> Int? {
        guard let size = size(toAsk: peer) else { return nil }
        return assemblies[size]?.assembler.reservePiece(allowingDuplicate: allowingDuplicate)
    }

    mutating func release(piece: Int, of peer: Int) {
        guard let size = claims[peer] else { return }
        assemblies[size]?.assembler.releasePiece(piece)
    }

    /// A data message from `peer` for a piece we asked it for. Throws (changing nothing) when the piece
    /// or its length do not fit the size it claimed: the peer is faulty.
    mutating func received(piece: Int, totalSize: Int, bytes: [UInt8], from peer: Int) throws(MetadataAssemblerError) -> Event {
        guard let size = claims[peer], var assembly = assemblies[size] else { return .needMore }
        guard totalSize == size else { throw .totalSizeMismatch(announced: totalSize, expected: size) }
        if assembly.singleSourceMode && assembly.soleSource != peer { return .needMore }  // a late answer
        let outcome = try assembly.assembler.add(piece: piece, data: bytes, from: peer)
        switch outcome {
        case .needMore:
            assemblies[size] = assembly
            return .needMore
        case .hashMismatch(let attempt):
            if attempt.sources.count == 1 {
                // One source for every piece: that peer lied.
                assemblies[size] = assembly
                return .failed(liars: attempt.sources)
            }
            assembly.failedAttempts.append(attempt)
            if assembly.failedAttempts.count > Self.maxKeptAttempts { assembly.failedAttempts.removeFirst() }
            assembly.singleSourceMode = true
            assembly.soleSource = nil
            assemblies[size] = assembly
            return .failed(liars: [])
        case .complete(let info):
            var liars: Set<Int> = []
            for attempt in assembly.failedAttempts { liars.formUnion(attempt.liars(given: info)) }
            // Data of another size cannot be the info dictionary.
            for (otherSize, other) in assemblies where otherSize != size {
                liars.formUnion(other.assembler.sources)
                for attempt in other.failedAttempts { liars.formUnion(attempt.sources) }
            }
            assemblies = [:]
            claims = [:]
            return .complete(info, liars: liars)
        }
    }

    /// Opens assemblies for the most claimed sizes while there is room.
    private mutating func startAssemblies() {
        guard assemblies.count < Self.maxAssemblies else { return }
        var claimers: [Int: Int] = [:]
        for size in claims.values where assemblies[size] == nil { claimers[size, default: 0] += 1 }
        for (size, _) in claimers.sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }) {
            guard assemblies.count < Self.maxAssemblies,
                  let assembler = try? MetadataAssembler(infoHash: infoHash, totalSize: size) else { break }
            assemblies[size] = Assembly(assembler: assembler)
        }
    }
}
