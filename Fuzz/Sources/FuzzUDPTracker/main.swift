import FuzzSupport
@testable import Trackers

/// UDP tracker responses (BEP 15). Input: one flags byte (bit 0: the tracker was reached over IPv6, so peers
/// are 18 bytes), then the datagram, which is read both as a connect and as an announce response. An
/// announce that parses has a usable interval and holds no more peers than the datagram has room for.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzUDPTracker(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let ipv6 = input.byte() & 1 != 0
    let datagram = input.rest

    if let header = UDPTrackerProtocol.header(of: datagram) { _ = header.transactionID }
    do {
        _ = try UDPTrackerProtocol.parseConnectResponse(datagram)
    } catch {
        exercise(error)
    }
    do {
        let response = try UDPTrackerProtocol.parseAnnounceResponse(datagram, ipv6: ipv6)
        fuzzCheck(response.interval > 0, "interval \(response.interval)")
        let room = (datagram.count - UDPTrackerProtocol.announceResponseHeaderSize) / (ipv6 ? 18 : 6)
        fuzzCheck(response.peers.count <= room, "\(response.peers.count) peers in room for \(room)")
        fuzzCheck(Set(response.peers).count == response.peers.count, "repeated peers")
    } catch {
        exercise(error)
    }
    return 0
}
