/// How one check came out. Ordered by severity, so the worst of several results is their maximum.
public enum CheckStatus: String, Sendable, Codable, Comparable, CaseIterable {
    /// Nothing to do.
    case ok
    /// Burrow still protects its traffic, but something deserves attention. Does not fail `burrow doctor`.
    case warning
    /// Traffic may leave outside the tunnel, or Burrow cannot work: `burrow doctor` exits non-zero.
    case problem

    private var severity: Int {
        switch self {
        case .ok: return 0
        case .warning: return 1
        case .problem: return 2
        }
    }

    public static func < (lhs: CheckStatus, rhs: CheckStatus) -> Bool { lhs.severity < rhs.severity }
}

/// What one check found, in words a user can act on.
public struct CheckResult: Sendable, Equatable, Codable {
    /// Stable machine name (`binding`, `dns-route`, ...), for scripts reading `--json`.
    public let id: String
    public let title: String
    public let status: CheckStatus
    /// What was observed, including for `ok` (so the user sees what was checked).
    public let detail: String
    /// What to do about it; nil when there is nothing to do.
    public let fix: String?

    public init(id: String, title: String, status: CheckStatus, detail: String, fix: String? = nil) {
        self.id = id
        self.title = title
        self.status = status
        self.detail = detail
        self.fix = fix
    }

    private enum CodingKeys: String, CodingKey { case id, title, status, detail, fix }

    /// `fix` is written as `null` rather than left out, so every object in `--json` has the same keys.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(title, forKey: .title)
        try container.encode(status, forKey: .status)
        try container.encode(detail, forKey: .detail)
        try container.encode(fix, forKey: .fix)
    }
}
