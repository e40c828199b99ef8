#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SystemPackage
import TorrentModel

/// What `ResumeStore.loadResult()` found.
public enum ResumeLoadResult: Equatable, Sendable {
    /// Pieces known verified. `droppedPieces` were recorded but their files are now missing or too
    /// short, so they are not in `have`.
    case resumed(have: Bitfield, droppedPieces: [Int])
    /// No usable resume data; `reason` says why (the caller should recheck).
    case unavailable(reason: String)
}

/// Which pieces were verified, kept across restarts (even kill -9) without a full recheck.
///
/// Lives in `<root>/.burrow/`: a snapshot `<info hash hex>.resume` (bencoded, replaced atomically via
/// temp file + rename) and a journal `<info hash hex>.journal` that `recordVerified` appends one
/// fixed-size record to per piece. Loading returns snapshot ∪ journal.
///
/// Invariant: a piece is recorded (journal or snapshot) only after its bytes were written and verified
/// — callers record a piece only once `verifyPiece` returned true for it. Every record is one write(2)
/// to an O_APPEND descriptor, so once `recordVerified` returns, the record is in the kernel and survives
/// the process being killed at any moment. (Surviving power loss additionally needs `sync` on the
/// storage followed by `compact`.)
///
/// Epochs make compaction crash-safe: the snapshot names the journal epoch that continues it, and
/// journal records count only when the journal's header carries that same epoch. `compact` writes the
/// snapshot for a new epoch first, then swaps in an empty journal of that epoch; dying in between
/// leaves an old-epoch journal whose records are all already in the new snapshot, and it is ignored.
///
/// All methods block on file I/O: call them on a thread pool (the `…(threadPool:on:)` variants do).
/// Thread-safe; calls are serialised.
public final class ResumeStore: Sendable {
    public let info: TorrentInfo
    /// The output directory, or why it is unusable (reported by every operation).
    private let rootedDirectory: Result<RootedDirectory, StorageError>
    private let root: String
    private let state: NIOLockedValueBox<State>

    /// The folder under the output directory that holds Burrow's own files.
    public static let folderName = ".burrow"

    private struct OpenJournal {
        let fd: Int32
        let epoch: UInt64
        /// Bytes known to be whole in the file; a failed append is truncated back to this.
        var length: Int64
    }

    private struct State {
        var journal: OpenJournal?
        var lastUnavailableReason: String?
    }

    /// `root` is the output directory. Touches nothing until used.
    public init(root: String, info: TorrentInfo) {
        self.info = info
        self.root = root
        self.rootedDirectory = Result { () throws(StorageError) in try RootedDirectory(root: root) }
        self.state = NIOLockedValueBox(State())
    }

    private var directory: RootedDirectory {
        get throws { try rootedDirectory.get() }
    }

    private var snapshotName: String { info.infoHash.hex + ".resume" }
    private var journalName: String { info.infoHash.hex + ".journal" }
    public var snapshotPath: String { root + "/" + Self.folderName + "/" + snapshotName }
    public var journalPath: String { root + "/" + Self.folderName + "/" + journalName }

    /// Why the last `load()` returned nil.
    public var lastUnavailableReason: String? { state.withLockedValue { $0.lastUnavailableReason } }

    /// Snapshot ∪ journal, minus pieces whose files are missing or too short; nil (see
    /// `lastUnavailableReason`) when there is no resume data or it does not match this torrent.
    /// Throws only when the resume files exist but cannot be read.
    public func load() throws -> Bitfield? {
        let result = try loadResult()
        switch result {
        case let .resumed(have, _):
            state.withLockedValue { $0.lastUnavailableReason = nil }
            return have
        case let .unavailable(reason):
            state.withLockedValue { $0.lastUnavailableReason = reason }
            return nil
        }
    }

    public func loadResult() throws -> ResumeLoadResult {
        try state.withLockedValue { _ in
            let stored: StoredState
            switch try readStoredState() {
            case let .failure(reason): return .unavailable(reason: reason.description)
            case let .success(value): stored = value
            }
            guard stored.snapshot != nil || stored.journalHeader != nil else {
                return .unavailable(reason: "there is no resume data at \(snapshotPath)")
            }
            if stored.snapshot == nil, let header = stored.journalHeader, header.epoch != 0 {
                return .unavailable(reason: "the resume snapshot \(snapshotPath) is missing but its journal continues it")
            }
            var have = stored.recordedPieces
            let dropped = piecesMissingOnDisk(have)
            for piece in dropped { have[piece] = false }
            return .resumed(have: have, droppedPieces: dropped)
        }
    }

