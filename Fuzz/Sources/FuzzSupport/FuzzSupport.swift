/// A property the parser promises did not hold: stop with a message, so libFuzzer records the input as a
/// crash (a thrown error would only be an expected rejection).
public func fuzzCheck(
    _ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line
) {
    if !condition { fatalError("fuzz property violated: \(message())", file: file, line: line) }
}

/// Renders a thrown error the way Burrow prints it, so the error descriptions run on hostile input too.
public func exercise(_ error: any Error) {
    let text = String(describing: error)
    fuzzCheck(!text.isEmpty, "an error rendered as empty text: \(type(of: error))")
}

/// Takes leading bytes of a fuzz input as parameters (flags, chunk sizes) and leaves the rest as data.
public struct FuzzInput {
    public private(set) var bytes: ArraySlice<UInt8>

    public init(_ start: UnsafePointer<UInt8>?, _ count: Int) {
        bytes = start.map { Array(UnsafeBufferPointer(start: $0, count: count))[...] } ?? []
    }

    /// The next byte, or 0 once the input is used up.
    public mutating func byte() -> UInt8 {
        bytes.popFirst() ?? 0
    }

    public var rest: [UInt8] { Array(bytes) }
}
