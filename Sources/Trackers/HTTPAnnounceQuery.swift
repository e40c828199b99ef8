/// Builds the query of an HTTP announce (BEP 3, BEP 23 `compact=1`), appended to whatever query the
/// announce URL already carries (private trackers put passkeys there).
enum HTTPAnnounceQuery {
    static func url(for request: AnnounceRequest, announceURL: TrackerURL) -> TrackerURL {
        var parameters: [(String, String)] = [
            ("info_hash", percentEncode(request.infoHash.bytes)),
            ("peer_id", percentEncode(request.peerID.bytes)),
            ("port", String(request.port)),
            ("uploaded", String(max(0, request.uploaded))),
            ("downloaded", String(max(0, request.downloaded))),
            ("left", String(max(0, request.left))),
            ("compact", "1"),
            ("numwant", String(max(0, request.numWant))),
            ("key", hex8(request.key)),
        ]
        if request.event != .none { parameters.append(("event", request.event.rawValue)) }
        if let trackerID = request.trackerID { parameters.append(("trackerid", percentEncode(Array(trackerID.utf8)))) }

        let ours = parameters.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        var url = announceURL
        if let existing = announceURL.query, !existing.isEmpty {
            url.query = existing.hasSuffix("&") ? existing + ours : existing + "&" + ours
        } else {
            url.query = ours
        }
        return url
    }

    /// RFC 3986: unreserved characters stay, every other byte becomes %XX (binary hashes included).
    static func percentEncode(_ bytes: [UInt8]) -> String {
        let hexDigits = Array("0123456789ABCDEF".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 3)
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0f)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The key as 8 hex digits, the form most clients send.
    static func hex8(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}
