/// The SHA-1 of a torrent's raw `info` dictionary: the torrent's identity on the wire.
public struct InfoHash: Hashable, Sendable, CustomStringConvertible {
    public static let byteCount = 20
    /// Exactly 20 bytes.
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = bytes
    }

    /// Accepts 40 hex digits (either case).
    public init?(hex: some StringProtocol) {
        guard let bytes = HexCoding.decode(hex), bytes.count == Self.byteCount else { return nil }
        self.bytes = bytes
    }

    public var hex: String { HexCoding.encode(bytes) }
    public var description: String { hex }
}

/// A 20-byte peer id. Ours follows the Azureus convention: `-BW0001-` then 12 random bytes.
public struct PeerID: Hashable, Sendable, CustomStringConvertible {
    public static let byteCount = 20
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = bytes
    }

    /// A fresh id; a new one is drawn whenever the address the swarm sees us at changes.
    public static func random(prefix: String = "-BW0001-") -> PeerID {
        var bytes = Array(prefix.utf8.prefix(byteCount))
        // Printable random tail: some trackers and clients mangle raw binary ids in logs and URLs.
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        while bytes.count < byteCount { bytes.append(alphabet.randomElement()!) }
        return PeerID(bytes: bytes)!
    }

    public var description: String {
        String(decoding: bytes.map { (0x20..<0x7f).contains($0) ? $0 : UInt8(ascii: ".") }, as: UTF8.self)
    }
}

public enum HexCoding {
    public static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
