import TorrentModel

/// An announce URL taken apart, without Foundation (only the socket seam may touch networking code).
/// Invariant: `host` is non-empty, lowercased, without IPv6 brackets; `path` starts with "/"; `port` is 1...65535.
struct TrackerURL: Sendable, Equatable, CustomStringConvertible {
    enum Scheme: String, Sendable {
        case http, https, udp

        /// HTTP schemes have well-known ports; UDP trackers (BEP 15) have none, so the URL must say it.
        var defaultPort: Int? {
            switch self {
            case .http: return 80
            case .https: return 443
            case .udp: return nil
            }
        }
    }

    var scheme: Scheme
    var host: String
    var port: Int
    var path: String
    /// The query without its "?", nil when the URL has none.
    var query: String?

    /// True when `host` is a numeric IPv6 address (written in brackets in URLs and Host headers).
    var hostIsIPv6Literal: Bool { host.contains(":") }

    /// True when `host` is a numeric address of either family (TLS SNI must not carry one).
    var hostIsIPLiteral: Bool { IPAddressTextCheck.isNumeric(host) }

    /// `host` as it appears in a URL authority: IPv6 in brackets.
    var bracketedHost: String { hostIsIPv6Literal ? "[\(host)]" : host }

    /// HTTP Host header value: the port is included whenever it is not the scheme's default.
    var hostHeader: String { port == scheme.defaultPort ? bracketedHost : "\(bracketedHost):\(port)" }

    /// The request-target of an HTTP request line.
    var requestTarget: String { query.map { "\(path)?\($0)" } ?? path }

    var description: String { "\(scheme.rawValue)://\(hostHeader)\(requestTarget)" }

    init(scheme: Scheme, host: String, port: Int, path: String, query: String?) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.query = query
    }

    /// Parses an absolute URL; throws `TrackerError.unsupportedURL` naming the problem.
    init(parsing text: String) throws(TrackerError) {
        func reject(_ reason: String) -> TrackerError { .unsupportedURL(url: text, reason: reason) }
        if let bad = text.unicodeScalars.first(where: { $0.value <= 0x20 || $0.value == 0x7f || !$0.isASCII }) {
            throw reject("contains the character U+\(String(bad.value, radix: 16, uppercase: true))")
        }
        guard let schemeEnd = text.range(ofASCII: "://") else { throw reject("no scheme (expected http://, https:// or udp://)") }
        let schemeText = text[..<schemeEnd.lowerBound].lowercased()
        guard let scheme = Scheme(rawValue: schemeText) else {
            throw reject("scheme \"\(schemeText)\" is not supported (only http, https and udp)")
        }
        var rest = text[schemeEnd.upperBound...]
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }  // fragments never reach the server
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        let pathAndQuery = rest[authorityEnd...]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }

        let host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw reject("IPv6 address is missing its \"]\"") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            guard IPAddressTextCheck.isIPv6(String(host)) else { throw reject("\"\(host)\" is not an IPv6 address") }
            let afterBracket = authority[authority.index(after: close)...]
            if !afterBracket.isEmpty {
                guard afterBracket.hasPrefix(":") else { throw reject("unexpected text after the IPv6 address") }
                portText = afterBracket.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else { throw reject("no host") }

        let port: Int
        if let portText, !portText.isEmpty {
            guard portText.allSatisfy(\.isASCII), let value = Int(portText), (1...65535).contains(value) else {
                throw reject("port \"\(portText)\" is not a number from 1 to 65535")
            }
            port = value
        } else if let defaultPort = scheme.defaultPort {
            port = defaultPort
        } else {
            throw reject("a udp tracker URL needs a port")
        }

        var path = pathAndQuery
        var query: Substring?
        if let mark = pathAndQuery.firstIndex(of: "?") {
            path = pathAndQuery[..<mark]
            query = pathAndQuery[pathAndQuery.index(after: mark)...]
        }
        self.init(
            scheme: scheme, host: host.lowercased(), port: port,
            path: path.isEmpty ? "/" : String(path), query: query.map(String.init))
    }

    /// Resolves an HTTP `Location` header against this URL: absolute, scheme-relative, absolute-path
    /// or relative-path references.
    func resolving(reference: String) throws(TrackerError) -> TrackerURL {
        if reference.range(ofASCII: "://") != nil, let colon = reference.firstIndex(of: ":"),
           reference[..<colon].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == "." })
        {
            return try TrackerURL(parsing: reference)
        }
        if reference.hasPrefix("//") { return try TrackerURL(parsing: "\(scheme.rawValue):\(reference)") }
        var relative = Substring(reference)
        if let hash = relative.firstIndex(of: "#") { relative = relative[..<hash] }
        var resolved = self
        if relative.hasPrefix("?") {
            resolved.query = String(relative.dropFirst())
            return resolved
        }
        let mark = relative.firstIndex(of: "?")
        let refPath = mark.map { relative[..<$0] } ?? relative
        resolved.query = mark.map { String(relative[relative.index(after: $0)...]) }
        if refPath.hasPrefix("/") {
            resolved.path = String(refPath)
        } else if !refPath.isEmpty {
            let directory = path[...(path.lastIndex(of: "/") ?? path.startIndex)]
            resolved.path = String(directory) + refPath
        }
        if let bad = resolved.requestTarget.unicodeScalars.first(where: { $0.value <= 0x20 || $0.value == 0x7f }) {
            throw .unsupportedURL(url: reference, reason: "redirect contains the character U+\(String(bad.value, radix: 16))")
        }
        return resolved
    }
}

/// Numeric-address checks built on TorrentModel's parser (no resolver involved).
enum IPAddressTextCheck {
    static func isIPv6(_ text: String) -> Bool { text.contains(":") && IPAddressText.parseV6(text) != nil }
    static func isNumeric(_ text: String) -> Bool { IPAddressText.parse(text) != nil }
}

extension StringProtocol {
    /// First occurrence of an ASCII needle (Foundation's `range(of:)` is not available here).
    func range(ofASCII needle: String) -> Range<Index>? {
        let pattern = Array(needle.utf8)
        var index = startIndex
        while index < endIndex {
            if self[index...].utf8.starts(with: pattern) {
                return index..<self.utf8.index(index, offsetBy: pattern.count)
            }
            index = self.index(after: index)
        }
        return nil
    }
}
