/// Why a magnet URI was refused.
public enum MagnetLinkError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Does not start with `magnet:?`.
    case notAMagnetURI
    /// No `xt=urn:btih:` parameter (v2-only `urn:btmh:` links land here too: v1 swarms only).
    case missingInfoHash
    /// `xt=urn:btih:` followed by something that is neither 40 hex nor 32 base32 characters.
    case invalidInfoHash(String)
    /// Two `xt=urn:btih:` parameters naming different torrents.
    case conflictingInfoHashes
    /// A parameter whose percent-escapes are malformed or do not decode to UTF-8.
    case invalidPercentEncoding(parameter: String)

    public var description: String {
        switch self {
        case .notAMagnetURI: return "not a magnet URI (expected it to start with \"magnet:?\")"
        case .missingInfoHash: return "magnet URI has no \"xt=urn:btih:\" info hash"
        case .invalidInfoHash(let text):
            return "magnet info hash \(text.debugDescription) is neither 40 hex nor 32 base32 characters"
        case .conflictingInfoHashes: return "magnet URI names two different info hashes"
        case .invalidPercentEncoding(let parameter):
            return "magnet parameter \(parameter.debugDescription) has invalid percent-encoding"
        }
    }
}

/// Something in a magnet URI that was left out rather than refusing the whole link; shown to the user.
/// The description quotes the link's text as it was: escape it (SafeText) before printing.
public enum MagnetLinkWarning: Equatable, Sendable, CustomStringConvertible {
    /// An `x.pe` value that is not `ip:port` or `[ipv6]:port` with a port above 0 (host names included:
    /// peers are dialled by address only, and names would need a lookup outside the tunnel's resolver).
    case invalidPeer(String)

    public var description: String {
        switch self {
        case .invalidPeer(let text):
            return "ignoring magnet peer x.pe=\"\(text)\": expected ip:port or [ipv6]:port"
        }
    }
}

extension MagnetLink {
    /// Parses `magnet:?xt=urn:btih:<hash>&dn=<name>&tr=<tracker>&x.pe=<ip:port>` (BEP 9), dropping
    /// what `parseReportingWarnings` would warn about.
    public static func parse(_ uri: String) throws -> MagnetLink {
        try parseReportingWarnings(uri).link
    }

