#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import SystemPackage
import TorrentModel

/// Open file descriptors of one torrent's files, opened lazily and kept open until `close()` (or until
/// more than `maximumOpen` are open, then the least recently used idle one is closed — torrents with
/// thousands of files must not exhaust the process's descriptor limit).
///
/// A descriptor is leased for the duration of one system call sequence and is never closed while
/// leased: `close()` and eviction only retire it, and the last lease to end closes it. This keeps a
/// descriptor number from being reused for another file while a thread still writes through it.
///
/// When the process is out of descriptors (EMFILE/ENFILE: peers, other torrents), opening a file sheds
/// this cache's idle descriptors, least recently used first, and retries, then waits up to about a
/// second for descriptors to come free: a full descriptor table slows storage down, it does not fail the
/// torrent. (Peers are refused before that happens: see the Engine's `DescriptorBudget`.)
final class DescriptorCache: Sendable {
    /// Opens a file of the torrent (`RootedDirectory.openFile`; tests put a scarce descriptor table here).
    typealias Opener = @Sendable (_ path: [String], _ access: RootedDirectory.FileAccess) throws -> RootedDirectory.OpenedFile?

    private let opener: Opener
    private let files: [FileEntry]
    private let maximumOpen: Int
    private let state: NIOLockedValueBox<State>
    /// Waits for a descriptor when none of ours is idle: 2 ms doubling to 128 ms, about a second in all.
    static let descriptorWaits = 12

    private struct Entry {
        let fd: Int32
        let isWritable: Bool
        var leases: Int
        var lastUse: UInt64
        /// Written through since the last `sync`; `sync` only flushes files marked here.
        var isDirty: Bool
    }

    private struct State {
        var entries: [Int: Entry] = [:]
        /// Retired descriptors still leased → remaining leases; closed when that reaches zero.
        var retired: [Int32: Int] = [:]
        /// Files written through a descriptor that has since been closed; `sync` reopens them.
        var dirtyClosedFiles: Set<Int> = []
        var useClock: UInt64 = 0
        var isClosed = false
    }

    struct Lease {
        let fileIndex: Int
        let fd: Int32
    }

    init(directory: RootedDirectory, files: [FileEntry], maximumOpen: Int = 256, opener: Opener? = nil) {
        self.opener = opener ?? { path, access in try directory.openFile(path, access: access) }
        self.files = files
        self.maximumOpen = max(1, maximumOpen)
        self.state = NIOLockedValueBox(State())
    }

    /// Runs `body` with a descriptor of file `fileIndex`. Reading never creates: a missing file throws
    /// `StorageError.fileMissing`. Writing creates folders and the (sparse, full-length) file as needed.
    func withDescriptor<T>(fileIndex: Int, forWriting: Bool, operation: StorageOperation,
                           _ body: (Int32) throws -> T) throws -> T {
        let lease = try acquire(fileIndex: fileIndex, forWriting: forWriting, operation: operation)
        var succeeded = false
        defer { release(lease, wrote: forWriting && succeeded) }
        let result = try body(lease.fd)
        succeeded = true
        return result
    }

    /// Flushes every file written since the last sync. Errors name the file that failed.
    func syncDirtyFiles() throws {
        let (leases, closedFiles) = try state.withLockedValue { state -> ([Lease], Set<Int>) in
            guard !state.isClosed else { throw StorageError.closed }
            var leases: [Lease] = []
            // Clear the dirty mark *before* flushing: a write finishing after this point marks the file
            // again, so the next sync covers it; a write finished before it is covered by this flush.
            for (index, entry) in state.entries where entry.isDirty {
                state.entries[index]!.isDirty = false
                state.entries[index]!.leases += 1
                leases.append(Lease(fileIndex: index, fd: entry.fd))
            }
            let closedFiles = state.dirtyClosedFiles
            state.dirtyClosedFiles = []
            return (leases, closedFiles)
        }
        var firstError: Error?
        for lease in leases {
            do {
                try performing(.syncing, on: files[lease.fileIndex].relativePath) { () throws(Errno) in
                    try PositionalIO.syncData(lease.fd)
                }
            } catch {
                firstError = firstError ?? error
                markDirtyAgain(lease.fileIndex)
            }
            release(lease, wrote: false)
        }
        for fileIndex in closedFiles.sorted() {
            do {
                try withDescriptor(fileIndex: fileIndex, forWriting: false, operation: .syncing) { fd in
                    try performing(.syncing, on: files[fileIndex].relativePath) { () throws(Errno) in
                        try PositionalIO.syncData(fd)
                    }
                }
            } catch StorageError.fileMissing {
                continue  // deleted behind our back: nothing left to flush
            } catch {
                firstError = firstError ?? error
                state.withLockedValue { _ = $0.dirtyClosedFiles.insert(fileIndex) }
            }
        }
        if let firstError { throw firstError }
    }

    /// Closes every idle descriptor now and every leased one when its lease ends; later use throws `.closed`.
    func closeAll() {
        let idle = state.withLockedValue { state -> [Int32] in
            state.isClosed = true
            var idle: [Int32] = []
            for entry in state.entries.values {
                if entry.leases == 0 { idle.append(entry.fd) } else { state.retired[entry.fd] = entry.leases }
            }
            state.entries = [:]
            return idle
        }
        idle.forEach(PositionalIO.closeDescriptor)
    }

    // MARK: - Leasing

