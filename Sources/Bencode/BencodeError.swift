/// Why bencoded input was refused, and where: the byte offset (from the start of the input handed to
/// the decoder) and the path of the enclosing field, so a message reads
/// `info.files[3].length: leading zero in number at offset 1234`.
public struct BencodeError: Error, Equatable, Sendable, CustomStringConvertible {
    public let reason: Reason
    /// The dictionary keys and list indices leading from the top-level value to where the problem was
    /// found; empty at the top level.
    public let path: BencodePath

    public init(_ reason: Reason, path: BencodePath = BencodePath()) {
        self.reason = reason
        self.path = path
    }

    public var offset: Int { reason.offset }

    public var description: String { path.isEmpty ? reason.description : "\(path): \(reason)" }

    /// The same error for input that sits at `outer` inside a larger value (e.g. an info dictionary
    /// fetched on its own is `info` of a .torrent).
    public func nested(under outer: BencodePath) -> BencodeError {
        BencodeError(reason, path: BencodePath(outer.components + path.components))
    }
}

/// Where a value sits inside a decoded bencode value: `info.files[3].length`.
public struct BencodePath: Equatable, Sendable, CustomStringConvertible {
    public enum Component: Equatable, Sendable {
        case key(BKey)
        case index(Int)
    }

    public var components: [Component]

    public init(_ components: [Component] = []) { self.components = components }

    public var isEmpty: Bool { components.isEmpty }

    /// Keys as text (hex or quoted when not plain printable text), indices in brackets.
    public var description: String {
        var out = ""
        for component in components {
            switch component {
            case .key(let key):
                if !out.isEmpty { out += "." }
                out += key.pathText
            case .index(let index):
                out += "[\(index)]"
            }
        }
        return out
    }
}

extension BencodeError {
    /// What was wrong; every case carries the byte offset where it was found.
    public enum Reason: Error, Equatable, Sendable, CustomStringConvertible {
        /// The input stopped while `expected` was still needed.
        case unexpectedEndOfInput(offset: Int, expected: String)
        /// A byte that cannot appear here; `expected` says what could.
        case unexpectedByte(UInt8, offset: Int, expected: String)
        /// `i03e`, `i-03e` or `03:abc`: bencode has exactly one spelling per number.
        case leadingZero(offset: Int)
        /// `i-0e`: zero has no sign.
        case negativeZero(offset: Int)
        /// `ie` or `i-e`: an integer with no digits.
        case emptyInteger(offset: Int)
        /// The integer does not fit in 64 bits (or a string length does not fit in `Int`).
        case integerOverflow(offset: Int)
        /// A byte string claims more bytes than remain in the input.
        case stringLengthExceedsInput(length: Int, offset: Int, remaining: Int)
        /// A byte string is longer than `DecodingOptions.maxStringLength`.
        case stringLengthExceedsLimit(offset: Int, limit: Int)
        /// More nested lists/dictionaries than `DecodingOptions.maxDepth`.
        case nestingTooDeep(offset: Int, limit: Int)
        /// Dictionary keys must be byte strings.
        case nonStringKey(offset: Int)
        /// The same key twice in one dictionary: always refused, the meaning would be ambiguous.
        case duplicateKey(BKey, offset: Int)
        /// Keys out of bytewise order (only refused when `DecodingOptions.requiresSortedKeys`).
        case unsortedKey(BKey, offset: Int)
        /// Bytes left over after a complete top-level value.
        case trailingData(offset: Int)
        /// The API needs a dictionary at the top level and found something else.
        case topLevelNotDictionary(offset: Int)
        /// More values in the document than `DecodingOptions.maxValues`.
        case tooManyValues(offset: Int, limit: Int)

        public var offset: Int {
            switch self {
            case .unexpectedEndOfInput(let offset, _), .unexpectedByte(_, let offset, _),
                 .leadingZero(let offset), .negativeZero(let offset), .emptyInteger(let offset),
                 .integerOverflow(let offset), .stringLengthExceedsInput(_, let offset, _),
                 .stringLengthExceedsLimit(let offset, _), .nestingTooDeep(let offset, _),
                 .nonStringKey(let offset), .duplicateKey(_, let offset), .unsortedKey(_, let offset),
                 .trailingData(let offset), .topLevelNotDictionary(let offset), .tooManyValues(let offset, _):
                return offset
            }
        }

        public var description: String {
            switch self {
            case .unexpectedEndOfInput(let offset, let expected):
                return "input ends at offset \(offset) where \(expected) was expected"
            case .unexpectedByte(let byte, let offset, let expected):
                return "unexpected byte \(Self.show(byte)) at offset \(offset), expected \(expected)"
            case .leadingZero(let offset):
                return "leading zero in number at offset \(offset)"
            case .negativeZero(let offset):
                return "negative zero in integer at offset \(offset)"
            case .emptyInteger(let offset):
                return "integer without digits at offset \(offset)"
            case .integerOverflow(let offset):
                return "number too large at offset \(offset)"
            case .stringLengthExceedsInput(let length, let offset, let remaining):
                return "byte string at offset \(offset) claims \(length) bytes but only \(remaining) remain"
            case .stringLengthExceedsLimit(let offset, let limit):
                return "byte string at offset \(offset) is longer than the limit of \(limit) bytes"
            case .nestingTooDeep(let offset, let limit):
                return "nesting deeper than \(limit) levels at offset \(offset)"
            case .nonStringKey(let offset):
                return "dictionary key at offset \(offset) is not a byte string"
            case .duplicateKey(let key, let offset):
                return "duplicate dictionary key \(key) at offset \(offset)"
            case .unsortedKey(let key, let offset):
                return "dictionary key \(key) at offset \(offset) is out of sorted order"
            case .trailingData(let offset):
                return "unexpected data after the value at offset \(offset)"
            case .topLevelNotDictionary(let offset):
                return "expected a dictionary at offset \(offset)"
            case .tooManyValues(let offset, let limit):
                return "more than \(limit) values (the limit) at offset \(offset)"
            }
        }

        private static func show(_ byte: UInt8) -> String {
            if (0x21..<0x7f).contains(byte) { return "'\(Character(Unicode.Scalar(byte)))'" }
            let digits = Array("0123456789abcdef".utf8)
            return "0x" + String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]], as: UTF8.self)
        }
    }
}

extension BKey {
    /// The key as it reads in a path: bare when it is plain printable text, else as in `description`.
    var pathText: String {
        if let text = string, !text.isEmpty,
           text.unicodeScalars.allSatisfy({ (0x20..<0x7f).contains($0.value) || $0.value > 0x9f }) {
            return text
        }
        return description
    }
}
