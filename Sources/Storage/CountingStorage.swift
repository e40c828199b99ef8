import NIOConcurrencyHelpers
import NIOCore

/// Wraps another storage and counts what reached it, per piece: to assert in engine tests that blocks
/// are written once, that served blocks were read, that each piece was verified.
public final class CountingStorage: PieceStorage {
    public struct Counts: Sendable, Equatable {
        /// Bytes written successfully, by piece.
        public var bytesWritten: [Int: Int] = [:]
        /// Bytes read successfully, by piece.
        public var bytesRead: [Int: Int] = [:]
        /// Completed verifications (valid or not), by piece.
        public var verifications: [Int: Int] = [:]
        public var syncs = 0

        public init() {}

        public var totalBytesWritten: Int { bytesWritten.values.reduce(0, +) }
        public var totalBytesRead: Int { bytesRead.values.reduce(0, +) }
    }

    public let base: any PieceStorage
    private let state = NIOLockedValueBox(Counts())

    public init(wrapping base: any PieceStorage) {
        self.base = base
    }

    public var counts: Counts { state.withLockedValue { $0 } }

    public func writeBlock(piece: Int, begin: Int, data: ByteBuffer, on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        let length = data.readableBytes
        return base.writeBlock(piece: piece, begin: begin, data: data, on: eventLoop).map {
            self.state.withLockedValue { $0.bytesWritten[piece, default: 0] += length }
        }
    }

    public func writeNow(_ bytes: UnsafeRawBufferPointer, piece: Int, begin: Int) throws {
        try base.writeNow(bytes, piece: piece, begin: begin)
        state.withLockedValue { $0.bytesWritten[piece, default: 0] += bytes.count }
    }

    public func readNow(into buffer: UnsafeMutableRawBufferPointer, piece: Int, begin: Int) throws {
        try base.readNow(into: buffer, piece: piece, begin: begin)
        state.withLockedValue { $0.bytesRead[piece, default: 0] += buffer.count }
    }

    public func readBlock(piece: Int, begin: Int, length: Int, on eventLoop: EventLoop) -> EventLoopFuture<ByteBuffer> {
        base.readBlock(piece: piece, begin: begin, length: length, on: eventLoop).map { buffer in
            self.state.withLockedValue { $0.bytesRead[piece, default: 0] += buffer.readableBytes }
            return buffer
        }
    }

    public func verifyPiece(_ piece: Int, on eventLoop: EventLoop) -> EventLoopFuture<Bool> {
        base.verifyPiece(piece, on: eventLoop).map { valid in
            self.state.withLockedValue { $0.verifications[piece, default: 0] += 1 }
            return valid
        }
    }

    public func sync(on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        base.sync(on: eventLoop).map { self.state.withLockedValue { $0.syncs += 1 } }
    }

    public func close() {
        base.close()
    }
}