    func acquire(fileIndex: Int, forWriting: Bool, operation: StorageOperation) throws -> Lease {
        if let lease = try leaseCached(fileIndex: fileIndex, forWriting: forWriting) { return lease }
        // Open outside the lock: it can create folders and files, which may be slow.
        let file = files[fileIndex]
        let access: RootedDirectory.FileAccess = forWriting ? .createForWriting(length: file.length) : .readExisting
        guard let opened = try openShedding(file.path, access: access) else {
            throw StorageError.fileMissing(operation: operation, path: file.relativePath)
        }
        if forWriting && !opened.isWritable {
            PositionalIO.closeDescriptor(opened.fd)
            throw StorageError.system(operation: .opening, path: file.relativePath, offset: nil, errno: .permissionDenied)
        }
        return try insert(opened, fileIndex: fileIndex, forWriting: forWriting)
    }

    /// How many descriptors this cache holds open (cached and retired-but-leased).
    var openDescriptorCount: Int {
        state.withLockedValue { $0.entries.count + $0.retired.count }
    }

    private func openShedding(_ path: [String], access: RootedDirectory.FileAccess) throws -> RootedDirectory.OpenedFile? {
        var waits = 0
        while true {
            do {
                return try opener(path, access)
            } catch let error as StorageError where error.isOutOfDescriptors {
                if closeLeastRecentlyUsedIdle() { continue }
                guard waits < Self.descriptorWaits else { throw error }
                waits += 1
                // A disk thread, never an event loop: a short sleep is the cheapest way to wait here.
                usleep(useconds_t(1000 << min(waits, 7)))
            }
        }
    }

    /// Closes our least recently used idle descriptor; false when none is idle.
    private func closeLeastRecentlyUsedIdle() -> Bool {
        var toClose: [Int32] = []
        state.withLockedValue { state in
            let victim = state.entries.filter { $0.value.leases == 0 }.min { $0.value.lastUse < $1.value.lastUse }
            if let (fileIndex, entry) = victim { retire(entry, fileIndex: fileIndex, state: &state, toClose: &toClose) }
        }
        toClose.forEach(PositionalIO.closeDescriptor)
        return !toClose.isEmpty
    }

    func release(_ lease: Lease, wrote: Bool) {
        let toClose: Int32? = state.withLockedValue { state in
            if var entry = state.entries[lease.fileIndex], entry.fd == lease.fd {
                entry.leases -= 1
                if wrote { entry.isDirty = true }
                state.entries[lease.fileIndex] = entry
                return nil
            }
            if wrote { state.dirtyClosedFiles.insert(lease.fileIndex) }
            guard let remaining = state.retired[lease.fd] else { return nil }
            if remaining > 1 {
                state.retired[lease.fd] = remaining - 1
                return nil
            }
            state.retired[lease.fd] = nil
            return lease.fd
        }
        if let toClose { PositionalIO.closeDescriptor(toClose) }
    }

    private func leaseCached(fileIndex: Int, forWriting: Bool) throws -> Lease? {
        try state.withLockedValue { state in
            guard !state.isClosed else { throw StorageError.closed }
            guard var entry = state.entries[fileIndex], entry.isWritable || !forWriting else { return nil }
            state.useClock += 1
            entry.leases += 1
            entry.lastUse = state.useClock
            state.entries[fileIndex] = entry
            return Lease(fileIndex: fileIndex, fd: entry.fd)
        }
    }

    private func insert(_ opened: RootedDirectory.OpenedFile, fileIndex: Int, forWriting: Bool) throws -> Lease {
        var toClose: [Int32] = []
        defer { toClose.forEach(PositionalIO.closeDescriptor) }
        return try state.withLockedValue { state in
            guard !state.isClosed else {
                toClose.append(opened.fd)
                throw StorageError.closed
            }
            state.useClock += 1
            if var existing = state.entries[fileIndex] {
                if existing.isWritable || !opened.isWritable {
                    // Another thread opened it meanwhile and that descriptor serves us too.
                    toClose.append(opened.fd)
                    existing.leases += 1
                    existing.lastUse = state.useClock
                    state.entries[fileIndex] = existing
                    return Lease(fileIndex: fileIndex, fd: existing.fd)
                }
                // Upgrading a read-only descriptor to a writable one: retire the old one.
                retire(existing, fileIndex: fileIndex, state: &state, toClose: &toClose)
            }
            evictIfFull(state: &state, toClose: &toClose)
            state.entries[fileIndex] = Entry(fd: opened.fd, isWritable: opened.isWritable, leases: 1,
                                             lastUse: state.useClock, isDirty: false)
            return Lease(fileIndex: fileIndex, fd: opened.fd)
        }
    }

    private func evictIfFull(state: inout State, toClose: inout [Int32]) {
        guard state.entries.count >= maximumOpen else { return }
        let victim = state.entries.filter { $0.value.leases == 0 }.min { $0.value.lastUse < $1.value.lastUse }
        if let (fileIndex, entry) = victim {
            retire(entry, fileIndex: fileIndex, state: &state, toClose: &toClose)
        }
    }

    private func retire(_ entry: Entry, fileIndex: Int, state: inout State, toClose: inout [Int32]) {
        state.entries[fileIndex] = nil
        if entry.isDirty { state.dirtyClosedFiles.insert(fileIndex) }
        if entry.leases == 0 { toClose.append(entry.fd) } else { state.retired[entry.fd] = entry.leases }
    }

    private func markDirtyAgain(_ fileIndex: Int) {
        state.withLockedValue { state in
            if state.entries[fileIndex] != nil { state.entries[fileIndex]!.isDirty = true } else {
                state.dirtyClosedFiles.insert(fileIndex)
            }
        }
    }
}
