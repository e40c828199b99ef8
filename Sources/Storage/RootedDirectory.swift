#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// The output directory: the only place storage creates, opens or inspects anything.
///
/// Safety invariant: every path is `root` + validated components, walked one component at a time with
/// `openat(…, O_NOFOLLOW)` from a descriptor of `root`. A symbolic link anywhere below `root` (a folder
/// or the file itself) makes the operation fail instead of being followed, and `..`/`.`/empty
/// components or ones containing "/" or NUL are refused before any system call, so nothing is ever
/// created, written or read outside `root`. (Links on the way *to* `root` are the user's own choice and
/// are followed.) Walking by descriptor also closes the race between checking a folder and using it.
struct RootedDirectory: Sendable {
    let root: String
    /// Permissions of folders this creates (the root too, and any missing folder above it).
    let folderMode: mode_t

    init(root: String, folderMode: mode_t = 0o755) throws(StorageError) {
        guard !root.isEmpty, !root.utf8.contains(0) else {
            throw StorageError.invalidArgument("the directory path \"\(root)\" is empty or contains NUL")
        }
        self.root = root
        self.folderMode = folderMode
    }

    /// Refuses anything but plain names; `display` is how the path appears in errors.
    static func validate(_ components: [String]) throws {
        let display = components.joined(separator: "/")
        guard !components.isEmpty else { throw StorageError.unsafePath(path: display, reason: "the path is empty") }
        for component in components {
            let reason: String?
            if component.isEmpty {
                reason = "it has an empty component"
            } else if component == "." || component == ".." {
                reason = "component \"\(component)\" is not allowed"
            } else if component.utf8.contains(UInt8(ascii: "/")) {
                reason = "component \"\(component)\" contains \"/\""
            } else if component.utf8.contains(0) {
                reason = "a component contains a NUL byte"
            } else {
                reason = nil
            }
            if let reason { throw StorageError.unsafePath(path: display, reason: reason) }
        }
    }

    /// `mkdir -p` for the output directory itself.
    func createRoot() throws {
        var prefix: String? = root.hasPrefix("/") ? "" : nil
        for component in root.split(separator: "/", omittingEmptySubsequences: true) {
            let path = prefix.map { $0 + "/" + component } ?? String(component)
            prefix = path
            if mkdir(path, folderMode) != 0, errno != EEXIST {
                throw StorageError.system(operation: .creatingDirectory, path: path, offset: nil,
                                          errno: Errno(rawValue: errno))
            }
        }
        let fd = try openRoot()
        PositionalIO.closeDescriptor(fd)
    }

    enum FileAccess {
        /// Open an existing file, read-write if permitted (so writes can share it), else read-only.
        case readExisting
        /// Create folders and the file as needed, and extend it (sparsely) to `length` if shorter.
        case createForWriting(length: Int64)
    }

    struct OpenedFile {
        let fd: Int32
        let isWritable: Bool
    }

    /// Opens file `components`; nil when it (or a folder above it) does not exist and `access` does not create.
    func openFile(_ components: [String], access: FileAccess) throws -> OpenedFile? {
        try Self.validate(components)
        let display = components.joined(separator: "/")
        let creating: Bool
        if case .createForWriting = access { creating = true } else { creating = false }
        guard let directory = try openDirectory(components.dropLast(), create: creating) else { return nil }
        defer { PositionalIO.closeDescriptor(directory) }
        let name = components[components.count - 1]
        // O_NONBLOCK: opening a FIFO planted in the tree must not hang; it is refused just below.
        let common = O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK
        var fd: Int32
        var writable = true
        if creating {
            fd = Self.retrying { openat(directory, name, O_RDWR | O_CREAT | common, 0o644) }
        } else {
            fd = Self.retrying { openat(directory, name, O_RDWR | common) }
            if fd < 0, errno == EACCES || errno == EROFS || errno == EPERM {
                writable = false
                fd = Self.retrying { openat(directory, name, O_RDONLY | common) }
            }
        }
        if fd < 0 {
            let code = errno
            if code == ENOENT, !creating { return nil }
            throw Self.classifyFailure(code, directory: directory, name: name, display: display,
                                       operation: creating ? .creating : .opening, expectDirectory: false)
        }
        do {
            var info = stat()
            guard fstat(fd, &info) == 0 else {
                throw StorageError.system(operation: .inspecting, path: display, offset: nil, errno: Errno(rawValue: errno))
            }
            guard info.st_mode & S_IFMT == S_IFREG else { throw StorageError.notARegularFile(path: display) }
            if case let .createForWriting(length) = access, Int64(info.st_size) < length {
                // Sparse: only the size changes, no zeros are written.
                do { try PositionalIO.truncate(fd, to: length) } catch {
                    throw StorageError.system(operation: .truncating, path: display, offset: length, errno: error)
                }
            }
        } catch {
            PositionalIO.closeDescriptor(fd)
            throw error
        }
        return OpenedFile(fd: fd, isWritable: writable)
    }

