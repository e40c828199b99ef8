import Firewall
import Foundation
import NIOCore
import Sockets

/// Burrow's configuration file (default /etc/burrow/burrow.toml): a strict subset of TOML.
///
///     [network]
///     bind = ["wg0", "tun*"]      # or bind = "wg0"
///     allow_unbound = false
///     port = 6881
///     dns = ["10.64.0.1"]
///     [firewall]
///     match = "mark"              # mark | uid:NAME | cgroup:PATH
///
/// Supported: `[table]` headers, `key = value`, basic "strings" (escapes \" \\ \t \n) and literal
/// 'strings', integers, true/false, arrays of those (may span lines, trailing comma allowed), and `#`
/// comments. Unknown tables or keys, duplicates, and wrong value types are errors naming the line.
struct ConfigFile: Equatable {
    static let defaultPath = "/etc/burrow/burrow.toml"

    var bind: [String]?
    var allowUnbound: Bool?
    var port: Int?
    var dns: [SocketAddress]?
    var firewallMatch: FirewallMatch?

    /// Reads and parses `path`. A missing file is an error here; callers decide whether that matters.
    static func load(path: String) throws(ConfigFileError) -> ConfigFile {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ConfigFileError(source: path, line: nil, message: "cannot read the file: \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigFileError(source: path, line: nil, message: "the file is not UTF-8 text")
        }
        return try parse(text, source: path)
    }

    static func parse(_ text: String, source: String) throws(ConfigFileError) -> ConfigFile {
        var parser = TOMLSubsetParser(text: text, source: source)
        let entries = try parser.parse()
        var config = ConfigFile()
        for entry in entries {
            try config.apply(entry, source: source)
        }
        if config.allowUnbound == true, config.bind != nil {
            let line = entries.first { $0.key == "allow_unbound" }?.line
            throw ConfigFileError(source: source, line: line,
                                  message: "allow_unbound = true contradicts bind in [network]; keep one")
        }
        return config
    }

    private static let knownKeys = ["network": ["bind", "allow_unbound", "port", "dns"], "firewall": ["match"]]

    private mutating func apply(_ entry: TOMLEntry, source: String) throws(ConfigFileError) {
        func fail(_ message: String) -> ConfigFileError { ConfigFileError(source: source, line: entry.line, message: message) }
        guard let keys = Self.knownKeys[entry.table] else {
            throw fail("unknown table [\(entry.table)] (known: [network], [firewall])")
        }
        guard keys.contains(entry.key) else {
            throw fail("unknown key \"\(entry.key)\" in [\(entry.table)] (known: \(keys.joined(separator: ", ")))")
        }
        switch (entry.table, entry.key) {
        case ("network", "bind"):
            let names = try strings(entry.value, key: "bind", fail: fail)
            if names.isEmpty { throw fail("bind is empty; name at least one interface, e.g. bind = [\"wg0\"]") }
            for name in names {
                if let problem = InterfacePattern.validate(name) { throw fail("bind: \(problem)") }
            }
            bind = names
        case ("network", "allow_unbound"):
            guard case .boolean(let value) = entry.value else { throw fail("allow_unbound must be true or false") }
            allowUnbound = value
        case ("network", "port"):
            guard case .integer(let value) = entry.value, (1...65535).contains(value) else {
                throw fail("port must be an integer 1-65535, got \(entry.value)")
            }
            port = value
        case ("network", "dns"):
            dns = try strings(entry.value, key: "dns", fail: fail).map { text throws(ConfigFileError) in
                guard let address = DNSServerText.parse(text) else {
                    throw fail("dns: \"\(text)\" is not a numeric IP address")
                }
                return address
            }
        case ("firewall", "match"):
            guard case .string(let text) = entry.value else {
                throw fail("match must be a string: \"mark\", \"uid:NAME\" or \"cgroup:PATH\"")
            }
            do { firewallMatch = try FirewallMatch(parsing: text) } catch { throw fail("\(error)") }
        default:
            throw fail("unknown key \"\(entry.key)\"")
        }
    }

