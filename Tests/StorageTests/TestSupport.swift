import Crypto
import Foundation
import NIOCore
import NIOPosix
import Storage
import TorrentModel

/// A torrent built by hand (no .torrent parser involved) together with its full byte stream.
struct TestTorrent {
    struct FileSpec {
        let path: [String]
        let length: Int
        var isPadding = false
    }

    let info: TorrentInfo
    /// The whole stream; padding files' bytes are zero, as BEP 47 requires for hashing.
    let content: [UInt8]

    init(pieceLength: Int, files: [FileSpec], seed: UInt64 = 1) {
        var entries: [FileEntry] = []
        var offset: Int64 = 0
        for file in files {
            entries.append(FileEntry(path: file.path, length: Int64(file.length), offset: offset, isPadding: file.isPadding))
            offset += Int64(file.length)
        }
        // xorshift bytes: no pattern repeats at file or piece boundaries, so misplaced bytes are caught.
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        var content = [UInt8](repeating: 0, count: Int(offset))
        for i in content.indices {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            content[i] = UInt8(truncatingIfNeeded: state)
        }
        for entry in entries where entry.isPadding {
            for i in Int(entry.offset)..<Int(entry.offset + entry.length) { content[i] = 0 }
        }
        var hashes: [UInt8] = []
        var start = 0
        while start < content.count {
            let end = min(start + pieceLength, content.count)
            hashes += Array(Insecure.SHA1.hash(data: content[start..<end]))
            start = end
        }
        let infoHash = InfoHash(bytes: Array(Insecure.SHA1.hash(data: Array("test torrent \(seed) \(files.map(\.path))".utf8))))!
        self.info = TorrentInfo(name: files.first?.path.first ?? "t", pieceLength: pieceLength, pieceHashes: hashes,
                                files: entries, totalLength: offset, isPrivate: false, rawBytes: [], infoHash: infoHash)
        self.content = content
    }

    func bytes(ofPiece piece: Int) -> [UInt8] {
        let start = piece * info.pieceLength
        return Array(content[start..<(start + info.length(ofPiece: piece))])
    }

    func bytes(ofFile index: Int) -> [UInt8] {
        let file = info.files[index]
        return Array(content[Int(file.offset)..<Int(file.offset + file.length)])
    }
}

/// A temp folder, an event loop and a thread pool, torn down after the test.
struct Fixture: Sendable {
    /// The temp folder; `root` (the output directory) lies inside it so escapes can be detected.
    let base: String
    let root: String
    let threadPool: NIOThreadPool
    let eventLoop: EventLoop

    static func run(_ body: (Fixture) async throws -> Void) async throws {
        let base = FileManager.default.temporaryDirectory
            .appendingPathComponent("burrow-storage-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        let fixture = Fixture(base: base, root: base + "/out", threadPool: pool, eventLoop: group.next())
        var failure: Error?
        do { try await body(fixture) } catch { failure = error }
        try await pool.shutdownGracefully()
        try await group.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: base)
        if let failure { throw failure }
    }

    func fileStorage(_ torrent: TestTorrent, fileWanted: [Bool]? = nil) throws -> FileStorage {
        try FileStorage(info: torrent.info, root: root, threadPool: threadPool, fileWanted: fileWanted)
    }

    /// Writes piece `piece` of `torrent` (or `override` bytes) in blocks of `blockSize`.
    func write(_ torrent: TestTorrent, piece: Int, to storage: any PieceStorage, blockSize: Int = 16384,
               override: [UInt8]? = nil) async throws {
        let bytes = override ?? torrent.bytes(ofPiece: piece)
        var begin = 0
        while begin < bytes.count {
            let end = min(begin + blockSize, bytes.count)
            try await storage.writeBlock(piece: piece, begin: begin, data: ByteBuffer(bytes: bytes[begin..<end]),
                                         on: eventLoop).get()
            begin = end
        }
    }

    func read(from storage: any PieceStorage, piece: Int, begin: Int, length: Int) async throws -> [UInt8] {
        let buffer = try await storage.readBlock(piece: piece, begin: begin, length: length, on: eventLoop).get()
        return Array(buffer.readableBytesView)
    }

    func path(_ relative: String) -> String { root + "/" + relative }

    /// Burrow's state directory for the test, beside (not inside) the output directory.
    var stateDirectory: String { base + "/state" }
    var resumeFolder: String { StateDirectory.resumeFolder(in: stateDirectory) }

    func resumeStore(_ info: TorrentInfo) -> ResumeStore {
        ResumeStore(directory: resumeFolder, payloadRoot: root, info: info)
    }

    func contents(_ relative: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path(relative)).map { Array($0) }
    }

    /// Paths under `base` that this process holds descriptors for (to catch leaks).
    func openDescriptorPaths() -> [String] {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return descriptors.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0) }
            .filter { $0.hasPrefix(base) || $0.hasPrefix((base as NSString).resolvingSymlinksInPath) }
    }

    func exists(_ absolute: String) -> Bool {
        var info = stat()
        return lstat(absolute, &info) == 0
    }
}

/// Runs `body` and returns the `StorageError` it threw (nil if it succeeded or threw something else).
func storageError(_ body: () async throws -> Void) async -> StorageError? {
    do {
        try await body()
        return nil
    } catch {
        return error as? StorageError
    }
}
