/// Iterative, index-based bencode parser over a contiguous buffer. Containers under construction
/// live on an explicit stack, so hostile nesting can never overflow the call stack.
struct BencodeParser {
    private typealias Reason = BencodeError.Reason

    private let buffer: UnsafeBufferPointer<UInt8>
    private let options: Bencode.DecodingOptions
    private let recordsTopLevelRanges: Bool
    /// Index of the next unread byte; always within 0...buffer.count.
    private(set) var position = 0
    /// Values started so far (keys included); never above `options.maxValues`.
    private var valueCount = 0
    /// Raw range of each value of the outermost dictionary (filled only when recording).
    private(set) var topLevelRanges: [BKey: Range<Int>] = [:]

    /// One list or dictionary whose closing `e` has not been read yet.
    private struct Frame {
        let isDictionary: Bool
        /// Offset of the container's opening `l`/`d`.
        let start: Int
        var items: [BValue] = []
        var entries: [BKey: BValue] = [:]
        /// Last key read, for the ordering check (strict mode only).
        var lastKey: BKey?
        /// A key that has been read and awaits its value; nil between entries.
        var pendingKey: BKey?
    }

    init(buffer: UnsafeBufferPointer<UInt8>, options: Bencode.DecodingOptions, recordsTopLevelRanges: Bool) {
        self.buffer = buffer
        self.options = options
        self.recordsTopLevelRanges = recordsTopLevelRanges
    }

    func peek() -> UInt8? { position < buffer.count ? buffer[position] : nil }

    func requireEnd() throws(BencodeError) {
        if position != buffer.count { throw BencodeError(.trailingData(offset: position)) }
    }

    /// Parses one complete value starting at `position`; an error names the field it was found in.
    mutating func parseValue() throws(BencodeError) -> BValue {
        var stack: [Frame] = []
        do {
            return try parseValue(stack: &stack)
        } catch {
            throw BencodeError(error, path: Self.path(to: stack))
        }
    }

    /// Where the containers still open on `stack` lead: each dictionary's pending key, each list's next index.
    private static func path(to stack: [Frame]) -> BencodePath {
        var components = [BencodePath.Component]()
        for frame in stack {
            if frame.isDictionary {
                // No pending key: the problem is in a key of this dictionary itself (the reason names it).
                guard let key = frame.pendingKey else { break }
                components.append(.key(key))
            } else {
                components.append(.index(frame.items.count))
            }
        }
        return BencodePath(components)
    }

    private mutating func parseValue(stack: inout [Frame]) throws(Reason) -> BValue {
        while true {
            // Inside a container: either it closes here, or (in a dictionary) a key comes first.
            if let top = stack.last {
                guard position < buffer.count else {
                    throw Reason.unexpectedEndOfInput(
                        offset: position, expected: top.pendingKey == nil ? "'e' or another element" : "a value")
                }
                if buffer[position] == UInt8(ascii: "e") && top.pendingKey == nil {
                    position += 1
                    let frame = stack.removeLast()
                    let value: BValue = frame.isDictionary ? .dictionary(frame.entries) : .list(frame.items)
                    if let finished = deliver(value, startingAt: frame.start, into: &stack) { return finished }
                    continue
                }
                if top.isDictionary && top.pendingKey == nil {
                    try readKey(into: &stack[stack.count - 1])
                    continue
                }
            }

            let start = position
            guard position < buffer.count else {
                throw Reason.unexpectedEndOfInput(offset: position, expected: "a value")
            }
            try countValue()
            let value: BValue
            switch buffer[position] {
            case UInt8(ascii: "i"):
                value = .integer(try readInteger())
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                value = .bytes(try readByteString())
            case UInt8(ascii: "l"), UInt8(ascii: "d"):
                guard stack.count < options.maxDepth else {
                    throw Reason.nestingTooDeep(offset: position, limit: options.maxDepth)
                }
                stack.append(Frame(isDictionary: buffer[position] == UInt8(ascii: "d"), start: position))
                position += 1
                continue
            default:
                throw Reason.unexpectedByte(
                    buffer[position], offset: position, expected: "'i', 'l', 'd' or a string length")
            }
            if let finished = deliver(value, startingAt: start, into: &stack) { return finished }
        }
    }

    /// Hands a finished value to its enclosing container; returns it when it is the outermost value.
    private mutating func deliver(_ value: BValue, startingAt start: Int, into stack: inout [Frame]) -> BValue? {
        guard !stack.isEmpty else { return value }
        let index = stack.count - 1
        if stack[index].isDictionary {
            // Invariant: a dictionary only accepts a value after readKey set pendingKey.
            let key = stack[index].pendingKey!
            stack[index].entries[key] = value
            stack[index].pendingKey = nil
            if recordsTopLevelRanges && index == 0 { topLevelRanges[key] = start..<position }
        } else {
            stack[index].items.append(value)
        }
        return nil
    }

