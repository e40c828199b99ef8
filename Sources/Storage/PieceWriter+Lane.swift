import Crypto
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TorrentModel

/// One lane of a `PieceWriter`: a serial queue of jobs for the pieces routed to it, run on the thread
/// pool. `hashes`, `runs` and `scratch` are touched only by the job that is running.
final class PieceWriterLane: @unchecked Sendable {
    typealias Report = PieceWriter.Report
    typealias Verdict = PieceWriter.Verdict

    enum Job {
        case write(piece: Int, begin: Int, data: ByteBuffer)
        case finish(piece: Int)
        case barrier(EventLoopPromise<Void>)
    }

    /// How far one piece's hash has come.
    private struct PieceHash {
        var hasher = Insecure.SHA1()
        /// Invariant: bytes [0, hashed) of the piece are in `hasher`, in order.
        var hashed = 0
        /// Blocks written beyond `hashed` (begin → length), waiting for the bytes before them.
        var ahead: [Int: Int] = [:]
        /// A block landed inside the hashed prefix (it can only mean a rewrite): hash the piece anew from disk.
        var rehashFromDisk = false
    }

    let info: TorrentInfo
    private let storage: any PieceStorage
    private let threadPool: NIOThreadPool
    private let eventLoop: any EventLoop
    private let deliver: @Sendable (Report) -> Void

    private let lock = NIOLock()
    /// Guarded by `lock`. Invariant: `running` is true exactly while a drain task is queued or running.
    private var queue: [Job] = []
    private var running = false

    private var hashes: [Int: PieceHash] = [:]

    /// Blocks of one piece waiting to be written together. Invariant: `parts` are contiguous from `begin`
    /// and add up to `length`; `heldBytes` is the sum of all runs' lengths and stays ≤ `heldLimit`.
    private struct Run {
        var begin: Int
        var length = 0
        var parts: [ByteBuffer] = []
    }
    private var runs: [Int: Run] = [:]
    private var heldBytes = 0
    static let runLimit = 256 * 1024
    static let reportEvery = 128 * 1024
    /// Bytes that may wait in runs, over all lanes of a writer.
    static let heldLimitInAll = 1 << 20
    private let heldLimit: Int
    /// Set by the first failed write or read-back: the torrent is failing, so later jobs are skipped
    /// (their bytes still count as done) rather than producing verdicts over missing data.
    private var broken = false
    private var scratch: UnsafeMutableRawBufferPointer
    private static let scratchSize = 64 * 1024

