import Foundation
import Firewall
import NIOCore
import Sockets

/// Every key Burrow reads, with the one parser all layers share. A layer hands each key a ``SettingValue``
/// (a typed TOML value, or the text of an environment variable or flag) and gets the typed value or a message.
public enum SettingKey: String, CaseIterable, Sendable {
    case networkBind = "network.bind"
    case networkAllowUnbound = "network.allow_unbound"
    case networkPort = "network.port"
    case networkDNS = "network.dns"
    case firewallMatch = "firewall.match"
    case storageStateDir = "storage.state_dir"

    public var table: String { String(rawValue.prefix { $0 != "." }) }
    public var name: String { String(rawValue.drop { $0 != "." }.dropFirst()) }

    /// The naming rule: `BURROW_` + table + `_` + key, upper-cased (`network.allow_unbound` →
    /// `BURROW_NETWORK_ALLOW_UNBOUND`).
    public var environmentVariable: String {
        "BURROW_" + rawValue.replacingOccurrences(of: ".", with: "_").uppercased()
    }

    public static let tables: [String] = {
        var seen: [String] = []
        for key in allCases where !seen.contains(key.table) { seen.append(key.table) }
        return seen
    }()

    public static func keys(in table: String) -> [SettingKey] { allCases.filter { $0.table == table } }

    /// Parses `value` and stores it into `settings`; a message (without key or source) when it is wrong.
    func apply(_ value: SettingValue, to settings: inout Settings) -> String? {
        switch self {
        case .networkBind:
            guard let names = value.strings() else {
                return "must be an interface name or a list of them, got \(value.kindDescription)"
            }
            if names.isEmpty { return "is empty; name at least one interface, e.g. bind = [\"wg0\"]" }
            for name in names {
                if let problem = InterfacePattern.validate(name) { return problem }
            }
            settings.network.bind = names
        case .networkAllowUnbound:
            guard let flag = value.boolean() else { return "must be true or false, got \(value.kindDescription)" }
            settings.network.allowUnbound = flag
        case .networkPort:
            guard let port = value.integer(), (1...65535).contains(port) else {
                return "must be an integer 1-65535, got \(value.kindDescription)"
            }
            settings.network.port = port
        case .networkDNS:
            guard let texts = value.strings() else {
                return "must be an IP address or a list of them, got \(value.kindDescription)"
            }
            var servers: [SocketAddress] = []
            for text in texts {
                guard let address = DNSServerText.parse(text) else { return "\"\(text)\" is not a numeric IP address" }
                servers.append(address)
            }
            settings.network.dns = servers
        case .firewallMatch:
            guard let text = value.string() else {
                return "must be a string: \"mark\", \"uid:NAME\" or \"cgroup:PATH\", got \(value.kindDescription)"
            }
            do { settings.firewall.match = try FirewallMatch(parsing: text) } catch { return "\(error)" }
        case .storageStateDir:
            guard let path = value.string() else { return "must be a folder path (a string), got \(value.kindDescription)" }
            if path.isEmpty { return "is empty; name a folder, e.g. state_dir = \"/var/lib/burrow\"" }
            if path.contains("\0") { return "contains a NUL character" }
            settings.storage.stateDir = path
        }
        return nil
    }

    /// The check that spans keys of one layer: `bind` and `allow_unbound = true` contradict each other.
    static func contradiction(in settings: Settings) -> (key: SettingKey, message: String)? {
        if settings.network.bind != nil, settings.network.allowUnbound == true {
            return (.networkAllowUnbound, "allow_unbound = true contradicts bind; keep one")
        }
        return nil
    }
}

/// A value as a layer hands it to ``SettingKey``: typed (TOML) or text (environment, flags). Text lists are
/// comma-separated; text booleans are `true` or `false`.
enum SettingValue {
    case string(String)
    case integer(Int)
    case boolean(Bool)
    case array([SettingValue])
    /// A TOML value of a type no key takes (float, date, table…), named for the message.
    case other(typeName: String)
    case text(String)

    func string() -> String? {
        switch self {
        case .string(let text), .text(let text): return text
        default: return nil
        }
    }

    func strings() -> [String]? {
        switch self {
        case .string(let text): return [text]
        case .text(let text):
            // `wg0, tun*` and a trailing comma read as a person means them; a typed TOML list is taken as written.
            return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        case .array(let items):
            var texts: [String] = []
            for item in items {
                guard case .string(let text) = item else { return nil }
                texts.append(text)
            }
            return texts
        default: return nil
        }
    }

    func integer() -> Int? {
        switch self {
        case .integer(let value): return value
        case .text(let text): return Int(text.trimmingCharacters(in: .whitespaces))
        default: return nil
        }
    }

    func boolean() -> Bool? {
        switch self {
        case .boolean(let value): return value
        case .text(let text):
            switch text.trimmingCharacters(in: .whitespaces) {
            case "true": return true
            case "false": return false
            default: return nil
            }
        default: return nil
        }
    }

    /// What was given, for messages: the value itself when short and typed, else its type.
    var kindDescription: String {
        switch self {
        case .string(let text): return "the string \"\(text)\""
        case .integer(let value): return String(value)
        case .boolean(let value): return String(value)
        case .array(let items):
            if let bad = items.first(where: { if case .string = $0 { return false } else { return true } }) {
                return "a list containing \(bad.kindDescription)"
            }
            return "a list"
        case .other(let typeName): return "a \(typeName)"
        case .text(let text): return Int(text) != nil ? text : "\"\(text)\""
        }
    }
}

/// DNS server addresses as `--dns`, `BURROW_NETWORK_DNS` and the file write them: numeric IPv4 or IPv6,
/// `[v6]` allowed.
public enum DNSServerText {
    public static func parse(_ text: String) -> SocketAddress? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let bare = trimmed.hasPrefix("[") && trimmed.hasSuffix("]") ? String(trimmed.dropFirst().dropLast()) : trimmed
        return try? SocketAddress(ipAddress: bare, port: 53)
    }
}
