import TorrentModel

/// The packets of the UDP tracker protocol (BEP 15), all big-endian.
enum UDPTrackerProtocol {
    /// The magic constant that opens every connect request.
    static let protocolID: UInt64 = 0x417_2710_1980

    enum Action: UInt32 {
        case connect = 0, announce = 1, scrape = 2, error = 3
    }

    static let connectResponseSize = 16
    static let announceResponseHeaderSize = 20

    static func connectRequest(transactionID: UInt32) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(16)
        out.appendBigEndian(protocolID)
        out.appendBigEndian(Action.connect.rawValue)
        out.appendBigEndian(transactionID)
        return out
    }

    /// 98 bytes. The IP field stays 0 so the tracker uses the packet's source address.
    static func announceRequest(connectionID: UInt64, transactionID: UInt32, request: AnnounceRequest) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(98)
        out.appendBigEndian(connectionID)
        out.appendBigEndian(Action.announce.rawValue)
        out.appendBigEndian(transactionID)
        out.append(contentsOf: request.infoHash.bytes)
        out.append(contentsOf: request.peerID.bytes)
        out.appendBigEndian(UInt64(max(0, request.downloaded)))
        out.appendBigEndian(UInt64(max(0, request.left)))
        out.appendBigEndian(UInt64(max(0, request.uploaded)))
        out.appendBigEndian(eventCode(request.event))
        out.appendBigEndian(UInt32(0))
        out.appendBigEndian(request.key)
        out.appendBigEndian(UInt32(bitPattern: Int32(clamping: request.numWant)))
        out.appendBigEndian(request.port)
        return out
    }

    /// BEP 15 numbers events differently from their order in BEP 3.
    static func eventCode(_ event: AnnounceEvent) -> UInt32 {
        switch event {
        case .none: return 0
        case .completed: return 1
        case .started: return 2
        case .stopped: return 3
        }
    }

    /// Action and transaction id of a datagram; nil when it is too short to carry them.
    static func header(of datagram: [UInt8]) -> (action: UInt32, transactionID: UInt32)? {
        guard datagram.count >= 8 else { return nil }
        return (datagram.readBigEndianUInt32(at: 0), datagram.readBigEndianUInt32(at: 4))
    }

    /// Checks the action of a datagram whose transaction id already matched; an error action becomes
    /// `TrackerError.failure` with the tracker's message.
    static func requireAction(_ expected: Action, in datagram: [UInt8], context: String) throws(TrackerError) {
        guard let header = header(of: datagram) else {
            throw .malformedResponse("\(context): \(datagram.count) bytes is too short for a header")
        }
        if header.action == Action.error.rawValue {
            let message = String(decoding: datagram.dropFirst(8), as: UTF8.self)
            throw .failure(reason: message.isEmpty ? "(the tracker sent an error without a message)" : message)
        }
        guard header.action == expected.rawValue else {
            throw .malformedResponse("\(context): action \(header.action), expected \(expected.rawValue) (\(expected))")
        }
    }

    static func parseConnectResponse(_ datagram: [UInt8]) throws(TrackerError) -> UInt64 {
        try requireAction(.connect, in: datagram, context: "connect response")
        guard datagram.count >= connectResponseSize else {
            throw .malformedResponse("connect response: \(datagram.count) bytes, \(connectResponseSize) needed")
        }
        return datagram.readBigEndianUInt64(at: 8)
    }

    /// Peers are 6 bytes each, or 18 when the tracker was reached over IPv6 (BEP 15, IPv6 section).
    static func parseAnnounceResponse(_ datagram: [UInt8], ipv6: Bool) throws(TrackerError) -> AnnounceResponse {
        try requireAction(.announce, in: datagram, context: "announce response")
        guard datagram.count >= announceResponseHeaderSize else {
            throw .malformedResponse(
                "announce response: \(datagram.count) bytes, at least \(announceResponseHeaderSize) needed")
        }
        let interval = datagram.readBigEndianUInt32(at: 8)
        guard interval > 0, interval <= UInt32(Int32.max) else {
            throw .malformedResponse("announce response: interval \(interval) is not a usable number of seconds")
        }
        let leechers = datagram.readBigEndianUInt32(at: 12)
        let seeders = datagram.readBigEndianUInt32(at: 16)
        let peerBytes = Array(datagram[announceResponseHeaderSize...])
        guard let peers = PeerAddress.parseCompact(peerBytes, ipv6: ipv6) else {
            throw .malformedResponse(
                "announce response: peers length \(peerBytes.count) is not a multiple of \(ipv6 ? 18 : 6)")
        }
        var seen = Set<PeerAddress>()
        return AnnounceResponse(
            interval: Int(interval), peers: peers.filter { seen.insert($0).inserted },
            seeders: Int(seeders), leechers: Int(leechers))
    }
}

extension [UInt8] {
    mutating func appendBigEndian<Integer: FixedWidthInteger>(_ value: Integer) {
        var bigEndian = value.bigEndian
        Swift.withUnsafeBytes(of: &bigEndian) { append(contentsOf: $0) }
    }

    func readBigEndianUInt32(at offset: Int) -> UInt32 {
        self[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    func readBigEndianUInt64(at offset: Int) -> UInt64 {
        self[offset..<(offset + 8)].reduce(0) { $0 << 8 | UInt64($1) }
    }
}
