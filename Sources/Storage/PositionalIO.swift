#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// pread/pwrite loops that finish the job: they retry on EINTR and continue after short transfers.
enum PositionalIO {
    /// Reads until `buffer` is full or the file ends; returns the number of bytes read.
    static func readFully(fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + Int64(done)))
            if n > 0 {
                done += n
            } else if n == 0 {
                break  // end of file
            } else if errno != EINTR {
                throw Errno(rawValue: errno)
            }
        }
        return done
    }

    /// Writes all of `buffer` at `offset`.
    static func writeFully(fd: Int32, from buffer: UnsafeRawBufferPointer, at offset: Int64) throws(Errno) {
        var done = 0
        while done < buffer.count {
            let n = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + Int64(done)))
            if n > 0 {
                done += n
            } else if n == 0 {
                throw Errno.noSpace  // pwrite makes no progress only when the device is full
            } else if errno != EINTR {
                throw Errno(rawValue: errno)
            }
        }
    }

    /// Writes the concatenation of `parts` at `offset` with as few `pwritev` calls as the kernel allows.
    static func writeFully(fd: Int32, from parts: [UnsafeRawBufferPointer], at offset: Int64) throws(Errno) {
        var vectors = parts.filter { $0.count > 0 }.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
        var first = 0
        var position = offset
        while first < vectors.count {
            let count = Int32(min(vectors.count - first, Self.maximumVectors))
            let n = vectors.withUnsafeBufferPointer { pwritev(fd, $0.baseAddress! + first, count, off_t(position)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Errno(rawValue: errno)
            }
            if n == 0 { throw Errno.noSpace }
            position += Int64(n)
            // Skip what was written: whole vectors, then the written head of a partly written one.
            var written = n
            while first < vectors.count && written >= vectors[first].iov_len {
                written -= vectors[first].iov_len
                first += 1
            }
            if written > 0 {
                vectors[first].iov_base += written
                vectors[first].iov_len -= written
            }
        }
    }

    /// IOV_MAX on Linux and macOS.
    static let maximumVectors = 1024

    /// Appends all of `buffer` through an O_APPEND descriptor.
    static func appendFully(fd: Int32, from buffer: UnsafeRawBufferPointer) throws(Errno) {
        var done = 0
        while done < buffer.count {
            let n = write(fd, buffer.baseAddress! + done, buffer.count - done)
            if n > 0 {
                done += n
            } else if n == 0 {
                throw Errno.noSpace
            } else if errno != EINTR {
                throw Errno(rawValue: errno)
            }
        }
    }

    /// Flushes a file's data (not necessarily its timestamps) to stable storage.
    static func syncData(_ fd: Int32) throws(Errno) {
        while true {
            #if canImport(Glibc)
            let result = fdatasync(fd)
            #else
            let result = fsync(fd)
            #endif
            if result == 0 { return }
            if errno != EINTR { throw Errno(rawValue: errno) }
        }
    }

    static func truncate(_ fd: Int32, to length: Int64) throws(Errno) {
        while ftruncate(fd, off_t(length)) != 0 {
            if errno != EINTR { throw Errno(rawValue: errno) }
        }
    }

    static func size(_ fd: Int32) throws(Errno) -> Int64 {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Errno(rawValue: errno) }
        return Int64(info.st_size)
    }

    static func closeDescriptor(_ fd: Int32) {
        // Never retry close(2) on EINTR: on Linux the descriptor is already released.
        _ = close(fd)
    }
}
