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

/// What the resume data claims, after the checks that cost no hashing.
public struct ResumeClaim: Equatable, Sendable {
    /// Claimed pieces nothing contradicts. Still only a claim: `ResumeSpotCheck` hashes a sample.
    public var trusted: Bitfield
    /// Claimed pieces whose files are now missing or too short: not had.
    public var dropped: [Int]
    /// Claimed pieces in files that changed since they were recorded: hash them before they count.
    public var suspect: [Int]
    /// The changed files (paths relative to the output directory), for the log.
    public var changedFiles: [String]

    public init(trusted: Bitfield, dropped: [Int] = [], suspect: [Int] = [], changedFiles: [String] = []) {
        self.trusted = trusted
        self.dropped = dropped
        self.suspect = suspect
        self.changedFiles = changedFiles
    }
}

/// What `ResumeStore.loadResult()` found.
public enum ResumeLoadResult: Equatable, Sendable {
    case resumed(ResumeClaim)
    /// No usable resume data; `reason` says why (the caller should recheck).
    case unavailable(reason: String)
}

/// Which pieces were verified, kept across restarts (even kill -9) without a full recheck.
///
/// Lives in a folder of Burrow's state directory (`<state>/resume/`), never in the output folder: a
/// torrent's files can land anywhere below the output folder, so resume data there could be written,
/// replaced or shadowed by a crafted torrent. Per torrent: a snapshot `<info hash hex>.resume` (bencoded,
/// replaced atomically via temp file + rename) and a journal `<info hash hex>.journal` that
/// `recordVerified` appends one fixed-size record to per piece. Loading returns snapshot ∪ journal.
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
/// Tied to its torrent: snapshot and journal carry the info hash, the snapshot also the piece count,
/// piece length and file lengths; any mismatch makes the data unavailable (recheck).
///
/// Checked on load without hashing everything (the cheap guard). A claim can go stale: the user or
/// another program rewrites a file, a backup is restored, the folder is replaced. The snapshot records
/// each file's `FileIdentity` (size, mtime in ns, inode). A file is *settled* in a snapshot when every
/// piece touching it is had: Burrow never writes to it again, so on load any difference means someone
/// else did, and the file's claimed pieces become `suspect` (hashed before they count — only those
/// pieces, not the torrent). A file still being downloaded legitimately changes after the snapshot:
/// blocks of pieces not yet verified keep landing, and after a kill -9 some landed after the last
/// journal record (pieces in flight). Those writes never touch a claimed piece (a verified piece is
/// never rewritten), but they do change size and mtime, so for such a file only what Burrow itself
/// never does counts as a change: another inode (the file was replaced) or an mtime earlier than
/// recorded (rolled back). That keeps a normal or kill -9 restart free of rechecks; what the identity
/// cannot see (an in-place edit of a file still downloading, a snapshot planted with forged
/// identities) is what `ResumeSpotCheck`'s random sample is for. Identities are taken at `reset` (every
/// start, after the load was checked) and, by `compact`, when a file becomes settled; otherwise the
/// previous record is carried over, so compaction stats only files that just completed.
///
/// All methods block on file I/O: call them on a thread pool (the `…(threadPool:on:)` variants do).
/// Thread-safe; calls are serialised.
public final class ResumeStore: Sendable {
    public let info: TorrentInfo
    /// The resume folder, or why it is unusable (reported by every operation).
    private let rootedDirectory: Result<RootedDirectory, StorageError>
    /// The output directory the torrent's files are in (only inspected, never written).
    private let payload: Result<RootedDirectory, StorageError>
    private let directoryPath: String
    private let writeFile: FileWriter
    private let state: NIOLockedValueBox<State>

