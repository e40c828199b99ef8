#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// Where Burrow keeps its own files (resume data; the daemon's state later), out of every payload's reach.
///
/// A torrent's files land wherever its name and paths say below the output folder, so nothing Burrow
/// relies on may live there: resume data in `<output>/.burrow/` could be written, replaced or shadowed by
/// a torrent named `.burrow`. The state directory is separate, and a torrent whose payload would contain
/// it (or lie inside it) is refused.
public enum StateDirectory {
    /// `/var/lib/burrow` as root; otherwise `$XDG_STATE_HOME/burrow` when that is absolute, else
    /// `$HOME/.local/state/burrow`; nil when neither variable helps (no HOME).
    public static func defaultPath(userID: uid_t = geteuid(),
                                   environment: (String) -> String? = StateDirectory.processEnvironment) -> String? {
        if userID == 0 { return "/var/lib/burrow" }
        if let state = environment("XDG_STATE_HOME"), state.hasPrefix("/") {
            return trimmingSlash(state) + "/burrow"
        }
        if let home = environment("HOME"), home.hasPrefix("/") {
            return trimmingSlash(home) + "/.local/state/burrow"
        }
        return nil
    }

    public static let processEnvironment: @Sendable (String) -> String? = { name in
        getenv(name).map { String(cString: $0) }
    }

    /// The folder of per-torrent resume files: `<state>/resume`.
    public static func resumeFolder(in state: String) -> String { trimmingSlash(state) + "/resume" }

    /// Creates `state` (and missing parents) with mode 0700 when it does not exist yet.
    public static func create(_ state: String) throws(StorageError) {
        do {
            try RootedDirectory(root: state, folderMode: 0o700).createRoot()
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError.invalidArgument("cannot create the state directory \(state): \(error)")
        }
    }

    /// Why `state` cannot hold the state of a torrent whose payload is `<output>/<payloadName>`: one of
    /// them lies inside the other (then a file of the torrent could be a file of Burrow's). nil: disjoint.
    /// Both folders must exist. Compared by device and inode along the real paths, so links, `..`, bind
    /// mounts and case-insensitive file systems cannot hide an overlap.
    public static func conflict(state: String, output: String, payloadName: String) throws(StorageError) -> String? {
        let realState = try realPath(state), realOutput = try realPath(output)
        let payloadPath = realOutput + "/" + payloadName
        guard let stateIdentity = identity(realState) else {
            throw StorageError.fileMissing(operation: .inspecting, path: state)
        }
        // The payload inside the state directory: the state directory is the payload or one of its parents.
        if ancestorsAndSelf(of: payloadPath).contains(where: { identity($0) == stateIdentity }) {
            return "the torrent's files (\(payloadPath)) would lie inside Burrow's state directory \(realState)"
        }
        // The state directory inside the payload: the payload (if it exists yet) is one of its parents.
        if let payloadIdentity = identity(payloadPath),
           ancestorsAndSelf(of: realState).contains(where: { identity($0) == payloadIdentity }) {
            return "Burrow's state directory \(realState) lies inside the torrent's files (\(payloadPath))"
        }
        return nil
    }

    private struct Identity: Equatable {
        let device: UInt64
        let inode: UInt64
    }

    private static func identity(_ path: String) -> Identity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// "/a/b/c" → ["/a/b/c", "/a/b", "/a", "/"].
    private static func ancestorsAndSelf(of path: String) -> [String] {
        var result: [String] = []
        var components = path.split(separator: "/").map(String.init)
        while !components.isEmpty {
            result.append("/" + components.joined(separator: "/"))
            components.removeLast()
        }
        return result + ["/"]
    }

    private static func realPath(_ path: String) throws(StorageError) -> String {
        guard let resolved = realpath(path, nil) else {
            throw StorageError.system(operation: .inspecting, path: path, offset: nil, errno: Errno(rawValue: errno))
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    private static func trimmingSlash(_ path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        return String(trimmed)
    }
}
