import PeerWire
import TorrentModel

/// What a peer said it has before the metadata told us the piece count (magnet downloads): have-all,
/// a bitfield, have-messages. Kept as one bitfield of the indices seen, never as a list.
///
/// Bounded: `limit` is the largest piece count the torrent can have (`bound(forMetadataSize:)`); an index
/// or bitfield beyond it is refused, so this holds at most `limit / 8` bytes, the size of one bitfield
/// message, however many messages the peer sends.
struct EarlyAvailability {
    /// Every piece takes 20 bytes of SHA-1 in the info dictionary, so an info dictionary of `size` bytes
    /// describes fewer than `size / 20` pieces.
    static func bound(forMetadataSize size: Int?) -> Int {
        max(1, min(size ?? MetadataAssembler.maximumSize, MetadataAssembler.maximumSize) / 20)
    }

    private(set) var haveAll = false
    /// Wire order (bit 7 of byte 0 is piece 0). Invariant: `bits.count <= (limit + 7) / 8`.
    private(set) var bits: [UInt8] = []

    var isEmpty: Bool { !haveAll && bits.isEmpty }

    mutating func setHaveAll() { haveAll = true }

    /// Records a have-message; false when `index` cannot be a piece of a torrent with at most `limit` pieces.
    mutating func have(_ index: Int, limit: Int) -> Bool {
        guard index >= 0, index < limit else { return false }
        let byte = index / 8
        if bits.count <= byte { bits += [UInt8](repeating: 0, count: byte + 1 - bits.count) }
        bits[byte] |= 0x80 >> UInt8(index % 8)
        return true
    }

    /// Records a bitfield message (merged with earlier haves); false when it is longer than `limit` pieces need.
    mutating func bitfield(_ bytes: [UInt8], limit: Int) -> Bool {
        guard bytes.count <= (limit + 7) / 8 else { return false }
        if bits.count < bytes.count { bits += [UInt8](repeating: 0, count: bytes.count - bits.count) }
        for (index, byte) in bytes.enumerated() { bits[index] |= byte }
        return true
    }

    /// The availability for a torrent of `pieceCount` pieces, or nil when something recorded lies beyond it.
    func resolve(pieceCount: Int) -> Bitfield? {
        if haveAll { return Bitfield(count: pieceCount, allSet: true) }
        let needed = (pieceCount + 7) / 8
        guard bits.count <= needed else { return nil }
        return Bitfield(count: pieceCount, wireBytes: bits + [UInt8](repeating: 0, count: needed - bits.count))
    }
}
