import Crypto
import NIOConcurrencyHelpers
import NIOCore
import TorrentModel

/// A whole torrent held in one byte array: for engine tests. Same rules as `FileStorage` (bounds
/// checks, padding writes dropped and read as zeros, `.closed` after `close()`), but operations run
/// synchronously on the caller's thread and complete immediately.
public final class InMemoryStorage: PieceStorage {
    public let info: TorrentInfo
    private let state: NIOLockedValueBox<State>

    private struct State {
        var bytes: [UInt8]
        var isClosed = false
    }

    /// An empty (all-zero) torrent.
    public init(info: TorrentInfo) {
        self.info = info
        self.state = NIOLockedValueBox(State(bytes: [UInt8](repeating: 0, count: Int(info.totalLength))))
    }

    /// A torrent already holding `contents` (its whole byte stream), e.g. to play a seeder.
    public init(info: TorrentInfo, contents: [UInt8]) throws {
        guard contents.count == Int(info.totalLength) else {
            throw StorageError.invalidArgument("contents are \(contents.count) bytes but the torrent is \(info.totalLength)")
        }
        self.info = info
        self.state = NIOLockedValueBox(State(bytes: contents))
    }

    /// The whole byte stream as stored now.
    public var contents: [UInt8] { state.withLockedValue { $0.bytes } }

    public func bytes(ofPiece piece: Int) -> [UInt8] {
        let start = piece * info.pieceLength
        return state.withLockedValue { Array($0.bytes[start..<(start + info.length(ofPiece: piece))]) }
    }

    public func writeBlock(piece: Int, begin: Int, data: ByteBuffer, on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        eventLoop.makeCompletedFuture {
            try data.withUnsafeReadableBytes { try writeNow($0, piece: piece, begin: begin) }
        }
    }

    public func writeNow(_ bytes: UnsafeRawBufferPointer, piece: Int, begin: Int) throws {
        try info.checkBlock(piece: piece, begin: begin, length: bytes.count)
        let start = piece * info.pieceLength + begin
        try state.withLockedValue { state in
            guard !state.isClosed else { throw StorageError.closed }
            info.forEachSpan(piece: piece, begin: begin, length: bytes.count) { span in
                guard !info.files[span.fileIndex].isPadding else { return }
                let source = bytes[span.bufferOffset..<(span.bufferOffset + span.length)]
                let target = start + span.bufferOffset
                state.bytes.replaceSubrange(target..<(target + span.length), with: source)
            }
        }
    }

    public func readNow(into buffer: UnsafeMutableRawBufferPointer, piece: Int, begin: Int) throws {
        let bytes = try read(piece: piece, begin: begin, length: buffer.count)
        buffer.copyBytes(from: bytes)
    }

    public func readBlock(piece: Int, begin: Int, length: Int, on eventLoop: EventLoop) -> EventLoopFuture<ByteBuffer> {
        eventLoop.makeCompletedFuture { try ByteBuffer(bytes: read(piece: piece, begin: begin, length: length)) }
    }

    public func verifyPiece(_ piece: Int, on eventLoop: EventLoop) -> EventLoopFuture<Bool> {
        eventLoop.makeCompletedFuture {
            try info.checkPiece(piece)
            let bytes = try read(piece: piece, begin: 0, length: info.length(ofPiece: piece))
            return Insecure.SHA1.hash(data: bytes).elementsEqual(info.hash(ofPiece: piece))
        }
    }

    public func sync(on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        eventLoop.makeCompletedFuture {
            guard !state.withLockedValue(\.isClosed) else { throw StorageError.closed }
        }
    }

    public func close() {
        state.withLockedValue { $0.isClosed = true }
    }

    private func read(piece: Int, begin: Int, length: Int) throws -> [UInt8] {
        try info.checkBlock(piece: piece, begin: begin, length: length)
        let start = piece * info.pieceLength + begin
        var out = try state.withLockedValue { state in
            guard !state.isClosed else { throw StorageError.closed }
            return Array(state.bytes[start..<(start + length)])
        }
        // Padding reads as zeros whatever was handed to us (writes there are dropped anyway).
        info.forEachSpan(piece: piece, begin: begin, length: length) { span in
            guard info.files[span.fileIndex].isPadding else { return }
            for i in span.bufferOffset..<(span.bufferOffset + span.length) { out[i] = 0 }
        }
        return out
    }
}
