import Crypto
import NIOCore
import NIOPosix
import SystemPackage
import TorrentModel

/// A torrent's pieces stored in its files under an output directory, with all I/O done on a
/// `NIOThreadPool` (positioned reads and writes; never on an event loop).
///
/// - Files are created sparse when first written (open + ftruncate to full length; no zeros written),
///   zero-length files are created empty by `init`, and folders are created as needed.
/// - BEP 47 padding files never touch the disk: writes to them are dropped, reads return zeros.
/// - `fileWanted`: files marked unwanted are not created up front. Because a piece is the unit of
///   verification, writing a piece that also overlaps an unwanted file creates that file (sparse) and
///   writes the overlapping bytes there — the simplest behaviour that keeps every wanted piece
///   verifiable.
/// - Every path stays inside `root` (see `RootedDirectory`).
public final class FileStorage: PieceStorage {
    public let info: TorrentInfo
    /// The output directory.
    public let root: String
    private let threadPool: NIOThreadPool
    private let descriptors: DescriptorCache
    private let buffers: PieceBufferPool

    /// Checks every path, creates `root` and the wanted zero-length files. Does a little blocking I/O;
    /// from an event loop prefer `FileStorage.open(…, on:)`. At most `maximumOpenFiles` descriptors are
    /// kept open (least recently used idle ones are closed beyond that).
    public init(info: TorrentInfo, root: String, threadPool: NIOThreadPool, fileWanted: [Bool]? = nil,
                maximumOpenFiles: Int = 256) throws {
        if let fileWanted, fileWanted.count != info.files.count {
            throw StorageError.invalidArgument(
                "fileWanted has \(fileWanted.count) entries but the torrent has \(info.files.count) files")
        }
        let directory = try RootedDirectory(root: root)
        for file in info.files where !file.isPadding { try RootedDirectory.validate(file.path) }
        try directory.createRoot()
        for (index, file) in info.files.enumerated()
        where file.length == 0 && !file.isPadding && fileWanted?[index] ?? true {
            if let opened = try directory.openFile(file.path, access: .createForWriting(length: 0)) {
                PositionalIO.closeDescriptor(opened.fd)
            }
        }
        self.info = info
        self.root = root
        self.threadPool = threadPool
        self.descriptors = DescriptorCache(directory: directory, files: info.files, maximumOpen: maximumOpenFiles)
        self.buffers = PieceBufferPool(bufferSize: info.pieceLength)
    }

    /// `init` run on the thread pool; the future completes on `eventLoop`.
    public static func open(info: TorrentInfo, root: String, threadPool: NIOThreadPool, fileWanted: [Bool]? = nil,
                            on eventLoop: EventLoop) -> EventLoopFuture<FileStorage> {
        threadPool.runIfActive(eventLoop: eventLoop) {
            try FileStorage(info: info, root: root, threadPool: threadPool, fileWanted: fileWanted)
        }
    }

    /// How many pieces are worth verifying at once (the thread pool's width); used by `Recheck`.
    public var parallelism: Int { threadPool.numberOfThreads }

    public func writeBlock(piece: Int, begin: Int, data: ByteBuffer, on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        do { try info.checkBlock(piece: piece, begin: begin, length: data.readableBytes) } catch {
            return eventLoop.makeFailedFuture(error)
        }
        return threadPool.runIfActive(eventLoop: eventLoop) { [self] in
            try data.withUnsafeReadableBytes { try write($0, piece: piece, begin: begin) }
        }
    }

