import NIOCore

/// Pieces being downloaded, assembled in memory: each arriving block is copied into its piece's buffer at
/// once (so the network's receive buffers are released immediately), and a complete piece is hashed from
/// memory and written to disk in one go — never read back, and never written at all if it fails the hash.
///
/// Invariant: a piece has a buffer here from its first accepted block until it is taken for verification
/// (or discarded); its bytes at [begin, begin+length) are valid exactly for the blocks the picker marked
/// received. Memory is bounded by the picker's partial pieces, which it keeps few (it finishes pieces first).
struct PieceBuffers {
    private var buffers: [Int: ByteBuffer] = [:]
    /// Verified-and-written buffers kept for reuse, so a 1 MiB piece does not cost an mmap/munmap pair.
    private var spare: [ByteBuffer] = []
    private let allocator = ByteBufferAllocator()
    /// Enough to cover the pieces in flight to disk, so steady state allocates nothing.
    static let maxSpare = 8

    var piecesHeld: Int { buffers.count }

    /// Copies `block` to offset `begin` of piece `piece` (whose full length is `pieceLength`).
    mutating func store(piece: Int, begin: Int, block: ByteBuffer, pieceLength: Int) {
        var buffer = buffers.removeValue(forKey: piece) ?? freshBuffer(length: pieceLength)
        buffer.setBuffer(block, at: begin)
        buffers[piece] = buffer
    }

    /// The assembled piece, removed from the set (nil if no block of it was stored).
    mutating func take(piece: Int) -> ByteBuffer? {
        buffers.removeValue(forKey: piece)
    }

    mutating func recycle(_ buffer: ByteBuffer) {
        guard spare.count < Self.maxSpare else { return }
        var buffer = buffer
        buffer.clear()
        spare.append(buffer)
    }

    private mutating func freshBuffer(length: Int) -> ByteBuffer {
        var buffer: ByteBuffer
        if let reusable = spare.popLast(), reusable.capacity >= length {
            buffer = reusable
        } else {
            buffer = allocator.buffer(capacity: length)
        }
        // Every byte is overwritten by a block before the piece is complete.
        buffer.moveWriterIndex(to: length)
        return buffer
    }
}