    init(storage: any PieceStorage, info: TorrentInfo, threadPool: NIOThreadPool, eventLoop: any EventLoop,
         heldLimit: Int, deliver: @escaping @Sendable (Report) -> Void) {
        self.heldLimit = heldLimit
        self.storage = storage
        self.info = info
        self.threadPool = threadPool
        self.eventLoop = eventLoop
        self.deliver = deliver
        self.scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.scratchSize, alignment: 64)
    }

    deinit {
        scratch.deallocate()
    }

    /// Succeeds (on `eventLoop`) once every job enqueued before it is done.
    func flushed() -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        enqueue(.barrier(promise))
        return promise.futureResult
    }

    func enqueue(_ job: Job) {
        let start: Bool = lock.withLock {
            queue.append(job)
            defer { running = true }
            return !running
        }
        if start { threadPool.submit { [self] state in drain(cancelled: state == .cancelled) } }
    }

    private func drain(cancelled: Bool) {
        var jobs: [Job] = []
        while true {
            lock.withLock {
                swap(&jobs, &queue)
                if jobs.isEmpty { running = false }
            }
            if jobs.isEmpty { return }
            var report = Report()
            // Barriers resolve after their batch's report is delivered, so what they wait for is seen.
            var barriers: [EventLoopPromise<Void>] = []
            for job in jobs {
                switch job {
                case .write(let piece, let begin, let data):
                    report.bytesDone += data.readableBytes
                    guard !cancelled, !broken else { continue }
                    do { try write(piece: piece, begin: begin, data: data) } catch { fail(piece, error, &report) }
                case .finish(let piece):
                    guard !cancelled, !broken else { continue }
                    do { report.verdicts.append((piece, try finish(piece: piece))) } catch { fail(piece, error, &report) }
                case .barrier(let promise):
                    if !cancelled && !broken {
                        // `fail` takes the piece from the run that failed.
                        do { try flushAllRuns() } catch { fail(-1, error, &report) }
                    }
                    barriers.append(promise)
                }
                // Report relief as it happens, not once per batch: a session waiting for the disk
                // resumes reading as soon as the backlog is low again.
                if report.bytesDone >= Self.reportEvery {
                    let interim = report
                    report = Report()
                    eventLoop.execute { [deliver] in deliver(interim) }
                }
            }
            // Drop the blocks (and the receive buffers behind them) before the next batch.
            jobs.removeAll(keepingCapacity: true)
            let finished = report
            eventLoop.execute { [deliver, barriers] in
                deliver(finished)
                for barrier in barriers { barrier.succeed() }
            }
        }
    }

    // MARK: - On the disk thread

    /// A failed write of a run, naming the run's piece (the job that flushed it may belong to another).
    private struct RunWriteError: Error {
        let piece: Int
        let error: any Error
    }

    private func fail(_ piece: Int, _ error: any Error, _ report: inout Report) {
        broken = true
        if let failure = error as? RunWriteError {
            report.error = (failure.piece, "\(failure.error)")
        } else {
            report.error = (piece, "\(error)")
        }
    }

    private func write(piece: Int, begin: Int, data: ByteBuffer) throws {
        var hash = hashes.removeValue(forKey: piece) ?? PieceHash()
        defer { hashes[piece] = hash }
        if begin == hash.hashed {
            data.withUnsafeReadableBytes { hash.hasher.update(bufferPointer: $0) }
            hash.hashed += data.readableBytes
        } else if begin > hash.hashed {
            hash.ahead[begin] = data.readableBytes
        } else {
            hash.rehashFromDisk = true
        }
        try hold(piece: piece, begin: begin, data: data)
        try catchUp(&hash, piece: piece)
    }

    /// Adds the block to its piece's run, writing the run out when the block does not continue it, when
    /// it is full or reaches the piece's end, or when too much is held overall.
    private func hold(piece: Int, begin: Int, data: ByteBuffer) throws {
        if let run = runs[piece], run.begin + run.length != begin { try flushRun(of: piece) }
        var run = runs.removeValue(forKey: piece) ?? Run(begin: begin)
        run.parts.append(data)
        run.length += data.readableBytes
        heldBytes += data.readableBytes
        runs[piece] = run
        if run.length >= Self.runLimit || run.begin + run.length == info.length(ofPiece: piece) {
            try flushRun(of: piece)
        }
        if heldBytes > heldLimit { try flushAllRuns() }
    }

    private func flushRun(of piece: Int) throws {
        guard let run = runs.removeValue(forKey: piece) else { return }
        heldBytes -= run.length
        do {
            try storage.writeNow(run.parts, piece: piece, begin: run.begin)
        } catch {
            throw RunWriteError(piece: piece, error: error)
        }
    }

    private func flushAllRuns() throws {
        for piece in Array(runs.keys) { try flushRun(of: piece) }
    }

    /// Hashes, from disk, the blocks ahead of the cursor that now continue it.
    private func catchUp(_ hash: inout PieceHash, piece: Int) throws {
        while let length = hash.ahead.removeValue(forKey: hash.hashed) {
            try hashFromDisk(&hash, piece: piece, upTo: hash.hashed + length)
        }
    }

    private func finish(piece: Int) throws -> Verdict {
        try flushRun(of: piece)
        var hash = hashes.removeValue(forKey: piece) ?? PieceHash()
        if hash.rehashFromDisk { hash = PieceHash() }
        try catchUp(&hash, piece: piece)
        // Whatever was not seen in order (normally nothing) is read back.
        try hashFromDisk(&hash, piece: piece, upTo: info.length(ofPiece: piece))
        return hash.hasher.finalize().elementsEqual(info.hash(ofPiece: piece)) ? .verified : .failedHash
    }

    private func hashFromDisk(_ hash: inout PieceHash, piece: Int, upTo end: Int) throws {
        guard hash.hashed < end else { return }
        try flushRun(of: piece)
        while hash.hashed < end {
            let chunk = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<min(Self.scratchSize, end - hash.hashed)])
            try storage.readNow(into: chunk, piece: piece, begin: hash.hashed)
            hash.hasher.update(bufferPointer: UnsafeRawBufferPointer(chunk))
            hash.hashed += chunk.count
        }
    }
}