    /// Parses `magnet:?xt=urn:btih:<hash>&dn=<name>&tr=<tracker>&x.pe=<ip:port>` (BEP 9).
    /// Numbered variants (`tr.1`, `xt.2`) are accepted; unknown parameters are ignored. Trackers and
    /// peers keep their order with repeats and empty values dropped; unusable peers are dropped with
    /// a warning each.
    public static func parseReportingWarnings(_ uri: String) throws -> (link: MagnetLink, warnings: [MagnetLinkWarning]) {
        let text = uri.trimmingWhitespace()
        let scheme = "magnet:?"
        guard text.utf8.count >= scheme.utf8.count,
              String(decoding: text.utf8.prefix(scheme.utf8.count), as: UTF8.self).lowercased() == scheme
        else { throw MagnetLinkError.notAMagnetURI }
        let query = text.utf8.dropFirst(scheme.utf8.count)

        var infoHash: InfoHash?
        var displayName: String?
        var trackers = [String]()
        var peers = [String]()
        var warnings = [MagnetLinkWarning]()
        for pair in query.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let rawKey = String(decoding: parts[0], as: UTF8.self)
            let rawValue = parts.count > 1 ? Array(parts[1]) : []
            switch canonicalKey(rawKey) {
            case "xt":
                let value = try percentDecoded(rawValue, parameter: rawKey, plusIsSpace: false)
                guard let hash = try btihHash(value) else { continue }
                if let existing = infoHash, existing != hash { throw MagnetLinkError.conflictingInfoHashes }
                infoHash = hash
            case "dn":
                if displayName == nil {
                    displayName = try percentDecoded(rawValue, parameter: rawKey, plusIsSpace: true)
                }
            case "tr":
                let tracker = try percentDecoded(rawValue, parameter: rawKey, plusIsSpace: false).trimmingWhitespace()
                if !tracker.isEmpty && !trackers.contains(tracker) { trackers.append(tracker) }
            case "x.pe":
                let peer = try percentDecoded(rawValue, parameter: rawKey, plusIsSpace: false).trimmingWhitespace()
                guard !peer.isEmpty && !peers.contains(peer) else { continue }
                guard let address = PeerAddress(parsing: peer), address.port != 0 else {
                    if !warnings.contains(.invalidPeer(peer)) { warnings.append(.invalidPeer(peer)) }
                    continue
                }
                peers.append(peer)
            default:
                continue
            }
        }
        guard let infoHash else { throw MagnetLinkError.missingInfoHash }
        return (MagnetLink(infoHash: infoHash, displayName: displayName, trackers: trackers, peers: peers), warnings)
    }

    /// The link rendered back as a URI (hex info hash; `parse(uri)` returns an equal link).
    public var uri: String {
        var out = "magnet:?xt=urn:btih:" + infoHash.hex
        if let displayName { out += "&dn=" + Self.percentEncoded(displayName) }
        for tracker in trackers { out += "&tr=" + Self.percentEncoded(tracker) }
        for peer in peers { out += "&x.pe=" + Self.percentEncoded(peer) }
        return out
    }

    /// "tr.1" -> "tr": the numbered forms some generators emit. Keys compare case-insensitively.
    private static func canonicalKey(_ key: String) -> String {
        let lower = key.lowercased()
        for base in ["xt", "dn", "tr"] where lower.hasPrefix(base + ".") {
            let suffix = lower.dropFirst(base.count + 1)
            if !suffix.isEmpty && suffix.allSatisfy({ $0.isASCII && $0.isNumber }) { return base }
        }
        return lower
    }

    /// The info hash of an `urn:btih:` value; nil for other URN kinds (e.g. v2 `urn:btmh:`).
    private static func btihHash(_ value: String) throws -> InfoHash? {
        let prefix = "urn:btih:"
        guard value.lowercased().hasPrefix(prefix) else { return nil }
        let hashText = String(value.dropFirst(prefix.count))
        if hashText.count == 40, let hash = InfoHash(hex: hashText) { return hash }
        if hashText.count == 32, let bytes = Base32.decode(hashText), let hash = InfoHash(bytes: bytes) { return hash }
        throw MagnetLinkError.invalidInfoHash(hashText)
    }

    private static func percentDecoded(_ bytes: [UInt8], parameter: String, plusIsSpace: Bool) throws -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: "%"):
                guard i + 2 < bytes.count, let hex = HexCoding.decode(String(decoding: bytes[(i + 1)...(i + 2)], as: UTF8.self))
                else { throw MagnetLinkError.invalidPercentEncoding(parameter: parameter) }
                out.append(hex[0])
                i += 3
            case UInt8(ascii: "+") where plusIsSpace:
                out.append(UInt8(ascii: " "))
                i += 1
            default:
                out.append(bytes[i])
                i += 1
            }
        }
        let text = String(decoding: out, as: UTF8.self)
        guard text.utf8.elementsEqual(out) else { throw MagnetLinkError.invalidPercentEncoding(parameter: parameter) }
        return text
    }

    /// Escapes everything except RFC 3986 unreserved characters.
    private static func percentEncoded(_ text: String) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out = [UInt8]()
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// RFC 4648 base32 (the older magnet info-hash spelling), case-insensitive, no padding.
enum Base32 {
    static func decode(_ text: String) -> [UInt8]? {
        var out = [UInt8]()
        var buffer: UInt32 = 0
        var bits = 0
        for c in text.utf8 {
            let value: UInt8
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = c - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = c - UInt8(ascii: "a")
            case UInt8(ascii: "2")...UInt8(ascii: "7"): value = c - UInt8(ascii: "2") + 26
            default: return nil
            }
            buffer = buffer << 5 | UInt32(value)
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
                buffer &= (1 << UInt32(bits)) - 1
            }
        }
        return out
    }
}