    /// Records that `piece` was written and verified. Cheap: one small append.
    public func recordVerified(piece: Int) throws {
        try info.checkPiece(piece)
        try state.withLockedValue { state in
            var journal = try openJournal(&state)
            let record = ResumeJournalFormat.record(piece: piece)
            let fd = journal.fd
            do {
                try record.withUnsafeBytes { bytes in
                    try performing(.writing, on: journalPath, at: journal.length) { () throws(Errno) in
                        try PositionalIO.appendFully(fd: fd, from: bytes)
                    }
                }
            } catch {
                // Cut a partial record off so later records stay aligned.
                try? PositionalIO.truncate(fd, to: journal.length)
                throw error
            }
            journal.length += Int64(ResumeJournalFormat.recordSize)
            state.journal = journal
        }
    }

    /// Writes a snapshot of `have` ∪ the pieces journaled so far (a recorded piece stays recorded) and
    /// empties the journal. Call `sync` on the storage first if the snapshot should survive power loss.
    public func compact(have: Bitfield) throws {
        try rewrite(have: have, keepingJournaledPieces: true)
    }

    /// Like `compact`, but the snapshot holds exactly `have`: use after a recheck to forget pieces.
    public func reset(have: Bitfield) throws {
        try rewrite(have: have, keepingJournaledPieces: false)
    }

    /// Closes the journal descriptor; a later `recordVerified` reopens it.
    public func close() {
        state.withLockedValue { state in
            if let journal = state.journal { PositionalIO.closeDescriptor(journal.fd) }
            state.journal = nil
        }
    }

    // MARK: - Reading

    private struct StoredState {
        var snapshot: ResumeSnapshot?
        var journalHeader: ResumeJournalFormat.Header?
        /// Snapshot pieces plus journal records of the snapshot's epoch.
        var recordedPieces: Bitfield
        /// The highest epoch seen anywhere; a new epoch must exceed it.
        var highestEpoch: UInt64
    }

    /// Everything on disk, or the reason it cannot be used.
    private func readStoredState() throws -> Result<StoredState, ReasonError> {
        let files = try directory.withDirectory([Self.folderName], create: false) { folder in
            (try readWholeFile(snapshotName, in: folder), try readWholeFile(journalName, in: folder))
        }
        let (snapshotBytes, journalBytes) = files ?? (nil, nil)
        var stored = StoredState(snapshot: nil, journalHeader: nil, recordedPieces: Bitfield(count: info.pieceCount),
                                 highestEpoch: 0)
        if let snapshotBytes {
            let snapshot: ResumeSnapshot
            do { snapshot = try ResumeSnapshot.decode(snapshotBytes) } catch {
                return .failure(ReasonError("the resume snapshot \(snapshotPath) is corrupt: \(error)"))
            }
            if let mismatch = snapshot.mismatch(with: info) {
                return .failure(ReasonError("the resume snapshot \(snapshotPath) does not match this torrent: \(mismatch)"))
            }
            stored.snapshot = snapshot
            stored.recordedPieces = snapshot.have
            stored.highestEpoch = snapshot.epoch
        }
        if let journalBytes {
            guard let header = ResumeJournalFormat.parseHeader(journalBytes) else {
                return .failure(ReasonError("the resume journal \(journalPath) has a corrupt header"))
            }
            guard header.infoHash == info.infoHash.bytes else {
                return .failure(ReasonError("the resume journal \(journalPath) belongs to info hash \(HexCoding.encode(header.infoHash))"))
            }
            stored.journalHeader = header
            stored.highestEpoch = max(stored.highestEpoch, header.epoch)
            // A journal of another epoch is a leftover of an interrupted compaction: already folded in.
            if header.epoch == (stored.snapshot?.epoch ?? 0) {
                for piece in ResumeJournalFormat.pieces(in: journalBytes, pieceCount: info.pieceCount) {
                    stored.recordedPieces[piece] = true
                }
            }
        }
        return .success(stored)
    }

