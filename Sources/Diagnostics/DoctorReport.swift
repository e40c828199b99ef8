#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The checks `burrow doctor` runs, in the order it prints them.
public enum CheckSuite {
    public static let standard: [any Check] = [
        BindingCheck(),
        InterfacesCheck(),
        FirewallCheck(),
        DNSRouteCheck(),
        DNSQueryCheck(),
        IPv6ExposureCheck(),
        ExternalAddressCheck(),
        LeakAlarmCheck(),
        BlockedPacketsCheck(),
    ]

    public static func run(
        _ checks: [any Check] = standard, on snapshot: SystemSnapshot, configuration: DoctorConfiguration
    ) -> DoctorReport {
        DoctorReport(checks: checks.map { $0.evaluate(snapshot, configuration: configuration) })
    }
}

/// All results of one doctor run: what `--json` prints, and what decides the exit status.
public struct DoctorReport: Sendable, Equatable, Codable {
    /// The worst status of any check (`ok` when there are none).
    public let status: CheckStatus
    public let problems: Int
    public let warnings: Int
    public let checks: [CheckResult]

    public init(checks: [CheckResult]) {
        self.checks = checks
        self.status = checks.map(\.status).max() ?? .ok
        self.problems = checks.filter { $0.status == .problem }.count
        self.warnings = checks.filter { $0.status == .warning }.count
    }

    /// 0 when nothing is a problem (warnings allowed), 1 otherwise.
    public var exitCode: Int32 { status == .problem ? 1 : 0 }

    public func result(id: String) -> CheckResult? { checks.first { $0.id == id } }

    /// Pretty-printed JSON with sorted keys (stable for diffs and scripts).
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// One line per check: mark, title, what was seen, and the fix when there is one; then a summary.
    public func humanReadable() -> String {
        var lines = checks.map { check in
            var line = "\(Self.mark(check.status)) \(check.title) [\(check.id)]: \(check.detail)"
            if let fix = check.fix { line += " — fix: \(fix)" }
            return line
        }
        switch (problems, warnings) {
        case (0, 0): lines.append("all \(checks.count) checks passed")
        default:
            lines.append("\(problems) problem\(problems == 1 ? "" : "s"), \(warnings) warning\(warnings == 1 ? "" : "s")")
        }
        return lines.joined(separator: "\n")
    }

    static func mark(_ status: CheckStatus) -> String {
        switch status {
        case .ok: return "✓"
        case .warning: return "!"
        case .problem: return "✗"
        }
    }
}