    /// A string or an array of strings.
    private func strings(_ value: TOMLValue, key: String,
                         fail: (String) -> ConfigFileError) throws(ConfigFileError) -> [String] {
        switch value {
        case .string(let text): return [text]
        case .array(let items):
            return try items.map { item throws(ConfigFileError) in
                guard case .string(let text) = item else { throw fail("\(key) must contain only strings, found \(item)") }
                return text
            }
        default: throw fail("\(key) must be a string or an array of strings, got \(value)")
        }
    }
}

/// A configuration file problem, with the file and (when known) the 1-based line.
struct ConfigFileError: Error, Equatable, CustomStringConvertible {
    var source: String
    var line: Int?
    var message: String

    var description: String { "\(source)\(line.map { ":\($0)" } ?? ""): \(message)" }
}

/// DNS server addresses as `--dns` and the config file write them: numeric IPv4 or IPv6, [v6] allowed.
enum DNSServerText {
    static func parse(_ text: String) -> SocketAddress? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let bare = trimmed.hasPrefix("[") && trimmed.hasSuffix("]") ? String(trimmed.dropFirst().dropLast()) : trimmed
        return try? SocketAddress(ipAddress: bare, port: 53)
    }
}

// MARK: - The TOML subset

enum TOMLValue: Equatable, CustomStringConvertible {
    case string(String)
    case integer(Int)
    case boolean(Bool)
    case array([TOMLValue])

    var description: String {
        switch self {
        case .string(let text): return "\"\(text)\""
        case .integer(let value): return String(value)
        case .boolean(let value): return String(value)
        case .array(let items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        }
    }
}

struct TOMLEntry: Equatable {
    var table: String
    var key: String
    var value: TOMLValue
    var line: Int
}

/// A small recursive-descent reader over Unicode scalars that tracks the line it is on.
struct TOMLSubsetParser {
    private let scalars: [Unicode.Scalar]
    private let source: String
    private var index = 0
    private var line = 1

    init(text: String, source: String) {
        self.scalars = Array(text.unicodeScalars)
        self.source = source
    }

    mutating func parse() throws(ConfigFileError) -> [TOMLEntry] {
        var entries: [TOMLEntry] = []
        var table: String?
        var seenTables: Set<String> = []
        var seenKeys: Set<String> = []
        while true {
            skipBlankLinesAndComments()
            guard let next = peek() else { return entries }
            if next == "[" {
                let headerLine = line
                advance()
                skipSpaces()
                let name = try bareKey(what: "table name")
                skipSpaces()
                try expect("]", what: "\"]\" closing the table header")
                try endOfLine()
                if seenTables.contains(name) {
                    throw error("table [\(name)] appears twice", at: headerLine)
                }
                seenTables.insert(name)
                table = name
                continue
            }
            let keyLine = line
            let key = try bareKey(what: "a key or a [table] header")
            skipSpaces()
            if peek() == "." { throw error("dotted keys are not supported; use a [table] header", at: keyLine) }
            try expect("=", what: "\"=\" after key \"\(key)\"")
            skipSpaces()
            let value = try parseValue()
            try endOfLine()
            guard let table else {
                throw error("key \"\(key)\" is outside any table; put it under [network] or [firewall]", at: keyLine)
            }
            if !seenKeys.insert("\(table).\(key)").inserted {
                throw error("key \"\(key)\" appears twice in [\(table)]", at: keyLine)
            }
            entries.append(TOMLEntry(table: table, key: key, value: value, line: keyLine))
        }
    }

    // MARK: values

    private mutating func parseValue() throws(ConfigFileError) -> TOMLValue {
        guard let next = peek() else { throw error("expected a value at the end of the file") }
        switch next {
        case "\"": return .string(try basicString())
        case "'": return .string(try literalString())
        case "[": return try array()
        case "t", "f": return .boolean(try boolean())
        case "+", "-", "0"..."9": return .integer(try integer())
        default:
            throw error("expected a value (a \"string\", an integer, true/false or an [array]), found \"\(next)\"")
        }
    }

    private mutating func basicString() throws(ConfigFileError) -> String {
        let startLine = line
        advance()
        var result = String.UnicodeScalarView()
        while let scalar = peek() {
            advance()
            switch scalar {
            case "\"": return String(result)
            case "\n": throw error("string is not closed before the end of the line", at: startLine)
            case "\\":
                guard let escaped = peek() else { break }
                advance()
                switch escaped {
                case "\"": result.append("\"")
                case "\\": result.append("\\")
                case "t": result.append("\t")
                case "n": result.append("\n")
                default: throw error("unsupported escape \"\\\(escaped)\" (supported: \\\" \\\\ \\t \\n)", at: startLine)
                }
            default: result.append(scalar)
            }
        }
        throw error("string is not closed before the end of the file", at: startLine)
    }

