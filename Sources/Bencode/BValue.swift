/// A bencoded dictionary key. Keys are raw byte strings; most are ASCII, so a string literal works.
public struct BKey: Hashable, Sendable, Comparable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public init(_ string: String) { self.bytes = Array(string.utf8) }
    public init(stringLiteral value: String) { self.init(value) }

    /// Canonical bencode order: raw bytes compared as unsigned values, shorter prefix first.
    public static func < (lhs: BKey, rhs: BKey) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }

    /// The key as UTF-8 text, or nil when the bytes are not valid UTF-8.
    public var string: String? { UTF8Validation.string(from: bytes) }

    /// Readable in error messages: quoted text when printable, otherwise hex.
    public var description: String { ByteText.readable(bytes) }
}

/// A bencoded value (BEP 3): integers, byte strings, lists and dictionaries with byte-string keys.
public enum BValue: Hashable, Sendable {
    case integer(Int64)
    case bytes([UInt8])
    case list([BValue])
    case dictionary([BKey: BValue])

    /// A byte string holding the UTF-8 encoding of `text`.
    public static func string(_ text: String) -> BValue { .bytes(Array(text.utf8)) }

    public var int: Int64? {
        if case .integer(let v) = self { return v }
        return nil
    }

    public var bytes: [UInt8]? {
        if case .bytes(let v) = self { return v }
        return nil
    }

    /// The byte string decoded as UTF-8; nil for other kinds or for invalid UTF-8.
    public var string: String? {
        guard case .bytes(let v) = self else { return nil }
        return UTF8Validation.string(from: v)
    }

    public var list: [BValue]? {
        if case .list(let v) = self { return v }
        return nil
    }

    public var dict: [BKey: BValue]? {
        if case .dictionary(let v) = self { return v }
        return nil
    }

    /// Dictionary lookup; nil when this is not a dictionary or the key is absent.
    public subscript(key: BKey) -> BValue? {
        guard case .dictionary(let d) = self else { return nil }
        return d[key]
    }

    public subscript(key: String) -> BValue? { self[BKey(key)] }

    /// Short name of the kind, for error messages ("integer", "byte string", ...).
    public var kindName: String {
        switch self {
        case .integer: return "integer"
        case .bytes: return "byte string"
        case .list: return "list"
        case .dictionary: return "dictionary"
        }
    }
}

extension BValue: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: BValue...) { self = .list(elements) }

    /// Duplicate keys in a literal are a programming error and trap, like `Dictionary`'s own literal.
    public init(dictionaryLiteral elements: (BKey, BValue)...) {
        self = .dictionary(Dictionary(uniqueKeysWithValues: elements))
    }
}

enum UTF8Validation {
    /// Decodes strictly: any invalid sequence makes the whole thing nil rather than being replaced.
    static func string(from bytes: some Collection<UInt8>) -> String? {
        // The stdlib decoder is fast but repairs invalid input with U+FFFD; a repaired string no
        // longer re-encodes to the same bytes, which is how invalid input is detected.
        let text = String(decoding: bytes, as: UTF8.self)
        return text.utf8.elementsEqual(bytes) ? text : nil
    }
}

enum ByteText {
    /// Printable ASCII/UTF-8 is shown quoted (truncated when long); anything else as hex.
    static func readable(_ bytes: [UInt8]) -> String {
        let limit = 64
        let shown = Array(bytes.prefix(limit))
        let suffix = bytes.count > limit ? "…" : ""
        if let text = UTF8Validation.string(from: shown),
           text.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7f })
        {
            return "\"\(text)\(suffix)\""
        }
        let digits = Array("0123456789abcdef".utf8)
        var hex = [UInt8]()
        for b in shown {
            hex.append(digits[Int(b >> 4)])
            hex.append(digits[Int(b & 0x0f)])
        }
        return "0x" + String(decoding: hex, as: UTF8.self) + suffix
    }
}
