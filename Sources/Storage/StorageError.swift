import SystemPackage

/// What the storage layer was doing when something failed; the verb leads every error message.
public enum StorageOperation: String, Sendable {
    case writing, reading, creating, opening, truncating, syncing, inspecting, renaming
    case creatingDirectory = "creating directory"
}

/// Every storage failure names the file (relative to the output directory) and what was being done,
/// e.g. "writing Movie/a.mkv at offset 1048576: No space left on device".
public enum StorageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call failed.
    case system(operation: StorageOperation, path: String, offset: Int64?, errno: Errno)
    /// The file holding the requested bytes has not been created yet (nothing was written to it).
    case fileMissing(operation: StorageOperation, path: String)
    /// The file exists but ends before the requested bytes (truncated or never fully allocated).
    case unexpectedEndOfFile(path: String, offset: Int64, missingBytes: Int)
    /// A path component would escape the output directory or is not a plain name.
    case unsafePath(path: String, reason: String)
    /// A symbolic link sits where a file or directory of the torrent belongs; it is never followed.
    case symlinkRefused(path: String)
    /// Something other than a regular file (or directory, for folders) is in the way.
    case notARegularFile(path: String)
    case notADirectory(path: String)
    /// The request does not fit the torrent's geometry.
    case outOfBounds(piece: Int, begin: Int, length: Int, reason: String)
    /// Arguments that contradict the torrent (e.g. a `fileWanted` of the wrong length).
    case invalidArgument(String)
    /// A test double was told to fail this operation.
    case injectedFault(operation: StorageOperation, piece: Int, errno: Errno)
    /// `close()` was called; the storage no longer touches the disk.
    case closed

    public var description: String {
        switch self {
        case let .system(operation, path, offset, errno):
            let at = offset.map { " at offset \($0)" } ?? ""
            return "\(operation.rawValue) \(path)\(at): \(errno.description)"
        case let .fileMissing(operation, path):
            return "\(operation.rawValue) \(path): the file does not exist yet"
        case let .unexpectedEndOfFile(path, offset, missingBytes):
            return "reading \(path) at offset \(offset): the file ends \(missingBytes) bytes too early"
        case let .unsafePath(path, reason):
            return "refusing path \(path): \(reason)"
        case let .symlinkRefused(path):
            return "refusing to follow the symbolic link at \(path) (it could lead outside the output directory)"
        case let .notARegularFile(path):
            return "\(path) exists but is not a regular file"
        case let .notADirectory(path):
            return "\(path) exists but is not a directory"
        case let .outOfBounds(piece, begin, length, reason):
            return "block (piece \(piece), begin \(begin), length \(length)) is out of bounds: \(reason)"
        case let .invalidArgument(message):
            return "invalid storage argument: \(message)"
        case let .injectedFault(operation, piece, errno):
            return "\(operation.rawValue) piece \(piece): \(errno.description) (injected fault)"
        case .closed:
            return "the storage was closed"
        }
    }
}

extension StorageError {
    /// The process (EMFILE) or the system (ENFILE) has no descriptor left: worth retrying once some are freed.
    var isOutOfDescriptors: Bool {
        guard case let .system(_, _, _, code) = self else { return false }
        return code == .tooManyOpenFiles || code == .tooManyOpenFilesInSystem
    }
}

/// Runs a system-call sequence and, if it fails, names what was being done to which file.
func performing<T>(_ operation: StorageOperation, on path: String, at offset: Int64? = nil,
                   _ body: () throws(Errno) -> T) throws(StorageError) -> T {
    switch Result(catching: body) {
    case let .success(value): return value
    case let .failure(code): throw .system(operation: operation, path: path, offset: offset, errno: code)
    }
}