    private mutating func literalString() throws(ConfigFileError) -> String {
        let startLine = line
        advance()
        var result = String.UnicodeScalarView()
        while let scalar = peek() {
            advance()
            if scalar == "'" { return String(result) }
            if scalar == "\n" { throw error("string is not closed before the end of the line", at: startLine) }
            result.append(scalar)
        }
        throw error("string is not closed before the end of the file", at: startLine)
    }

    private mutating func array() throws(ConfigFileError) -> TOMLValue {
        let startLine = line
        advance()
        var items: [TOMLValue] = []
        while true {
            skipBlankLinesAndComments()
            guard let next = peek() else { throw error("array is not closed with \"]\"", at: startLine) }
            if next == "]" {
                advance()
                return .array(items)
            }
            items.append(try parseValue())
            skipBlankLinesAndComments()
            if peek() == nil {
                throw error("array is not closed with \"]\"", at: startLine)
            } else if peek() == "," {
                advance()
            } else if peek() != "]" {
                throw error("expected \",\" or \"]\" in the array")
            }
        }
    }

    private mutating func boolean() throws(ConfigFileError) -> Bool {
        let word = takeWhile { $0.properties.isAlphabetic }
        switch word {
        case "true": return true
        case "false": return false
        default: throw error("expected true or false, found \"\(word)\"")
        }
    }

    private mutating func integer() throws(ConfigFileError) -> Int {
        let text = takeWhile { "+-0123456789_".unicodeScalars.contains($0) }
        let digits = text.replacingOccurrences(of: "_", with: "")
        guard !text.hasPrefix("_"), !text.hasSuffix("_"), !text.contains("__"), let value = Int(digits) else {
            throw error("\"\(text)\" is not an integer")
        }
        if let next = peek(), next.properties.isAlphabetic || next == "." {
            throw error("only integers are supported here, found \"\(text)\(Character(next))…\"")
        }
        return value
    }

    // MARK: lexing helpers

    private mutating func bareKey(what: String) throws(ConfigFileError) -> String {
        let key = takeWhile { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }
        if key.isEmpty {
            let found = peek().map { "\"\(Character($0))\"" } ?? "the end of the file"
            throw error("expected \(what), found \(found)")
        }
        return key
    }

    private mutating func endOfLine() throws(ConfigFileError) {
        skipSpaces()
        if peek() == "#" { skipComment() }
        guard let next = peek() else { return }
        if next == "\n" { advance(); return }
        if next == "\r", index + 1 < scalars.count, scalars[index + 1] == "\n" { advance(); advance(); return }
        throw error("unexpected \"\(Character(next))\" after the value; one key = value per line")
    }

    private mutating func expect(_ scalar: Unicode.Scalar, what: String) throws(ConfigFileError) {
        guard peek() == scalar else {
            let found = peek().map { "\"\(Character($0))\"" } ?? "the end of the file"
            throw error("expected \(what), found \(found)")
        }
        advance()
    }

    private mutating func skipBlankLinesAndComments() {
        while let next = peek() {
            if next == " " || next == "\t" || next == "\n" || next == "\r" { advance() } else if next == "#" { skipComment() } else { return }
        }
    }

    private mutating func skipComment() {
        while let next = peek(), next != "\n" { advance() }
    }

    private mutating func skipSpaces() {
        while let next = peek(), next == " " || next == "\t" { advance() }
    }

    private mutating func takeWhile(_ predicate: (Unicode.Scalar) -> Bool) -> String {
        var result = String.UnicodeScalarView()
        while let next = peek(), predicate(next) {
            result.append(next)
            advance()
        }
        return String(result)
    }

    private func peek() -> Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

    private mutating func advance() {
        if scalars[index] == "\n" { line += 1 }
        index += 1
    }

    private func error(_ message: String, at errorLine: Int? = nil) -> ConfigFileError {
        ConfigFileError(source: source, line: errorLine ?? line, message: message)
    }
}
