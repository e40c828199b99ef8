import NIOCore
import TorrentModel

/// All of a torrent's bytes, addressed by piece. Implementations must be safe to call from any thread.
public protocol PieceStorage: Sendable {
    /// Writes one block (any length, usually 16 KiB) at `begin` within piece `piece`. The future
    /// completes (on `eventLoop`) once the bytes are handed to the kernel.
    func writeBlock(piece: Int, begin: Int, data: ByteBuffer, on eventLoop: EventLoop) -> EventLoopFuture<Void>
    func readBlock(piece: Int, begin: Int, length: Int, on eventLoop: EventLoop) -> EventLoopFuture<ByteBuffer>
    /// Reads the whole piece back and checks its SHA-1 against the metainfo.
    func verifyPiece(_ piece: Int, on eventLoop: EventLoop) -> EventLoopFuture<Bool>
    /// Flushes file data to stable storage (fdatasync) — used before compacting resume data and at exit.
    func sync(on eventLoop: EventLoop) -> EventLoopFuture<Void>
    func close()

    /// Blocking forms of `writeBlock` / `readBlock` for a caller already on a disk thread (`PieceWriter`):
    /// no hop, no future, no allocation. Never call them on an event loop.
    func writeNow(_ bytes: UnsafeRawBufferPointer, piece: Int, begin: Int) throws
    /// Writes the concatenation of `parts` at `begin` of piece `piece` (vectored where the storage can).
    func writeNow(_ parts: [ByteBuffer], piece: Int, begin: Int) throws
    /// Fills `buffer` with the bytes at `begin` of piece `piece`; a file not written yet is an error.
    func readNow(into buffer: UnsafeMutableRawBufferPointer, piece: Int, begin: Int) throws
}

extension PieceStorage {
    /// One `writeNow` per part: right for storages without a cheaper vectored path (test doubles).
    public func writeNow(_ parts: [ByteBuffer], piece: Int, begin: Int) throws {
        var at = begin
        for part in parts {
            try part.withUnsafeReadableBytes { try writeNow($0, piece: piece, begin: at) }
            at += part.readableBytes
        }
    }
}

/// Argument checks every `PieceStorage` applies before touching bytes, so all implementations
/// (real and test doubles) reject the same bad requests with the same errors.
extension TorrentInfo {
    /// Throws `StorageError.outOfBounds` unless `begin..<begin+length` lies inside piece `piece`.
    func checkBlock(piece: Int, begin: Int, length: Int) throws {
        guard piece >= 0, piece < pieceCount else {
            throw StorageError.outOfBounds(piece: piece, begin: begin, length: length,
                                           reason: "the torrent has \(pieceCount) pieces")
        }
        let pieceLength = self.length(ofPiece: piece)
        guard begin >= 0, length >= 0, begin <= pieceLength, length <= pieceLength - begin else {
            throw StorageError.outOfBounds(piece: piece, begin: begin, length: length,
                                           reason: "piece \(piece) is \(pieceLength) bytes long")
        }
    }

    func checkPiece(_ piece: Int) throws {
        guard piece >= 0, piece < pieceCount else {
            throw StorageError.outOfBounds(piece: piece, begin: 0, length: 0,
                                           reason: "the torrent has \(pieceCount) pieces")
        }
    }
}
