/// The bencode codec (BEP 3). Decoding is strict by default: there is exactly one accepted
/// encoding of every value, so re-encoding decoded input reproduces it byte for byte.
public enum Bencode {
    public struct DecodingOptions: Sendable, Equatable {
        /// Maximum number of nested lists/dictionaries. The decoder is iterative, so a hostile
        /// nesting bomb fails at the limit without recursion. Keep it modest (hundreds at most):
        /// a decoded `BValue` is compared, hashed and released recursively, so a value nested
        /// tens of thousands deep could exhaust a thread's stack after decoding succeeded.
        public var maxDepth: Int
        /// Longest accepted byte string, checked before anything is allocated.
        public var maxStringLength: Int
        /// Refuse dictionaries whose keys are not in bytewise order. Duplicates are refused regardless.
        public var requiresSortedKeys: Bool
        /// Most values (integers, strings, lists, dictionaries; keys included) in one document: what a
        /// decoded tree costs grows with their number, so the parse stops as soon as it is exceeded.
        public var maxValues: Int

        public init(maxDepth: Int = 64, maxStringLength: Int = 64 * 1024 * 1024, requiresSortedKeys: Bool = true,
                    maxValues: Int = .max) {
            self.maxDepth = maxDepth
            self.maxStringLength = maxStringLength
            self.requiresSortedKeys = requiresSortedKeys
            self.maxValues = maxValues
        }

        public static let strict = DecodingOptions()
        /// Accepts unsorted dictionary keys, which some trackers and old torrent makers emit.
        public static let lenient = DecodingOptions(requiresSortedKeys: false)
    }

    /// A decoded top-level dictionary plus, for each key, where its value's raw bytes sit in the
    /// input. The `info` value's range is what the info hash is computed over.
    public struct DecodedDictionary: Sendable {
        public let entries: [BKey: BValue]
        public let rawRanges: [BKey: Range<Int>]
    }

    /// Decodes exactly one value; anything after it is an error.
    public static func decode(_ bytes: some Collection<UInt8>, options: DecodingOptions = .strict) throws -> BValue {
        try withBuffer(bytes) { buffer in
            var parser = BencodeParser(buffer: buffer, options: options, recordsTopLevelRanges: false)
            let value = try parser.parseValue()
            try parser.requireEnd()
            return value
        }
    }

    /// Decodes one value at the start of `bytes` and reports how many bytes it took, leaving the
    /// rest (e.g. the raw piece data after a ut_metadata dictionary) to the caller.
    public static func decodePrefix(
        _ bytes: some Collection<UInt8>, options: DecodingOptions = .strict
    ) throws -> (value: BValue, consumed: Int) {
        try withBuffer(bytes) { buffer in
            var parser = BencodeParser(buffer: buffer, options: options, recordsTopLevelRanges: false)
            let value = try parser.parseValue()
            return (value, parser.position)
        }
    }

    /// Decodes input that must be exactly one dictionary, recording each value's raw byte range.
    public static func decodeTopLevelDictionary(
        _ bytes: some Collection<UInt8>, options: DecodingOptions = .strict
    ) throws -> DecodedDictionary {
        try withBuffer(bytes) { buffer in
            var parser = BencodeParser(buffer: buffer, options: options, recordsTopLevelRanges: true)
            if let first = parser.peek(), first != UInt8(ascii: "d") {
                throw BencodeError(.topLevelNotDictionary(offset: 0))
            }
            let value = try parser.parseValue()
            try parser.requireEnd()
            return DecodedDictionary(entries: value.dict ?? [:], rawRanges: parser.topLevelRanges)
        }
    }

    /// The raw byte range of each value of the top-level dictionary (input is fully validated).
    public static func rawValueRanges(
        ofTopLevelDictionary bytes: some Collection<UInt8>, options: DecodingOptions = .strict
    ) throws -> [BKey: Range<Int>] {
        try decodeTopLevelDictionary(bytes, options: options).rawRanges
    }

    /// Canonical encoding: dictionary keys sorted bytewise, integers in shortest form.
    public static func encode(_ value: BValue) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(BencodeEncoder.encodedSize(of: value))
        BencodeEncoder.append(value, to: &out)
        return out
    }

    /// Appends the canonical encoding of `value` to `out`.
    public static func encode(_ value: BValue, into out: inout [UInt8]) {
        BencodeEncoder.append(value, to: &out)
    }

    private static func withBuffer<Result>(
        _ bytes: some Collection<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) throws -> Result
    ) throws -> Result {
        if let result = try bytes.withContiguousStorageIfAvailable(body) { return result }
        return try Array(bytes).withUnsafeBufferPointer(body)
    }
}