    private mutating func countValue() throws(Reason) {
        valueCount += 1
        if valueCount > options.maxValues { throw Reason.tooManyValues(offset: position, limit: options.maxValues) }
    }

    private mutating func readKey(into frame: inout Frame) throws(Reason) {
        let keyOffset = position
        try countValue()
        guard case UInt8(ascii: "0")...UInt8(ascii: "9") = buffer[position] else {
            throw Reason.nonStringKey(offset: keyOffset)
        }
        let key = BKey(try readByteString())
        if options.requiresSortedKeys {
            // Sorted input can only repeat a key right after itself.
            if let last = frame.lastKey {
                if key == last { throw Reason.duplicateKey(key, offset: keyOffset) }
                if key < last { throw Reason.unsortedKey(key, offset: keyOffset) }
            }
            frame.lastKey = key
        } else if frame.entries[key] != nil {
            // Every earlier key already has its value stored, so this finds a repeat anywhere.
            throw Reason.duplicateKey(key, offset: keyOffset)
        }
        frame.pendingKey = key
    }

    /// `i<digits>e` with an optional minus; one canonical spelling only.
    private mutating func readInteger() throws(Reason) -> Int64 {
        let start = position
        position += 1  // 'i'
        var negative = false
        if position < buffer.count && buffer[position] == UInt8(ascii: "-") {
            negative = true
            position += 1
        }
        let firstDigit = position
        var value: Int64 = 0
        while position < buffer.count, case UInt8(ascii: "0")...UInt8(ascii: "9") = buffer[position] {
            let digit = Int64(buffer[position] &- UInt8(ascii: "0"))
            // Accumulate toward the sign so Int64.min is representable.
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = negative ? shifted.subtractingReportingOverflow(digit)
                                             : shifted.addingReportingOverflow(digit)
            if overflow1 || overflow2 { throw Reason.integerOverflow(offset: start) }
            value = next
            position += 1
        }
        let digitCount = position - firstDigit
        guard position < buffer.count else {
            throw Reason.unexpectedEndOfInput(offset: position, expected: digitCount == 0 ? "a digit" : "'e'")
        }
        if digitCount == 0 {
            if buffer[position] == UInt8(ascii: "e") { throw Reason.emptyInteger(offset: start) }
            throw Reason.unexpectedByte(buffer[position], offset: position, expected: "a digit")
        }
        if buffer[firstDigit] == UInt8(ascii: "0") {
            if digitCount > 1 { throw Reason.leadingZero(offset: start) }
            if negative { throw Reason.negativeZero(offset: start) }
        }
        guard buffer[position] == UInt8(ascii: "e") else {
            throw Reason.unexpectedByte(buffer[position], offset: position, expected: "a digit or 'e'")
        }
        position += 1
        return value
    }

    /// `<length>:<bytes>`; the length is checked against the limit and the input before copying.
    private mutating func readByteString() throws(Reason) -> [UInt8] {
        let start = position
        var length = 0
        while position < buffer.count, case UInt8(ascii: "0")...UInt8(ascii: "9") = buffer[position] {
            let digit = Int(buffer[position] &- UInt8(ascii: "0"))
            let (shifted, overflow1) = length.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = shifted.addingReportingOverflow(digit)
            if overflow1 || overflow2 { throw Reason.integerOverflow(offset: start) }
            length = next
            position += 1
        }
        guard position < buffer.count else {
            throw Reason.unexpectedEndOfInput(offset: position, expected: "':' after a string length")
        }
        guard buffer[position] == UInt8(ascii: ":") else {
            throw Reason.unexpectedByte(buffer[position], offset: position, expected: "a digit or ':'")
        }
        if buffer[start] == UInt8(ascii: "0") && position - start > 1 { throw Reason.leadingZero(offset: start) }
        if length > options.maxStringLength {
            throw Reason.stringLengthExceedsLimit(offset: start, limit: options.maxStringLength)
        }
        position += 1  // ':'
        let remaining = buffer.count - position
        guard length <= remaining else {
            throw Reason.stringLengthExceedsInput(length: length, offset: start, remaining: remaining)
        }
        let bytes = Array(UnsafeBufferPointer(rebasing: buffer[position..<(position + length)]))
        position += length
        return bytes
    }
}
