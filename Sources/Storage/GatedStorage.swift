import NIOConcurrencyHelpers
import NIOCore

/// Wraps another storage and holds every write until the gate is opened: a disk that has stalled (a
/// sleeping USB drive, a full NFS queue). Engine tests use it to check that a session stops reading from
/// its peers instead of piling downloaded blocks up in memory. Reads are not held. A held write blocks
/// its caller's thread, so put it only under callers on disk threads (`PieceWriter`, the engine's path),
/// never under `writeBlock` calls made from an event loop.
public final class GatedStorage: PieceStorage {
    public let base: any PieceStorage
    /// true while writes may proceed.
    private let gate: ConditionLock<Bool>

    public init(wrapping base: any PieceStorage, open: Bool = false) {
        self.base = base
        self.gate = ConditionLock(value: open)
    }

    /// Lets held and later writes through.
    public func open() {
        gate.lock()
        gate.unlock(withValue: true)
    }

    /// Holds writes again (those already running finish).
    public func shut() {
        gate.lock()
        gate.unlock(withValue: false)
    }

    private func waitForGate() {
        gate.lock(whenValue: true)
        gate.unlock()
    }

    public func writeBlock(piece: Int, begin: Int, data: ByteBuffer, on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        waitForGate()
        return base.writeBlock(piece: piece, begin: begin, data: data, on: eventLoop)
    }

    public func writeNow(_ bytes: UnsafeRawBufferPointer, piece: Int, begin: Int) throws {
        waitForGate()
        try base.writeNow(bytes, piece: piece, begin: begin)
    }

    public func writeNow(_ parts: [ByteBuffer], piece: Int, begin: Int) throws {
        waitForGate()
        try base.writeNow(parts, piece: piece, begin: begin)
    }

    public func readBlock(piece: Int, begin: Int, length: Int, on eventLoop: EventLoop) -> EventLoopFuture<ByteBuffer> {
        base.readBlock(piece: piece, begin: begin, length: length, on: eventLoop)
    }

    public func readNow(into buffer: UnsafeMutableRawBufferPointer, piece: Int, begin: Int) throws {
        try base.readNow(into: buffer, piece: piece, begin: begin)
    }

    public func verifyPiece(_ piece: Int, on eventLoop: EventLoop) -> EventLoopFuture<Bool> {
        base.verifyPiece(piece, on: eventLoop)
    }

    public func sync(on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        base.sync(on: eventLoop)
    }

    public func close() {
        base.close()
    }
}
