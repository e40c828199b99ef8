import Bencode
import FuzzSupport

/// Bencode (BEP 3). Strict decoding accepts exactly one encoding of each value, so decode -> encode must
/// give the input back byte for byte; lenient decoding (unsorted keys) must yield a value whose canonical
/// encoding decodes strictly to the same value; the raw ranges of a top-level dictionary must decode to its
/// entries; a decoded prefix must decode alone to the same value. Errors point inside the input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBencode(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = FuzzInput(start, count).rest

    do {
        let value = try Bencode.decode(input)
        fuzzCheck(Bencode.encode(value) == input, "strict decode -> encode is not the input")
    } catch {
        checkOffset(error, input)
    }

    do {
        let value = try Bencode.decode(input, options: .lenient)
        let canonical = Bencode.encode(value)
        fuzzCheck((try? Bencode.decode(canonical)) == value, "canonical encoding of a lenient value decodes differently")
    } catch {
        checkOffset(error, input)
    }

    do {
        let (value, consumed) = try Bencode.decodePrefix(input)
        fuzzCheck(consumed > 0 && consumed <= input.count, "decodePrefix consumed \(consumed) of \(input.count)")
        fuzzCheck((try? Bencode.decode(input[..<consumed])) == value, "a decoded prefix decodes differently alone")
    } catch {
        checkOffset(error, input)
    }

    do {
        let decoded = try Bencode.decodeTopLevelDictionary(input, options: .lenient)
        fuzzCheck(Set(decoded.entries.keys) == Set(decoded.rawRanges.keys), "raw ranges and entries name other keys")
        for (key, range) in decoded.rawRanges {
            let alone = try? Bencode.decode(input[range], options: .lenient)
            fuzzCheck(alone == decoded.entries[key], "raw range of \(key) decodes to another value")
        }
    } catch {
        checkOffset(error, input)
    }
    return 0
}

/// A syntax error names an offset inside the input (or just past its end, where more was expected).
private func checkOffset(_ error: any Error, _ input: [UInt8]) {
    exercise(error)
    guard let error = error as? BencodeError else {
        fuzzCheck(false, "decoding threw \(type(of: error)), not BencodeError")
        return
    }
    fuzzCheck(error.offset >= 0 && error.offset <= input.count, "error offset \(error.offset) outside \(input.count) bytes")
}