    /// Size of a regular file, or nil when it is missing or anything else (a link, a folder) is there.
    func fileSize(_ components: [String]) throws -> Int64? {
        try Self.validate(components)
        guard let directory = try openDirectory(components.dropLast(), create: false) else { return nil }
        defer { PositionalIO.closeDescriptor(directory) }
        var info = stat()
        guard fstatat(directory, components[components.count - 1], &info, AT_SYMLINK_NOFOLLOW) == 0 else {
            if errno == ENOENT { return nil }
            throw StorageError.system(operation: .inspecting, path: components.joined(separator: "/"),
                                      offset: nil, errno: Errno(rawValue: errno))
        }
        return info.st_mode & S_IFMT == S_IFREG ? Int64(info.st_size) : nil
    }

    /// What identifies a regular file's current contents cheaply (see `FileIdentity`), or nil when it is
    /// missing or anything else (a link, a folder) is there.
    func fileIdentity(_ components: [String]) throws -> FileIdentity? {
        try Self.validate(components)
        guard let directory = try openDirectory(components.dropLast(), create: false) else { return nil }
        defer { PositionalIO.closeDescriptor(directory) }
        var info = stat()
        guard fstatat(directory, components[components.count - 1], &info, AT_SYMLINK_NOFOLLOW) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw StorageError.system(operation: .inspecting, path: components.joined(separator: "/"),
                                      offset: nil, errno: Errno(rawValue: errno))
        }
        return info.st_mode & S_IFMT == S_IFREG ? FileIdentity(info) : nil
    }

    /// Runs `body` with a descriptor of the root folder itself (created if `create`); nil if it is missing.
    func withRoot<T>(create: Bool, _ body: (Int32) throws -> T) throws -> T? {
        guard let directory = try openDirectory([], create: create) else { return nil }
        defer { PositionalIO.closeDescriptor(directory) }
        return try body(directory)
    }

    /// Runs `body` with a descriptor of folder `components` (created if `create`); nil if it is missing.
    func withDirectory<T>(_ components: [String], create: Bool, _ body: (Int32) throws -> T) throws -> T? {
        try Self.validate(components)
        guard let directory = try openDirectory(components[...], create: create) else { return nil }
        defer { PositionalIO.closeDescriptor(directory) }
        return try body(directory)
    }

    // MARK: - Walking

    private func openRoot() throws -> Int32 {
        let fd = Self.retrying { open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard fd >= 0 else {
            let code = errno
            if code == ENOTDIR { throw StorageError.notADirectory(path: root) }
            throw StorageError.system(operation: .opening, path: root, offset: nil, errno: Errno(rawValue: code))
        }
        return fd
    }

    /// Descriptor of the folder `root/components…`, never following a link; nil if missing and not creating.
    private func openDirectory(_ components: ArraySlice<String>, create: Bool) throws -> Int32? {
        if access(root, F_OK) != 0, errno == ENOENT {
            guard create else { return nil }
            try createRoot()
        }
        var fd = try openRoot()
        var walked: [String] = []
        for component in components {
            walked.append(component)
            if create, mkdirat(fd, component, folderMode) != 0, errno != EEXIST {
                let code = errno
                PositionalIO.closeDescriptor(fd)
                throw StorageError.system(operation: .creatingDirectory, path: walked.joined(separator: "/"),
                                          offset: nil, errno: Errno(rawValue: code))
            }
            let next = Self.retrying { openat(fd, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            if next < 0 {
                let code = errno
                defer { PositionalIO.closeDescriptor(fd) }
                if code == ENOENT, !create { return nil }
                throw Self.classifyFailure(code, directory: fd, name: component,
                                           display: walked.joined(separator: "/"),
                                           operation: .opening, expectDirectory: true)
            }
            PositionalIO.closeDescriptor(fd)
            fd = next
        }
        return fd
    }

    /// Turns an open failure into the most telling error: a refused link, something in the way, or errno.
    private static func classifyFailure(_ code: Int32, directory: Int32, name: String, display: String,
                                        operation: StorageOperation, expectDirectory: Bool) -> StorageError {
        if code == ELOOP || code == ENOTDIR || code == EISDIR || code == ENXIO {
            var info = stat()
            if fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 {
                switch info.st_mode & S_IFMT {
                case S_IFLNK: return .symlinkRefused(path: display)
                case S_IFDIR where !expectDirectory: return .notARegularFile(path: display)
                case S_IFDIR: break
                default: if expectDirectory { return .notADirectory(path: display) } else { return .notARegularFile(path: display) }
                }
            }
        }
        return .system(operation: operation, path: display, offset: nil, errno: Errno(rawValue: code))
    }

    static func retrying(_ call: () -> Int32) -> Int32 {
        while true {
            let result = call()
            if result >= 0 || errno != EINTR { return result }
        }
    }
}
