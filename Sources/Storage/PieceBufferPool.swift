import NIOConcurrencyHelpers

/// Piece-sized scratch buffers reused across `verifyPiece` calls, so hashing a 1 GiB download does not
/// allocate per piece. The pool grows to the number of concurrent users (the thread pool's width) and
/// never beyond; buffers are freed when the pool is.
final class PieceBufferPool: @unchecked Sendable {
    // @unchecked: `free` holds raw pointers, but is only touched under `lock`, and a buffer belongs to
    // exactly one caller between `take` and `give`.
    let bufferSize: Int
    private let lock = NIOLock()
    private var free: [UnsafeMutableRawBufferPointer] = []

    init(bufferSize: Int) {
        self.bufferSize = max(1, bufferSize)
    }

    deinit {
        for buffer in free { buffer.deallocate() }
    }

    func withBuffer<T>(_ body: (UnsafeMutableRawBufferPointer) throws -> T) rethrows -> T {
        let buffer = lock.withLock { free.popLast() }
            ?? UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 4096)
        defer { lock.withLock { free.append(buffer) } }
        return try body(buffer)
    }
}
