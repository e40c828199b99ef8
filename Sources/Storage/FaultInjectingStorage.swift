import NIOConcurrencyHelpers
import NIOCore
import SystemPackage

/// Wraps another storage and fails chosen operations, to test that storage errors surface and that
/// nothing already verified is lost. Faults can be changed at any time from any thread.
public final class FaultInjectingStorage: PieceStorage {
    public struct Faults: Sendable, Equatable {
        /// Writes of blocks of these pieces fail with EIO.
        public var failingWritePieces: Set<Int> = []
        /// Reads of blocks of these pieces fail with EIO.
        public var failingReadPieces: Set<Int> = []
        /// Verifying these pieces fails with EIO (an I/O error, not a hash mismatch).
        public var failingVerifyPieces: Set<Int> = []
        /// Once this many bytes were written (through this wrapper), every further write fails with
        /// ENOSPC — a disk filling up. A write that would cross the limit fails whole. nil: no limit.
        public var writableBytes: Int?
        /// `sync` fails with EIO.
        public var failSync = false

        public init() {}
    }

    public let base: any PieceStorage
    private let state: NIOLockedValueBox<(faults: Faults, bytesWritten: Int)>

    public init(wrapping base: any PieceStorage, faults: Faults = Faults()) {
        self.base = base
        self.state = NIOLockedValueBox((faults, 0))
    }

    public var faults: Faults {
        get { state.withLockedValue(\.faults) }
        set { state.withLockedValue { $0.faults = newValue } }
    }

    /// Bytes successfully passed to the wrapped storage so far.
    public var bytesWritten: Int { state.withLockedValue(\.bytesWritten) }

    public func writeBlock(piece: Int, begin: Int, data: ByteBuffer, on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        if let injected = reserveWrite(piece: piece, length: data.readableBytes) { return eventLoop.makeFailedFuture(injected) }
        return base.writeBlock(piece: piece, begin: begin, data: data, on: eventLoop).flatMapErrorThrowing { error in
            self.state.withLockedValue { $0.bytesWritten -= data.readableBytes }
            throw error
        }
    }

    public func writeNow(_ bytes: UnsafeRawBufferPointer, piece: Int, begin: Int) throws {
        if let injected = reserveWrite(piece: piece, length: bytes.count) { throw injected }
        do {
            try base.writeNow(bytes, piece: piece, begin: begin)
        } catch {
            state.withLockedValue { $0.bytesWritten -= bytes.count }
            throw error
        }
    }

    public func readNow(into buffer: UnsafeMutableRawBufferPointer, piece: Int, begin: Int) throws {
        if faults.failingReadPieces.contains(piece) {
            throw StorageError.injectedFault(operation: .reading, piece: piece, errno: .ioError)
        }
        try base.readNow(into: buffer, piece: piece, begin: begin)
    }

    /// The fault a write of `length` bytes to `piece` meets, or nil after reserving its bytes against the
    /// writable limit (so concurrent writes respect it).
    private func reserveWrite(piece: Int, length: Int) -> StorageError? {
        state.withLockedValue { state in
            if state.faults.failingWritePieces.contains(piece) {
                return .injectedFault(operation: .writing, piece: piece, errno: .ioError)
            }
            if let limit = state.faults.writableBytes, state.bytesWritten + length > limit {
                return .injectedFault(operation: .writing, piece: piece, errno: .noSpace)
            }
            state.bytesWritten += length
            return nil
        }
    }

    public func readBlock(piece: Int, begin: Int, length: Int, on eventLoop: EventLoop) -> EventLoopFuture<ByteBuffer> {
        if faults.failingReadPieces.contains(piece) {
            return eventLoop.makeFailedFuture(StorageError.injectedFault(operation: .reading, piece: piece, errno: .ioError))
        }
        return base.readBlock(piece: piece, begin: begin, length: length, on: eventLoop)
    }

    public func verifyPiece(_ piece: Int, on eventLoop: EventLoop) -> EventLoopFuture<Bool> {
        if faults.failingVerifyPieces.contains(piece) {
            return eventLoop.makeFailedFuture(StorageError.injectedFault(operation: .reading, piece: piece, errno: .ioError))
        }
        return base.verifyPiece(piece, on: eventLoop)
    }

    public func sync(on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        if faults.failSync {
            return eventLoop.makeFailedFuture(StorageError.system(operation: .syncing, path: "(all files)", offset: nil,
                                                                  errno: .ioError))
        }
        return base.sync(on: eventLoop)
    }

    public func close() {
        base.close()
    }
}
