/// An IPv4 or IPv6 endpoint of a peer, as it travels in compact form (BEP 23, BEP 7, BEP 11).
public struct PeerAddress: Hashable, Sendable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 bytes (IPv6), network order.
    public let ip: [UInt8]
    public let port: UInt16

    public init?(ip: [UInt8], port: UInt16) {
        guard ip.count == 4 || ip.count == 16 else { return nil }
        self.ip = ip
        self.port = port
    }

    public var isIPv6: Bool { ip.count == 16 }

    /// Parses a sequence of compact entries: 6 bytes each for IPv4, 18 for IPv6.
    /// Returns nil when the length is not a multiple of the entry size.
    public static func parseCompact(_ bytes: [UInt8], ipv6: Bool) -> [PeerAddress]? {
        let ipLength = ipv6 ? 16 : 4
        let stride = ipLength + 2
        guard bytes.count % stride == 0 else { return nil }
        var peers = [PeerAddress]()
        peers.reserveCapacity(bytes.count / stride)
        var i = 0
        while i < bytes.count {
            let ip = Array(bytes[i..<(i + ipLength)])
            let port = UInt16(bytes[i + ipLength]) << 8 | UInt16(bytes[i + ipLength + 1])
            peers.append(PeerAddress(ip: ip, port: port)!)
            i += stride
        }
        return peers
    }

    public var compact: [UInt8] { ip + [UInt8(port >> 8), UInt8(port & 0xff)] }

    /// Dotted quad for IPv4, RFC 5952 style for IPv6.
    public var ipString: String {
        if ip.count == 4 { return ip.map(String.init).joined(separator: ".") }
        var groups = [UInt16]()
        for i in stride(from: 0, to: 16, by: 2) { groups.append(UInt16(ip[i]) << 8 | UInt16(ip[i + 1])) }
        // Compress the longest run of zero groups (length >= 2) to "::".
        var bestStart = -1, bestLength = 0, runStart = -1
        // The non-zero sentinel group at index 8 closes a run that reaches the end.
        for (i, g) in zip(0..., groups + [1]) {
            if g == 0 && i < 8 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength { bestStart = runStart; bestLength = i - runStart }
                runStart = -1
            }
        }
        let hex = groups.map { String($0, radix: 16) }
        if bestLength < 2 { return hex.joined(separator: ":") }
        let head = hex[..<bestStart].joined(separator: ":")
        let tail = hex[(bestStart + bestLength)...].joined(separator: ":")
        return head + "::" + tail
    }

    public var description: String { isIPv6 ? "[\(ipString)]:\(port)" : "\(ipString):\(port)" }

    /// Parses "1.2.3.4:6881" or "[::1]:6881". Host names are not addresses and return nil.
    public init?(parsing text: String) {
        let host: Substring, portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard let port = UInt16(portText), let ip = IPAddressText.parse(String(host)) else { return nil }
        self.init(ip: ip, port: port)
    }
}

/// Numeric IP text parsing without touching the resolver (which only the socket seam may use).
public enum IPAddressText {
    public static func parse(_ text: String) -> [UInt8]? {
        if let v4 = parseV4(text) { return v4 }
        return parseV6(text)
    }

    public static func parseV4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out = [UInt8]()
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy(\.isASCII), let v = UInt8(p) else { return nil }
            out.append(v)
        }
        return out
    }

    public static func parseV6(_ text: String) -> [UInt8]? {
        var text = Substring(text)
        if let pct = text.firstIndex(of: "%") { text = text[..<pct] }  // zone id
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ s: String) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out = [UInt16]()
            let parts = s.split(separator: ":", omittingEmptySubsequences: false)
            for (i, p) in parts.enumerated() {
                if i == parts.count - 1, p.contains("."), let v4 = parseV4(String(p)) {
                    out.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                    out.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                } else {
                    guard !p.isEmpty, p.count <= 4, let v = UInt16(p, radix: 16) else { return nil }
                    out.append(v)
                }
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        var all: [UInt16]
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count < 8 else { return nil }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard head.count == 8 else { return nil }
            all = head
        }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }
}

extension StringProtocol {
    fileprivate func components(separatedBy separator: String) -> [String] {
        var result = [String]()
        var current = Substring(self)
        while let range = current.range(of: separator) {
            result.append(String(current[..<range.lowerBound]))
            current = current[range.upperBound...]
        }
        result.append(String(current))
        return result
    }
}

extension Substring {
    fileprivate func range(of needle: String) -> Range<Index>? {
        let n = Array(needle.utf8)
        var i = startIndex
        while i < endIndex {
            if self[i...].utf8.starts(with: n) {
                return i..<self.utf8.index(i, offsetBy: n.count)
            }
            i = index(after: i)
        }
        return nil
    }
}
