import FuzzSupport
@testable import Trackers

/// HTTP tracker announce responses (BEP 3, 7, 23, 24): the bencoded body. A response that parses has a
/// usable interval, no repeated peer, and an external address of 4 or 16 bytes when it has one; a refusal
/// is a `TrackerError` (typed throws) whose text can be printed.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPTracker(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let body = FuzzInput(start, count).rest
    do {
        let response = try HTTPAnnounceResponseParser.parse(body)
        fuzzCheck(response.interval > 0, "interval \(response.interval)")
        fuzzCheck(Set(response.peers).count == response.peers.count, "repeated peers")
        fuzzCheck([nil, 4, 16].contains(response.externalIP?.count), "external ip of \(response.externalIP!.count) bytes")
        fuzzCheck(response.seeders.map { $0 >= 0 } ?? true, "negative seeders")
        fuzzCheck(response.leechers.map { $0 >= 0 } ?? true, "negative leechers")
    } catch {
        exercise(error)
    }
    return 0
}
