#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Sockets

/// How the firewall tells Burrow's packets apart from everyone else's.
///
/// - `mark` (default): the SO_MARK the socket seam puts on every socket when Burrow has CAP_NET_ADMIN
///   (running as root). Exact, and it survives in orphaned sockets (FIN and retransmissions after close).
/// - `user`: every socket owned by a dedicated user (`meta skuid`, pf's `user`). For running Burrow
///   without CAP_NET_ADMIN, as its own account: the marks cannot be set then. On macOS the only choice.
/// - `cgroup`: every socket created in a cgroup v2 (`socket cgroupv2`), e.g. the systemd unit's
///   `system.slice/burrow.service`. For a non-root Burrow that shares its user with other programs.
public enum FirewallMatch: Sendable, Equatable, CustomStringConvertible {
    case mark(UInt32)
    /// Always a numeric uid: names are resolved when parsed, so the generated rules and the live table
    /// compare as numbers (nft lists `meta skuid` numerically whatever was written).
    case user(uid: UInt32, name: String?)
    /// A path relative to the cgroup v2 root (/sys/fs/cgroup), without leading or trailing slashes.
    case cgroup(path: String)

    public static let burrowMark = FirewallMatch.mark(SocketMark.burrow)

    /// Parses `mark`, `uid:NAME` (or `uid:1001`) and `cgroup:PATH`, as `--match` and the config file take them.
    public init(parsing text: String) throws(FirewallError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "mark" {
            self = .burrowMark
        } else if trimmed.hasPrefix("uid:") {
            let who = String(trimmed.dropFirst(4))
            if who.isEmpty { throw .invalidMatch(text, reason: "uid: needs a user name or number (uid:burrow)") }
            if let uid = UInt32(who) {
                self = .user(uid: uid, name: nil)
            } else {
                guard let uid = Self.uid(ofUser: who) else {
                    throw .invalidMatch(text, reason: "there is no user named \"\(who)\" on this system")
                }
                self = .user(uid: uid, name: who)
            }
        } else if trimmed.hasPrefix("cgroup:") {
            let parts = trimmed.dropFirst(7).split(separator: "/", omittingEmptySubsequences: true)
            if parts.isEmpty {
                throw .invalidMatch(text, reason: "cgroup: needs a cgroup v2 path below /sys/fs/cgroup "
                                    + "(cgroup:system.slice/burrow.service)")
            }
            if parts.contains(where: { $0 == ".." || $0 == "." }) {
                throw .invalidMatch(text, reason: "the cgroup path may not contain . or .. components")
            }
            if let bad = parts.joined().first(where: { $0 == "\"" || $0 == "\\" || $0.isNewline }) {
                throw .invalidMatch(text, reason: "the cgroup path contains \"\(bad)\"")
            }
            self = .cgroup(path: parts.joined(separator: "/"))
        } else {
            throw .invalidMatch(text, reason: "expected mark, uid:NAME or cgroup:PATH")
        }
    }

    /// The cgroup's depth below the root, which `socket cgroupv2 level N` compares at.
    public var cgroupLevel: Int? {
        guard case .cgroup(let path) = self else { return nil }
        return path.split(separator: "/").count
    }

    public var description: String {
        switch self {
        case .mark(let mark): return "mark 0x" + String(mark, radix: 16)
        case .user(let uid, let name): return name.map { "uid \(uid) (\($0))" } ?? "uid \(uid)"
        case .cgroup(let path): return "cgroup \(path)"
        }
    }

    /// The `--match` spelling that produces this value again.
    public var argument: String {
        switch self {
        case .mark: return "mark"
        case .user(let uid, let name): return "uid:" + (name ?? String(uid))
        case .cgroup(let path): return "cgroup:" + path
        }
    }

    /// Equal in what the kernel sees: a user given by name or by number is the same uid.
    public static func == (lhs: FirewallMatch, rhs: FirewallMatch) -> Bool {
        switch (lhs, rhs) {
        case (.mark(let a), .mark(let b)): return a == b
        case (.user(let a, _), .user(let b, _)): return a == b
        case (.cgroup(let a), .cgroup(let b)): return a == b
        default: return false
        }
    }

    private static func uid(ofUser name: String) -> UInt32? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        let status = getpwnam_r(name, &entry, &buffer, buffer.count, &result)
        guard status == 0, let found = result else { return nil }
        return UInt32(found.pointee.pw_uid)
    }
}
