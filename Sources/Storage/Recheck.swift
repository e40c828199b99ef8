import NIOCore
import TorrentModel

/// Verifies every piece of a torrent against its storage: used by `--recheck` and whenever resume
/// data is missing or does not match. Pieces whose bytes are not on disk (missing or short files)
/// come out as not had; a real I/O error fails the whole recheck with that error.
public enum Recheck {
    /// Rechecks with as many pieces in flight as `storage`'s thread pool has threads.
    public static func recheck(storage: FileStorage, info: TorrentInfo, on eventLoop: EventLoop,
                               progress: @escaping @Sendable (Int) -> Void) -> EventLoopFuture<Bitfield> {
        recheck(storage: storage, info: info, parallelism: storage.parallelism, on: eventLoop, progress: progress)
    }

    /// `progress` is called on `eventLoop` with the number of pieces checked so far, after each piece.
    public static func recheck(storage: any PieceStorage, info: TorrentInfo, parallelism: Int, on eventLoop: EventLoop,
                               progress: @escaping @Sendable (Int) -> Void) -> EventLoopFuture<Bitfield> {
        verify(pieces: Array(0..<info.pieceCount), storage: storage, info: info, parallelism: parallelism,
               on: eventLoop, progress: progress)
    }

    /// Hashes only `pieces`: the result has a bit set for each of them that is valid on disk.
    public static func verify(pieces: [Int], storage: any PieceStorage, info: TorrentInfo, parallelism: Int,
                              on eventLoop: EventLoop,
                              progress: @escaping @Sendable (Int) -> Void = { _ in }) -> EventLoopFuture<Bitfield> {
        let promise = eventLoop.makePromise(of: Bitfield.self)
        eventLoop.execute {
            let run = RecheckRun(storage: storage, pieces: pieces, pieceCount: info.pieceCount, eventLoop: eventLoop,
                                 promise: promise, progress: progress)
            run.start(parallelism: max(1, parallelism))
        }
        return promise.futureResult
    }
}

/// One recheck's state, confined to its event loop (`NIOLoopBound` enforces that).
private final class RecheckRun {
    private let storage: any PieceStorage
    /// The pieces to check, in order.
    private let pieces: [Int]
    private let eventLoop: EventLoop
    private let promise: EventLoopPromise<Bitfield>
    private let progress: @Sendable (Int) -> Void
    private var have: Bitfield
    /// Index in `pieces` of the next piece to hand out; those before it are checked or in flight.
    private var nextPiece = 0
    private var checked = 0
    private var failed = false

    init(storage: any PieceStorage, pieces: [Int], pieceCount: Int, eventLoop: EventLoop,
         promise: EventLoopPromise<Bitfield>, progress: @escaping @Sendable (Int) -> Void) {
        self.storage = storage
        self.pieces = pieces
        self.eventLoop = eventLoop
        self.promise = promise
        self.progress = progress
        self.have = Bitfield(count: pieceCount)
    }

    func start(parallelism: Int) {
        guard !pieces.isEmpty else { return promise.succeed(have) }
        for _ in 0..<min(parallelism, pieces.count) { launchNext() }
    }

    private func launchNext() {
        guard !failed, nextPiece < pieces.count else { return }
        let piece = pieces[nextPiece]
        nextPiece += 1
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        storage.verifyPiece(piece, on: eventLoop).hop(to: eventLoop).whenComplete { result in
            bound.value.finished(piece, result)
        }
    }

    private func finished(_ piece: Int, _ result: Result<Bool, Error>) {
        guard !failed else { return }
        switch result {
        case let .success(valid):
            if valid { have[piece] = true }
            checked += 1
            progress(checked)
            if checked == pieces.count { promise.succeed(have) } else { launchNext() }
        case let .failure(error):
            failed = true
            promise.fail(error)
        }
    }
}
