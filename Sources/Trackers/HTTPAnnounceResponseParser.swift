import Bencode
import TorrentModel

/// Turns the bencoded body of an HTTP announce response into an `AnnounceResponse` (BEP 3, 7, 23, 24).
/// Structural fields (interval, peers) must have the right shape or the whole response is refused with
/// a message naming the field; purely informational ones (`external ip`) are dropped when malformed.
enum HTTPAnnounceResponseParser {
    /// Used when a tracker leaves `interval` out, which some do on otherwise useful answers.
    static let defaultInterval = 1800

    static func parse(_ body: [UInt8]) throws(TrackerError) -> AnnounceResponse {
        let top = try decodeDictionary(body)
        if let reason = top["failure reason"] {
            throw .failure(reason: text(reason) ?? "(failure reason is \(reason.kindWithArticle))")
        }

        var response = AnnounceResponse(interval: try positiveInt(top, "interval") ?? defaultInterval)
        response.minInterval = try positiveInt(top, "min interval")
        response.seeders = try nonNegativeInt(top, "complete")
        response.leechers = try nonNegativeInt(top, "incomplete")
        response.warning = top["warning message"].flatMap(text)
        response.trackerID = top["tracker id"].flatMap(text)
        if let ip = top["external ip"]?.bytes, ip.count == 4 || ip.count == 16 { response.externalIP = ip }

        var peers = [PeerAddress]()
        if let value = top["peers"] { peers += try parsePeers(value) }
        if let value = top["peers6"] { peers += try parsePeers6(value) }
        var seen = Set<PeerAddress>()
        response.peers = peers.filter { seen.insert($0).inserted }
        return response
    }

    /// The body as a dictionary; used on error statuses too, where a failure reason may hide.
    static func decodeDictionary(_ body: [UInt8]) throws(TrackerError) -> BValue {
        if body.isEmpty { throw .malformedResponse("empty body") }
        let value: BValue
        do {
            value = try Bencode.decode(body, options: .lenient)
        } catch {
            throw .malformedResponse("body is not bencode (\(error)); it starts with \(preview(body))")
        }
        guard value.dict != nil else { throw .malformedResponse("body is a bencoded \(value.kindName), not a dictionary") }
        return value
    }

    /// `peers`: a compact string of 6-byte entries (BEP 23) or a list of dictionaries (BEP 3).
    static func parsePeers(_ value: BValue) throws(TrackerError) -> [PeerAddress] {
        switch value {
        case .bytes(let bytes):
            guard let peers = PeerAddress.parseCompact(bytes, ipv6: false) else {
                throw .malformedResponse("peers: length \(bytes.count) is not a multiple of 6")
            }
            return peers
        case .list(let entries):
            var peers = [PeerAddress]()
            for (index, entry) in entries.enumerated() {
                if let peer = try parsePeerDictionary(entry, index: index) { peers.append(peer) }
            }
            return peers
        default:
            throw .malformedResponse("peers: expected a byte string or a list, found \(value.kindWithArticle)")
        }
    }

    /// `peers6`: a compact string of 18-byte entries (BEP 7).
    static func parsePeers6(_ value: BValue) throws(TrackerError) -> [PeerAddress] {
        guard let bytes = value.bytes else {
            throw .malformedResponse("peers6: expected a byte string, found \(value.kindWithArticle)")
        }
        guard let peers = PeerAddress.parseCompact(bytes, ipv6: true) else {
            throw .malformedResponse("peers6: length \(bytes.count) is not a multiple of 18")
        }
        return peers
    }

    /// One `{ip, port, peer id}` entry. Host names (allowed by BEP 3) are skipped: resolving them is
    /// not the tracker client's business, and they are vanishingly rare.
    static func parsePeerDictionary(_ entry: BValue, index: Int) throws(TrackerError) -> PeerAddress? {
        guard entry.dict != nil else {
            throw .malformedResponse("peers[\(index)]: expected a dictionary, found \(entry.kindWithArticle)")
        }
        guard let ipText = entry["ip"].flatMap(text) else {
            throw .malformedResponse("peers[\(index)]: \"ip\" is missing or not text")
        }
        guard let port = entry["port"]?.int else {
            throw .malformedResponse("peers[\(index)]: \"port\" is missing or not an integer")
        }
        guard (1...65535).contains(port) else {
            throw .malformedResponse("peers[\(index)]: port \(port) is out of range")
        }
        guard let ip = IPAddressText.parse(ipText) else { return nil }
        return PeerAddress(ip: ip, port: UInt16(port))
    }

    private static func positiveInt(_ top: BValue, _ key: String) throws(TrackerError) -> Int? {
        guard let value = try nonNegativeInt(top, key) else { return nil }
        guard value > 0 else { throw .malformedResponse("\(key): \(value) is not a positive number of seconds") }
        return value
    }

    private static func nonNegativeInt(_ top: BValue, _ key: String) throws(TrackerError) -> Int? {
        guard let value = top[key] else { return nil }
        guard let number = value.int else {
            throw .malformedResponse("\(key): expected an integer, found \(value.kindWithArticle)")
        }
        guard number >= 0, number <= Int64(Int32.max) else {
            throw .malformedResponse("\(key): \(number) is out of range")
        }
        return Int(number)
    }

    /// Tracker text is meant to be UTF-8 but is not always; invalid bytes are replaced rather than refused.
    private static func text(_ value: BValue) -> String? {
        value.bytes.map { String(decoding: $0, as: UTF8.self) }
    }

    /// The first bytes of a body for an error message, shown as text when printable.
    static func preview(_ body: [UInt8]) -> String {
        let head = Array(body.prefix(40))
        let printable = head.allSatisfy { (0x20..<0x7f).contains($0) || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }
        let shown = printable
            ? "\"" + String(decoding: head, as: UTF8.self).replacingNewlines() + "\""
            : "0x" + HexCoding.encode(head)
        return body.count > head.count ? shown + "…" : shown
    }
}

extension BValue {
    /// "an integer", "a byte string": for error messages.
    var kindWithArticle: String { (kindName.hasPrefix("i") ? "an " : "a ") + kindName }
}

extension String {
    fileprivate func replacingNewlines() -> String {
        String(unicodeScalars.map { $0 == "\n" || $0 == "\r" || $0 == "\t" ? " " : Character($0) })
    }
}
