import TorrentModel

/// Byte layout of the append-only journal of verified pieces.
///
/// Header (32 bytes, written whole via temp file + rename, so never torn): "BWJ1", the 20-byte info
/// hash, the epoch (UInt64 big-endian) it continues. Then fixed 8-byte records, each appended with one
/// write(2): the piece index (UInt32 BE) and its bitwise inverse (UInt32 BE). The inverse rejects a
/// zero-filled or partly written tail; a trailing partial record (killed mid-append) is ignored.
enum ResumeJournalFormat {
    static let magic: [UInt8] = Array("BWJ1".utf8)
    static let headerSize = 32
    static let recordSize = 8

    struct Header: Equatable {
        let infoHash: [UInt8]
        let epoch: UInt64
    }

    static func header(infoHash: [UInt8], epoch: UInt64) -> [UInt8] {
        magic + infoHash + bigEndianBytes(epoch)
    }

    static func record(piece: Int) -> [UInt8] {
        let index = UInt32(piece)
        return bigEndianBytes(index) + bigEndianBytes(~index)
    }

    /// The header, or nil if `bytes` does not start with a well-formed one.
    static func parseHeader(_ bytes: [UInt8]) -> Header? {
        guard bytes.count >= headerSize, Array(bytes[0..<4]) == magic else { return nil }
        let epoch = bytes[24..<32].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Header(infoHash: Array(bytes[4..<24]), epoch: epoch)
    }

    /// Valid piece indices recorded after the header (those `< pieceCount` with a matching inverse).
    static func pieces(in bytes: [UInt8], pieceCount: Int) -> [Int] {
        var pieces: [Int] = []
        var offset = headerSize
        while offset + recordSize <= bytes.count {
            let index = readUInt32(bytes, at: offset), check = readUInt32(bytes, at: offset + 4)
            if check == ~index, Int(index) < pieceCount { pieces.append(Int(index)) }
            offset += recordSize
        }
        return pieces
    }

    /// Length of the header plus every whole record: where the next record must start.
    static func alignedLength(_ length: Int64) -> Int64 {
        guard length > Int64(headerSize) else { return Int64(headerSize) }
        return length - (length - Int64(headerSize)) % Int64(recordSize)
    }

    private static func readUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<(offset + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    private static func bigEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<(T.bitWidth / 8)).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }
}
