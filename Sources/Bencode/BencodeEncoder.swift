/// Canonical bencode writer.
enum BencodeEncoder {
    static func append(_ value: BValue, to out: inout [UInt8]) {
        switch value {
        case .integer(let v):
            out.append(UInt8(ascii: "i"))
            appendDecimal(v, to: &out)
            out.append(UInt8(ascii: "e"))
        case .bytes(let bytes):
            appendByteString(bytes, to: &out)
        case .list(let items):
            out.append(UInt8(ascii: "l"))
            for item in items { append(item, to: &out) }
            out.append(UInt8(ascii: "e"))
        case .dictionary(let entries):
            out.append(UInt8(ascii: "d"))
            for key in entries.keys.sorted() {
                appendByteString(key.bytes, to: &out)
                append(entries[key]!, to: &out)
            }
            out.append(UInt8(ascii: "e"))
        }
    }

    /// Exact size of the encoding, so the output buffer is allocated once.
    static func encodedSize(of value: BValue) -> Int {
        switch value {
        case .integer(let v): return 2 + decimalWidth(v)
        case .bytes(let bytes): return byteStringSize(bytes.count)
        case .list(let items): return items.reduce(2) { $0 + encodedSize(of: $1) }
        case .dictionary(let entries):
            return entries.reduce(2) { $0 + byteStringSize($1.key.bytes.count) + encodedSize(of: $1.value) }
        }
    }

    private static func appendByteString(_ bytes: [UInt8], to out: inout [UInt8]) {
        appendDecimal(Int64(bytes.count), to: &out)
        out.append(UInt8(ascii: ":"))
        out.append(contentsOf: bytes)
    }

    private static func byteStringSize(_ count: Int) -> Int { decimalWidth(Int64(count)) + 1 + count }

    private static func decimalWidth(_ v: Int64) -> Int {
        var magnitude = v.magnitude
        var width = v < 0 ? 2 : 1
        while magnitude >= 10 { magnitude /= 10; width += 1 }
        return width
    }

    /// Writes digits without going through String (this runs for every integer and string length).
    private static func appendDecimal(_ v: Int64, to out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: decimalWidth(v)))
        if v < 0 { out[start] = UInt8(ascii: "-") }
        var magnitude = v.magnitude  // UInt64, so Int64.min needs no special case
        var index = out.count - 1
        repeat {
            out[index] = UInt8(ascii: "0") + UInt8(magnitude % 10)
            magnitude /= 10
            index -= 1
        } while magnitude > 0
    }
}
