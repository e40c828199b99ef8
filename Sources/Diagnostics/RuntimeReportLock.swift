#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The right to write the runtime report at one path: an exclusive `flock` on `<path>.lock`, held for the
/// life of this object (so for the life of the process that took it, and released by the kernel even
/// after kill -9).
///
/// Why a lock rather than one report per process: `burrow doctor` answers for "the running Burrow" (the
/// coming daemon runs every torrent in one process), and its checks read one report. Without an owner,
/// two instances sharing a path overwrote each other's report every two seconds and the first to stop
/// deleted the other's. Now the first instance owns the path; a second one writes nothing and says so in
/// its log (give it its own path to have it reported). A report left by a dead owner is taken over by the
/// next instance, and until then the doctor calls it stale.
public final class RuntimeReportLock: Sendable {
    public let reportPath: String
    private let descriptor: Int32

    private init(reportPath: String, descriptor: Int32) {
        self.reportPath = reportPath
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Takes the lock for `reportPath` (creating its directory as `RuntimeReport.write` would), or throws
    /// `RuntimeReportError` naming the path and, when known, the process that holds it.
    public static func acquire(for reportPath: String) throws -> RuntimeReportLock {
        let lockPath = reportPath + ".lock"
        try RuntimeReport.prepareDirectory((reportPath as NSString).deletingLastPathComponent)
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw RuntimeReportError(path: lockPath, reason: "cannot be opened: \(String(cString: strerror(errno)))")
        }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code == EINTR { continue }
            close(fd)
            guard code == EWOULDBLOCK else {
                throw RuntimeReportError(path: lockPath, reason: "cannot be locked: \(String(cString: strerror(code)))")
            }
            let holder = (try? RuntimeReport.read(from: reportPath)).map { " (pid \($0.pid))" } ?? ""
            throw RuntimeReportError(
                path: reportPath,
                reason: "is owned by another running burrow\(holder): this one writes no runtime report, so burrow doctor describes the other")
        }
        return RuntimeReportLock(reportPath: reportPath, descriptor: fd)
    }
}
