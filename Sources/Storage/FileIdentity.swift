#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A payload file as `stat` describes it: size, modification time (ns) and inode. Resume data records it
/// so that on load a file that was replaced (another inode), rolled back (an older mtime) or touched after
/// it was complete (any difference) is noticed without reading it. See `ResumeStore` for how it is used.
struct FileIdentity: Equatable, Sendable {
    var size: Int64
    var modifiedNanoseconds: Int64
    var inode: UInt64

    init(size: Int64, modifiedNanoseconds: Int64, inode: UInt64) {
        self.size = size
        self.modifiedNanoseconds = modifiedNanoseconds
        self.inode = inode
    }

    init(_ info: stat) {
        #if canImport(Darwin)
        let modified = info.st_mtimespec
        #else
        let modified = info.st_mtim
        #endif
        self.init(size: Int64(info.st_size),
                  modifiedNanoseconds: Int64(modified.tv_sec) &* 1_000_000_000 &+ Int64(modified.tv_nsec),
                  inode: UInt64(info.st_ino))
    }

    /// Fixed-size record for the snapshot: size, mtime, inode, each 8 bytes big-endian.
    static let encodedSize = 24

    func encoded() -> [UInt8] {
        Self.bigEndian(UInt64(bitPattern: size)) + Self.bigEndian(UInt64(bitPattern: modifiedNanoseconds))
            + Self.bigEndian(inode)
    }

    /// Decodes one record; all zero bytes mean "not recorded" (nil).
    static func decode(_ bytes: ArraySlice<UInt8>) -> FileIdentity? {
        guard bytes.count == encodedSize, bytes.contains(where: { $0 != 0 }) else { return nil }
        func field(_ index: Int) -> UInt64 {
            let start = bytes.startIndex + index * 8
            return bytes[start..<(start + 8)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        return FileIdentity(size: Int64(bitPattern: field(0)), modifiedNanoseconds: Int64(bitPattern: field(1)),
                            inode: field(2))
    }

    private static func bigEndian(_ value: UInt64) -> [UInt8] {
        (0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }
}
