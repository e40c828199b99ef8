#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// Reads a small input file (a .torrent) whole, refusing it once it exceeds a limit: checked with
/// `fstat` before anything is read, and enforced while reading, so a FIFO, a device such as /dev/zero
/// or a file that grows meanwhile cannot push more than `limit` bytes (plus one read) into memory.
public enum BoundedFileReader {
    public static func contents(of path: String, limit: Int) throws(BoundedFileError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable(path: path, reason: Errno(rawValue: errno).description) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .unreadable(path: path, reason: Errno(rawValue: errno).description) }
        if info.st_mode & S_IFMT == S_IFDIR { throw .unreadable(path: path, reason: "it is a directory") }
        let isRegular = info.st_mode & S_IFMT == S_IFREG
        if isRegular, Int64(info.st_size) > Int64(limit) {
            throw .tooLarge(path: path, limit: limit, size: Int64(info.st_size))
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(isRegular ? Int(info.st_size) : 64 * 1024)
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .unreadable(path: path, reason: Errno(rawValue: errno).description)
            }
            if count == 0 { return bytes }
            guard bytes.count + count <= limit else { throw .tooLarge(path: path, limit: limit, size: nil) }
            bytes += chunk[0..<count]
        }
    }
}

public enum BoundedFileError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    /// `size` when known before reading (a regular file).
    case tooLarge(path: String, limit: Int, size: Int64?)

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "cannot read \(path): \(reason)"
        case let .tooLarge(path, limit, size):
            let actual = size.map { " (\($0) bytes)" } ?? ""
            return "\(path) is larger than the \(Self.mebibytes(limit)) limit\(actual); refused without reading it whole"
        }
    }

    private static func mebibytes(_ bytes: Int) -> String {
        bytes % (1024 * 1024) == 0 ? "\(bytes / (1024 * 1024)) MiB" : "\(bytes)-byte"
    }
}
