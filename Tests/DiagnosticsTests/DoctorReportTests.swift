import Foundation
import Testing
@testable import Diagnostics

@Suite struct DoctorReportTests {
    static let results = [
        CheckResult(id: "binding", title: "Binding configured", status: .ok, detail: "bound to wg0"),
        CheckResult(id: "ipv6-exposure", title: "IPv6 outside the tunnel", status: .warning,
                    detail: "global IPv6 on eth0", fix: "disable it"),
        CheckResult(id: "firewall", title: "Firewall layer", status: .problem, detail: "not loaded",
                    fix: "burrow firewall apply --bind wg0"),
    ]

    @Test func severityOrdersOkBelowWarningBelowProblem() {
        #expect(CheckStatus.ok < .warning)
        #expect(CheckStatus.warning < .problem)
        #expect([CheckStatus.warning, .problem, .ok].max() == .problem)
    }

    @Test func aProblemFailsTheRunAndWarningsDoNot() {
        let failing = DoctorReport(checks: Self.results)
        #expect(failing.status == .problem)
        #expect(failing.problems == 1)
        #expect(failing.warnings == 1)
        #expect(failing.exitCode == 1)

        let warnedOnly = DoctorReport(checks: Array(Self.results.prefix(2)))
        #expect(warnedOnly.status == .warning)
        #expect(warnedOnly.exitCode == 0)
        #expect(DoctorReport(checks: []).exitCode == 0)
    }

    @Test func humanOutputHasOneLinePerCheckWithMarkDetailAndFix() {
        let lines = DoctorReport(checks: Self.results).humanReadable().split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines[0] == "✓ Binding configured [binding]: bound to wg0")
        #expect(lines[1] == "! IPv6 outside the tunnel [ipv6-exposure]: global IPv6 on eth0 — fix: disable it")
        #expect(lines[2] == "✗ Firewall layer [firewall]: not loaded — fix: burrow firewall apply --bind wg0")
        #expect(lines[3] == "1 problem, 1 warning")
    }

    @Test func jsonCarriesEveryFieldAndNullFixes() throws {
        let json = try DoctorReport(checks: Self.results).json()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["status"] as? String == "problem")
        #expect(object["problems"] as? Int == 1)
        #expect(object["warnings"] as? Int == 1)
        let checks = try #require(object["checks"] as? [[String: Any]])
        #expect(checks.map { $0["id"] as? String } == ["binding", "ipv6-exposure", "firewall"])
        #expect(checks[0]["fix"] is NSNull)
        #expect(checks[2]["fix"] as? String == "burrow firewall apply --bind wg0")
        #expect(checks[1]["status"] as? String == "warning")

        let decoded = try JSONDecoder().decode(DoctorReport.self, from: Data(json.utf8))
        #expect(decoded == DoctorReport(checks: Self.results))
    }
}
