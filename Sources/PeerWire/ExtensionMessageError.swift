import Bencode

/// An extension message (BEP 10 handshake, ut_metadata, ut_pex) whose payload is malformed.
/// `message` names which kind of message it was, so logs read e.g.
/// "ut_pex: key 'added' has length 7, which is not a multiple of 6".
public struct ExtensionMessageError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Problem: Equatable, Sendable {
        /// The payload is not valid bencode.
        case notBencoded(BencodeError)
        /// The payload's bencoded value is not a dictionary.
        case notADictionary(found: String)
        /// A required key is absent.
        case missingKey(String)
        /// A known key holds the wrong kind of value.
        case wrongType(key: String, expected: String, found: String)
        /// A known key holds a value of the right kind that is out of range or malformed.
        case invalidValue(key: String, reason: String)
    }

    public let message: String
    public let problem: Problem

    public init(message: String, problem: Problem) {
        self.message = message
        self.problem = problem
    }

    public var description: String {
        switch problem {
        case .notBencoded(let error): return "\(message): payload is not valid bencode: \(error)"
        case .notADictionary(let found): return "\(message): payload is \(Self.article(found)) \(found), expected a dictionary"
        case .missingKey(let key): return "\(message): required key '\(key)' is missing"
        case .wrongType(let key, let expected, let found):
            return "\(message): key '\(key)' is \(Self.article(found)) \(found), expected \(Self.article(expected)) \(expected)"
        case .invalidValue(let key, let reason): return "\(message): key '\(key)' \(reason)"
        }
    }

    private static func article(_ noun: String) -> String {
        noun.first.map { "aeiou".contains($0) } == true ? "an" : "a"
    }
}

/// Typed access to a decoded extension dictionary. Absent keys read as nil; a present key of the wrong
/// kind or out of range throws, naming the message and key.
struct ExtensionDictionaryReader {
    /// Peers are not required to sort keys, and extension payloads are small: bounding strings and
    /// depth keeps a hostile payload from costing more than the frame that carried it.
    static let decodingOptions = Bencode.DecodingOptions(maxDepth: 8, maxStringLength: 1 << 20, requiresSortedKeys: false)

    let message: String
    let entries: [BKey: BValue]

    /// Decodes a whole payload that must be exactly one dictionary.
    init(message: String, payload: some Collection<UInt8>) throws {
        let value: BValue
        do {
            value = try Bencode.decode(payload, options: Self.decodingOptions)
        } catch let error as BencodeError {
            throw ExtensionMessageError(message: message, problem: .notBencoded(error))
        }
        try self.init(message: message, value: value)
    }

    init(message: String, value: BValue) throws {
        guard let entries = value.dict else {
            throw ExtensionMessageError(message: message, problem: .notADictionary(found: value.kindName))
        }
        self.message = message
        self.entries = entries
    }

    func error(_ problem: ExtensionMessageError.Problem) -> ExtensionMessageError {
        ExtensionMessageError(message: message, problem: problem)
    }

    func integer(_ key: String) throws -> Int64? {
        guard let value = entries[BKey(key)] else { return nil }
        guard let int = value.int else {
            throw error(.wrongType(key: key, expected: "integer", found: value.kindName))
        }
        return int
    }

    /// An integer that must lie in `range`.
    func integer<T: FixedWidthInteger>(_ key: String, in range: ClosedRange<T>) throws -> T? {
        guard let int = try integer(key) else { return nil }
        guard let typed = T(exactly: int), range.contains(typed) else {
            throw error(.invalidValue(key: key, reason: "is \(int), expected \(range.lowerBound)...\(range.upperBound)"))
        }
        return typed
    }

    func requiredInteger<T: FixedWidthInteger>(_ key: String, in range: ClosedRange<T>) throws -> T {
        guard let value = try integer(key, in: range) else { throw error(.missingKey(key)) }
        return value
    }

    func bytes(_ key: String) throws -> [UInt8]? {
        guard let value = entries[BKey(key)] else { return nil }
        guard let bytes = value.bytes else {
            throw error(.wrongType(key: key, expected: "byte string", found: value.kindName))
        }
        return bytes
    }

    /// A byte string whose length must be one of `lengths`.
    func bytes(_ key: String, lengths: Set<Int>) throws -> [UInt8]? {
        guard let bytes = try bytes(key) else { return nil }
        guard lengths.contains(bytes.count) else {
            let expected = lengths.sorted().map(String.init).joined(separator: " or ")
            throw error(.invalidValue(key: key, reason: "has length \(bytes.count), expected \(expected)"))
        }
        return bytes
    }

    func dictionary(_ key: String) throws -> [BKey: BValue]? {
        guard let value = entries[BKey(key)] else { return nil }
        guard let dict = value.dict else {
            throw error(.wrongType(key: key, expected: "dictionary", found: value.kindName))
        }
        return dict
    }
}