    /// Writes all of `bytes` to `fd` from offset 0; a seam so tests can make the disk fail.
    typealias FileWriter = @Sendable (_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(Errno) -> Void

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

    /// `directory` is the resume folder (`StateDirectory.resumeFolder(in:)`, created 0700 on first
    /// write); `payloadRoot` the output directory. Touches nothing until used.
    public convenience init(directory: String, payloadRoot: String, info: TorrentInfo) {
        self.init(directory: directory, payloadRoot: payloadRoot, info: info) { fd, bytes throws(Errno) in
            try PositionalIO.writeFully(fd: fd, from: bytes, at: 0)
        }
    }

    init(directory: String, payloadRoot: String, info: TorrentInfo, writeFile: @escaping FileWriter) {
        self.info = info
        self.directoryPath = directory
        self.rootedDirectory = Result { () throws(StorageError) in try RootedDirectory(root: directory, folderMode: 0o700) }
        self.payload = Result { () throws(StorageError) in try RootedDirectory(root: payloadRoot) }
        self.writeFile = writeFile
        self.state = NIOLockedValueBox(State())
    }

    private var directory: RootedDirectory {
        get throws { try rootedDirectory.get() }
    }

    private var snapshotName: String { info.infoHash.hex + ".resume" }
    private var journalName: String { info.infoHash.hex + ".journal" }
    public var snapshotPath: String { directoryPath + "/" + snapshotName }
    public var journalPath: String { directoryPath + "/" + journalName }

    /// Why the last `load()` returned nil.
    public var lastUnavailableReason: String? { state.withLockedValue { $0.lastUnavailableReason } }

    /// The claimed pieces nothing contradicts (`ResumeClaim.trusted`); nil (see `lastUnavailableReason`)
    /// when there is no resume data or it does not match this torrent. Throws only when the resume files
    /// exist but cannot be read. The engine uses `loadResult()` and `ResumeSpotCheck` instead.
    public func load() throws -> Bitfield? {
        let result = try loadResult()
        switch result {
        case let .resumed(claim):
            state.withLockedValue { $0.lastUnavailableReason = nil }
            return claim.trusted
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
            var claim = ResumeClaim(trusted: stored.recordedPieces)
            claim.dropped = piecesMissingOnDisk(claim.trusted)
            for piece in claim.dropped { claim.trusted[piece] = false }
            if let snapshot = stored.snapshot {
                let changed = filesChanged(since: snapshot)
                claim.changedFiles = changed.map { info.files[$0].relativePath }
                var suspect = Set<Int>()
                for fileIndex in changed {
                    for piece in info.pieces(overlappingFile: fileIndex) where claim.trusted[piece] { suspect.insert(piece) }
                }
                claim.suspect = suspect.sorted()
                for piece in claim.suspect { claim.trusted[piece] = false }
            }
            return .resumed(claim)
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
        let files = try directory.withRoot(create: false) { folder in
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
        let display = directoryPath + "/" + name
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
            let size = ((try? payload.get().fileSize(info.files[fileIndex].path)) ?? nil) ?? -1
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

    /// Files whose identity differs from the snapshot's record in a way Burrow's own writes never cause
    /// (see the type's comment): missing files and files without a record are left to other checks.
    private func filesChanged(since snapshot: ResumeSnapshot) -> [Int] {
        info.files.indices.filter { fileIndex in
            guard let recorded = snapshot.fileIdentities[fileIndex],
                  let current = (try? payload.get().fileIdentity(info.files[fileIndex].path)) ?? nil else { return false }
            if isSettled(fileIndex, in: snapshot.have) { return current != recorded }
            return current.inode != recorded.inode || current.modifiedNanoseconds < recorded.modifiedNanoseconds
        }
    }

    /// Every piece touching the file is had: Burrow will not write to it again.
    private func isSettled(_ fileIndex: Int, in have: Bitfield) -> Bool {
        info.pieces(overlappingFile: fileIndex).allSatisfy { have[$0] }
    }

    /// The identities to record with `have`: a file's previous record is kept unless the file became
    /// settled since (or has none); only those files are stat'ed. Without `previous` every file with a
    /// claimed piece is; a file without one needs no record (nothing it holds is claimed).
    private func identities(for have: Bitfield, previous: ResumeSnapshot?) -> [FileIdentity?] {
        info.files.indices.map { fileIndex in
            let file = info.files[fileIndex]
            guard !file.isPadding, file.length > 0,
                  info.pieces(overlappingFile: fileIndex).contains(where: { have[$0] }) else { return nil }
            if let previous, let prior = previous.fileIdentities[fileIndex],
               isSettled(fileIndex, in: previous.have) || !isSettled(fileIndex, in: have) {
                return prior
            }
            return (try? payload.get().fileIdentity(file.path)) ?? nil
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
            var previous: ResumeSnapshot?
            switch try readStoredState() {
            case let .success(stored):
                highestEpoch = max(highestEpoch, stored.highestEpoch)
                if keepingJournaledPieces {
                    let journaled = stored.recordedPieces.setIndices.filter { stored.snapshot?.have[$0] != true }
                    for piece in journaled { snapshotHave[piece] = true }
                    previous = stored.snapshot
                }
            case .failure:
                break  // unusable old files: replaced below
            }
            let epoch = highestEpoch + 1
            let snapshot = ResumeSnapshot(info: info, epoch: epoch, have: snapshotHave,
                                          fileIdentities: identities(for: snapshotHave, previous: previous)).encoded()
            let header = ResumeJournalFormat.header(infoHash: info.infoHash.bytes, epoch: epoch)
            try directory.withRoot(create: true) { folder in
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
        let journal = try directory.withRoot(create: true) { folder -> OpenJournal in
            if !journalUsable {
                let header = ResumeJournalFormat.header(infoHash: info.infoHash.bytes, epoch: currentEpoch)
                try replaceAtomically(journalName, in: folder, with: header)
            }
            let display = journalPath
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
        let files = try directory.withRoot(create: false) { folder in
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
    /// new contents, never a mix, whenever the process dies. On any failure (a full disk, say) the temp
    /// file is removed again, so nothing half-written is left behind.
    private func replaceAtomically(_ name: String, in folder: Int32, with bytes: [UInt8]) throws {
        let temporary = name + ".tmp"
        let display = directoryPath + "/" + temporary
        let fd = RootedDirectory.retrying {
            openat(folder, temporary, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
        }
        guard fd >= 0 else {
            throw StorageError.system(operation: .creating, path: display, offset: nil, errno: Errno(rawValue: errno))
        }
        do {
            do {
                try bytes.withUnsafeBytes { buffer in
                    try performing(.writing, on: display, at: 0) { () throws(Errno) in try writeFile(fd, buffer) }
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
        } catch {
            unlinkat(folder, temporary, 0)
            throw error
        }
        // Make the rename itself durable.
        try performing(.syncing, on: directoryPath) { () throws(Errno) in
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