    private struct ReasonError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    private func readWholeFile(_ name: String, in folder: Int32) throws -> [UInt8]? {
        let display = Self.folderName + "/" + name
        let fd = RootedDirectory.retrying { openat(folder, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK) }
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw StorageError.system(operation: .opening, path: display, offset: nil, errno: Errno(rawValue: errno))
        }
        defer { PositionalIO.closeDescriptor(fd) }
        let size = try performing(.inspecting, on: display) { () throws(Errno) in try PositionalIO.size(fd) }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        let count = try bytes.withUnsafeMutableBytes { buffer in
            try performing(.reading, on: display, at: 0) { () throws(Errno) in try PositionalIO.readFully(fd: fd, into: buffer, at: 0) }
        }
        return Array(bytes[0..<count])
    }

    /// Had pieces that cannot be on disk because a file they need is missing or shorter than needed.
    private func piecesMissingOnDisk(_ have: Bitfield) -> [Int] {
        var sizes: [Int: Int64] = [:]
        func size(of fileIndex: Int) -> Int64 {
            if let known = sizes[fileIndex] { return known }
            // Anything unreadable counts as missing: dropping a piece only costs a re-download.
            let size = ((try? directory.fileSize(info.files[fileIndex].path)) ?? nil) ?? -1
            sizes[fileIndex] = size
            return size
        }
        return have.setIndices.filter { piece in
            info.files(overlappingPiece: piece).contains { fileIndex in
                !info.files[fileIndex].isPadding
                    && size(of: fileIndex) < info.requiredFileLength(fileIndex: fileIndex, forPiece: piece)
            }
        }
    }

    // MARK: - Writing

    private func rewrite(have: Bitfield, keepingJournaledPieces: Bool) throws {
        guard have.count == info.pieceCount else {
            throw StorageError.invalidArgument("the bitfield has \(have.count) pieces but the torrent has \(info.pieceCount)")
        }
        try state.withLockedValue { state in
            var snapshotHave = have
            var highestEpoch: UInt64 = state.journal?.epoch ?? 0
            switch try readStoredState() {
            case let .success(stored):
                highestEpoch = max(highestEpoch, stored.highestEpoch)
                if keepingJournaledPieces {
                    let journaled = stored.recordedPieces.setIndices.filter { stored.snapshot?.have[$0] != true }
                    for piece in journaled { snapshotHave[piece] = true }
                }
            case .failure:
                break  // unusable old files: replaced below
            }
            let epoch = highestEpoch + 1
            let snapshot = ResumeSnapshot(info: info, epoch: epoch, have: snapshotHave).encoded()
            let header = ResumeJournalFormat.header(infoHash: info.infoHash.bytes, epoch: epoch)
            try directory.withDirectory([Self.folderName], create: true) { folder in
                try replaceAtomically(snapshotName, in: folder, with: snapshot)
                try replaceAtomically(journalName, in: folder, with: header)
            }
            if let old = state.journal { PositionalIO.closeDescriptor(old.fd) }
            state.journal = nil
        }
    }

    /// Opens the journal for appending, first starting a fresh one if the file on disk does not
    /// continue the current snapshot (missing, corrupt, another epoch).
    private func openJournal(_ state: inout State) throws -> OpenJournal {
        if let journal = state.journal { return journal }
        let stored = try readStoredState()
        let currentEpoch: UInt64
        let journalUsable: Bool
        switch stored {
        case let .success(value):
            currentEpoch = value.snapshot?.epoch ?? 0
            journalUsable = value.journalHeader?.epoch == currentEpoch
        case .failure:
            // The snapshot is unusable: load reports that until the next compact/reset. Journal anyway
            // into a fresh epoch so records made meanwhile are not mixed with stale ones.
            currentEpoch = (try? highestEpochOnDisk()).map { $0 + 1 } ?? 1
            journalUsable = false
        }
        let journal = try directory.withDirectory([Self.folderName], create: true) { folder -> OpenJournal in
            if !journalUsable {
                let header = ResumeJournalFormat.header(infoHash: info.infoHash.bytes, epoch: currentEpoch)
                try replaceAtomically(journalName, in: folder, with: header)
            }
            let display = Self.folderName + "/" + journalName
            let fd = RootedDirectory.retrying { openat(folder, journalName, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC) }
            guard fd >= 0 else {
                throw StorageError.system(operation: .opening, path: display, offset: nil, errno: Errno(rawValue: errno))
            }
            do {
                // A record torn by a kill must not shift the records appended after it.
                let size = try performing(.inspecting, on: display) { () throws(Errno) in try PositionalIO.size(fd) }
                let aligned = ResumeJournalFormat.alignedLength(size)
                if aligned != size {
                    try performing(.truncating, on: display, at: aligned) { () throws(Errno) in try PositionalIO.truncate(fd, to: aligned) }
                }
                return OpenJournal(fd: fd, epoch: currentEpoch, length: aligned)
            } catch {
                PositionalIO.closeDescriptor(fd)
                throw error
            }
        }
        guard let journal else { throw StorageError.fileMissing(operation: .opening, path: journalPath) }
        state.journal = journal
        return journal
    }

    /// The highest epoch in a snapshot or journal header on disk, even if the rest is unusable.
    private func highestEpochOnDisk() throws -> UInt64 {
        let files = try directory.withDirectory([Self.folderName], create: false) { folder in
            (try readWholeFile(snapshotName, in: folder), try readWholeFile(journalName, in: folder))
        }
        var highest: UInt64 = 0
        if let snapshotBytes = files?.0, let snapshot = try? ResumeSnapshot.decode(snapshotBytes) {
            highest = max(highest, snapshot.epoch)
        }
        if let journalBytes = files?.1, let header = ResumeJournalFormat.parseHeader(journalBytes) {
            highest = max(highest, header.epoch)
        }
        return highest
    }

    /// Write to a temp file, flush it, rename over `name`, flush the folder: readers see the old or the
    /// new contents, never a mix, whenever the process dies.
    private func replaceAtomically(_ name: String, in folder: Int32, with bytes: [UInt8]) throws {
        let temporary = name + ".tmp"
        let display = Self.folderName + "/" + temporary
        let fd = RootedDirectory.retrying {
            openat(folder, temporary, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
        }
        guard fd >= 0 else {
            throw StorageError.system(operation: .creating, path: display, offset: nil, errno: Errno(rawValue: errno))
        }
        do {
            try bytes.withUnsafeBytes { buffer in
                try performing(.writing, on: display, at: 0) { () throws(Errno) in try PositionalIO.writeFully(fd: fd, from: buffer, at: 0) }
            }
            try performing(.syncing, on: display) { () throws(Errno) in try PositionalIO.syncData(fd) }
        } catch {
            PositionalIO.closeDescriptor(fd)
            throw error
        }
        PositionalIO.closeDescriptor(fd)
        guard renameat(folder, temporary, folder, name) == 0 else {
            throw StorageError.system(operation: .renaming, path: display, offset: nil, errno: Errno(rawValue: errno))
        }
        // Make the rename itself durable.
        try performing(.syncing, on: Self.folderName) { () throws(Errno) in
            while fsync(folder) != 0 { if errno != EINTR { throw Errno(rawValue: errno) } }
        }
    }
}

extension ResumeStore {
    /// `load()` on `threadPool` (by default NIO's shared one), completing on `eventLoop`.
    public func load(threadPool: NIOThreadPool = .singleton, on eventLoop: EventLoop) -> EventLoopFuture<Bitfield?> {
        threadPool.runIfActive(eventLoop: eventLoop) { [self] in try load() }
    }

    /// `recordVerified(piece:)` on `threadPool` (by default NIO's shared one), completing on `eventLoop`.
    public func recordVerified(piece: Int, threadPool: NIOThreadPool = .singleton, on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        threadPool.runIfActive(eventLoop: eventLoop) { [self] in try recordVerified(piece: piece) }
    }

    /// `compact(have:)` on `threadPool` (by default NIO's shared one), completing on `eventLoop`.
    public func compact(have: Bitfield, threadPool: NIOThreadPool = .singleton, on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        threadPool.runIfActive(eventLoop: eventLoop) { [self] in try compact(have: have) }
    }

    /// `reset(have:)` on `threadPool` (by default NIO's shared one), completing on `eventLoop`.
    public func reset(have: Bitfield, threadPool: NIOThreadPool = .singleton, on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        threadPool.runIfActive(eventLoop: eventLoop) { [self] in try reset(have: have) }
    }
}
