#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which interfaces Burrow's traffic may use. Handed to the `SocketFactory`, the only place sockets exist.
public enum NetworkPolicy: Sendable, Equatable, CustomStringConvertible {
    /// `--allow-unbound`: the kernel picks routes. An explicit, loud escape hatch; never a fallback.
    case unbound
    /// `--bind`: only interfaces whose names match one of these names or glob patterns (`wg*`, `utun?`).
    case bound(interfacePatterns: [String])

    public var description: String {
        switch self {
        case .unbound: return "unbound (any interface)"
        case .bound(let patterns): return "bound to " + patterns.joined(separator: ",")
        }
    }

    /// True when `name` is an interface this policy allows. Unbound allows everything.
    public func allows(interfaceNamed name: String) -> Bool {
        switch self {
        case .unbound: return true
        case .bound(let patterns): return patterns.contains { InterfacePattern.matches(pattern: $0, name: name) }
        }
    }

    /// Names that look like physical adapters; binding to one defeats the point of a VPN, so we warn.
    public var physicalLookingPatterns: [String] {
        guard case .bound(let patterns) = self else { return [] }
        let physicalPrefixes = ["eth", "en", "wl", "wlan", "wlp", "enp", "eno", "ens"]
        return patterns.filter { p in physicalPrefixes.contains { p.hasPrefix($0) } }
    }
}

/// Shell-style glob matching of interface names (`*`, `?`, `[...]`), via fnmatch(3).
public enum InterfacePattern {
    public static func matches(pattern: String, name: String) -> Bool {
        fnmatch(pattern, name, 0) == 0
    }

    /// Interface names are at most 15 bytes and use a conservative character set.
    public static func validate(_ pattern: String) -> String? {
        if pattern.isEmpty { return "interface name is empty" }
        if pattern.utf8.count > 15 { return "interface name \"\(pattern)\" is longer than 15 bytes" }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:*?[]!@")
        if let bad = pattern.first(where: { !allowed.contains($0) }) {
            return "interface name \"\(pattern)\" contains \"\(bad)\""
        }
        return nil
    }
}

/// The SO_MARK value the socket seam puts on Burrow's sockets, and the firewall layer matches on.
public enum SocketMark {
    /// "BRW" in the upper bytes; distinctive enough not to collide with common VPN client marks
    /// (WireGuard's wg-quick uses 51820 = 0xca6c, Mullvad 0x6d6f6c65).
    public static let burrow: UInt32 = 0x4252_5700
}
