import FuzzSupport
import Sockets

/// DNS responses (RFC 1035), as Burrow's own resolver reads them from the tunnel's DNS server. A response
/// that parses must answer address lookups for its question (following CNAME chains inside the answer, which
/// must stop even when the chain loops) with addresses of the right size; names stay within 255 bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDNS(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let message = FuzzInput(start, count).rest
    let response: DNSResponse
    do {
        response = try DNSMessageCodec.decodeResponse(message)
    } catch {
        exercise(error)
        fuzzCheck(error.offset >= 0 && error.offset <= message.count, "error offset \(error.offset)")
        return 0
    }
    fuzzCheck(DNSMessageCodec.peekID(message) == response.id, "peekID disagrees with the decoded id")
    let names = response.questions.map(\.name) + response.answers.map(\.name)
    for name in names {
        let wireLength = name.labels.reduce(1) { $0 + 1 + $1.count }
        fuzzCheck(wireLength <= 255, "a name of \(wireLength) bytes")
        _ = name.description
    }
    for name in names.prefix(4) {
        for (type, size) in [(DNSRecordType.a, 4), (DNSRecordType.aaaa, 16)] {
            let (addresses, _) = response.addresses(for: name, type: type)
            fuzzCheck(addresses.allSatisfy { $0.count == size }, "\(type) addresses of the wrong size")
        }
    }
    return 0
}