    public func readBlock(piece: Int, begin: Int, length: Int, on eventLoop: EventLoop) -> EventLoopFuture<ByteBuffer> {
        do { try info.checkBlock(piece: piece, begin: begin, length: length) } catch {
            return eventLoop.makeFailedFuture(error)
        }
        return threadPool.runIfActive(eventLoop: eventLoop) { [self] in
            var buffer = ByteBufferAllocator().buffer(capacity: length)
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw in
                try read(into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<length]), piece: piece, begin: begin)
                return length
            }
            return buffer
        }
    }

    /// True when the piece's bytes on disk hash to the metainfo's SHA-1. A piece whose bytes are not all
    /// on disk (a file missing or too short) is simply not valid: false, not an error. Real I/O errors fail.
    public func verifyPiece(_ piece: Int, on eventLoop: EventLoop) -> EventLoopFuture<Bool> {
        do { try info.checkPiece(piece) } catch { return eventLoop.makeFailedFuture(error) }
        return threadPool.runIfActive(eventLoop: eventLoop) { [self] in try verify(piece) }
    }

    public func sync(on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        threadPool.runIfActive(eventLoop: eventLoop) { [descriptors] in try descriptors.syncDirtyFiles() }
    }

    /// Closes the file descriptors (those in use as soon as their operation ends). Later calls fail
    /// with `StorageError.closed`.
    public func close() {
        descriptors.closeAll()
    }

    public func writeNow(_ bytes: UnsafeRawBufferPointer, piece: Int, begin: Int) throws {
        try info.checkBlock(piece: piece, begin: begin, length: bytes.count)
        try write(bytes, piece: piece, begin: begin)
    }

    /// One `pwritev` per file the parts land in.
    public func writeNow(_ parts: [ByteBuffer], piece: Int, begin: Int) throws {
        let total = parts.reduce(0) { $0 + $1.readableBytes }
        try info.checkBlock(piece: piece, begin: begin, length: total)
        try withReadableBytes(of: parts[...]) { pointers in
            try info.forEachSpan(piece: piece, begin: begin, length: total) { span in
                let file = info.files[span.fileIndex]
                guard !file.isPadding else { return }  // padding never reaches the disk
                let vectors = Self.slice(pointers, from: span.bufferOffset, count: span.length)
                try descriptors.withDescriptor(fileIndex: span.fileIndex, forWriting: true, operation: .writing) { fd in
                    try performing(.writing, on: file.relativePath, at: span.fileOffset) { () throws(Errno) in
                        try PositionalIO.writeFully(fd: fd, from: vectors, at: span.fileOffset)
                    }
                }
            }
        }
    }

    /// Calls `body` with the readable bytes of every buffer, in order (each pointer valid only inside).
    private func withReadableBytes<R>(of parts: ArraySlice<ByteBuffer>, collected: [UnsafeRawBufferPointer] = [],
                                      _ body: ([UnsafeRawBufferPointer]) throws -> R) rethrows -> R {
        guard let first = parts.first else { return try body(collected) }
        return try first.withUnsafeReadableBytes { bytes in
            try withReadableBytes(of: parts.dropFirst(), collected: collected + [bytes], body)
        }
    }

    /// The sub-ranges of the concatenation of `parts` covering `count` bytes from `offset`.
    private static func slice(_ parts: [UnsafeRawBufferPointer], from offset: Int, count: Int) -> [UnsafeRawBufferPointer] {
        var result: [UnsafeRawBufferPointer] = []
        var skip = offset
        var remaining = count
        for part in parts where remaining > 0 {
            if skip >= part.count {
                skip -= part.count
                continue
            }
            let take = min(part.count - skip, remaining)
            result.append(UnsafeRawBufferPointer(rebasing: part[skip..<(skip + take)]))
            remaining -= take
            skip = 0
        }
        return result
    }

    public func readNow(into buffer: UnsafeMutableRawBufferPointer, piece: Int, begin: Int) throws {
        try info.checkBlock(piece: piece, begin: begin, length: buffer.count)
        try read(into: buffer, piece: piece, begin: begin)
    }

    // MARK: - Synchronous work (thread pool only)

    private func write(_ bytes: UnsafeRawBufferPointer, piece: Int, begin: Int) throws {
        try info.forEachSpan(piece: piece, begin: begin, length: bytes.count) { span in
            let file = info.files[span.fileIndex]
            guard !file.isPadding else { return }  // padding never reaches the disk
            let source = UnsafeRawBufferPointer(rebasing: bytes[span.bufferOffset..<(span.bufferOffset + span.length)])
            try descriptors.withDescriptor(fileIndex: span.fileIndex, forWriting: true, operation: .writing) { fd in
                try performing(.writing, on: file.relativePath, at: span.fileOffset) { () throws(Errno) in
                    try PositionalIO.writeFully(fd: fd, from: source, at: span.fileOffset)
                }
            }
        }
    }

    private func read(into buffer: UnsafeMutableRawBufferPointer, piece: Int, begin: Int) throws {
        try info.forEachSpan(piece: piece, begin: begin, length: buffer.count) { span in
            let target = UnsafeMutableRawBufferPointer(rebasing: buffer[span.bufferOffset..<(span.bufferOffset + span.length)])
            let file = info.files[span.fileIndex]
            if file.isPadding {
                target.initializeMemory(as: UInt8.self, repeating: 0)
                return
            }
            let count = try descriptors.withDescriptor(fileIndex: span.fileIndex, forWriting: false, operation: .reading) { fd in
                try performing(.reading, on: file.relativePath, at: span.fileOffset) { () throws(Errno) in
                    try PositionalIO.readFully(fd: fd, into: target, at: span.fileOffset)
                }
            }
            if count < span.length {
                throw StorageError.unexpectedEndOfFile(path: file.relativePath, offset: span.fileOffset + Int64(count),
                                                       missingBytes: span.length - count)
            }
        }
    }

    private func verify(_ piece: Int) throws -> Bool {
        let length = info.length(ofPiece: piece)
        return try buffers.withBuffer { scratch in
            let region = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<length])
            do {
                try read(into: region, piece: piece, begin: 0)
            } catch StorageError.fileMissing, StorageError.unexpectedEndOfFile {
                return false
            }
            var hasher = Insecure.SHA1()
            hasher.update(bufferPointer: UnsafeRawBufferPointer(region))
            return hasher.finalize().elementsEqual(info.hash(ofPiece: piece))
        }
    }
}
