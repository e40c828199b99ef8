import Foundation
import NIOCore
@testable import Sockets
import Testing
@testable import Diagnostics

@Suite struct RuntimeReportTests {
    @Test func writeThenReadGivesTheSameReport() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.path + "/nested/burrow/status.json"
        let report = Machine.report(external: "198.51.100.7", leakAlarm: "LEAK ALARM: test",
                                    kills: ReportedKillSwitch(count: 1, lastInterface: "wg0", lastReason: "admin down",
                                                              lastLatencyMicroseconds: 12.5))
        try report.write(to: path)
        #expect(try RuntimeReport.read(from: path) == report)

        // Rewriting replaces the file whole; no temporary file is left next to it.
        var newer = report
        newer.killSwitch.count = 2
        try newer.write(to: path)
        #expect(try RuntimeReport.read(from: path).killSwitch.count == 2)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: scratch.path + "/nested/burrow")
        #expect(leftovers == ["status.json"])
    }

    @Test func theFileIsReadableJSONWithNamedFields() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        try Machine.report(external: "198.51.100.7").write(to: scratch.path + "/status.json")
        let data = try Data(contentsOf: URL(fileURLWithPath: scratch.path + "/status.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["pid"] as? Int == 4242)
        #expect(object["format"] as? Int == 1)
        #expect(object["started"] as? String == "2023-11-14T22:13:20Z")
        let policy = try #require(object["policy"] as? [String: Any])
        #expect(policy["interfaces"] as? [String] == ["wg0"])
        let external = try #require(object["lastExternalAddress"] as? [String: Any])
        #expect(external["address"] as? String == "198.51.100.7")
    }

    @Test func aMissingFileIsReportedAsMissing() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let error = try #require(throws: RuntimeReportError.self) { try RuntimeReport.read(from: scratch.path + "/none.json") }
        #expect(error.isMissing)
        #expect(error.description.contains("none.json does not exist"))
    }

    @Test func garbageIsRejectedNamingTheFile() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.path + "/status.json"
        try Data("{\"pid\": 1}".utf8).write(to: URL(fileURLWithPath: path))
        let error = try #require(throws: RuntimeReportError.self) { try RuntimeReport.read(from: path) }
        #expect(!error.isMissing)
        #expect(error.description.contains(path))
        #expect(error.description.contains("missing field"))
    }

    @Test func anUnknownFormatIsRejected() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.path + "/status.json"
        var report = Machine.report()
        report.format = 99
        try report.write(to: path)
        let error = try #require(throws: RuntimeReportError.self) { try RuntimeReport.read(from: path) }
        #expect(error.reason == "has format 99; this burrow reads format 1")
    }

    @Test func aDirectoryOwnedBySomeoneElseIsRefused() throws {
        // /tmp/burrow-<uid> could be pre-created by another user; writing into it would hand them the file.
        guard geteuid() == 0 else { return }
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let directory = scratch.path + "/foreign"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        #expect(chown(directory, 65534, 65534) == 0)
        let error = try #require(throws: RuntimeReportError.self) { try Machine.report().write(to: directory + "/status.json") }
        #expect(error.reason.contains("belongs to uid 65534"))
    }

    @Test func defaultPathsFollowUserAndRuntimeDirectory() {
        #expect(RuntimeReport.defaultPath(userID: 0, environment: ["XDG_RUNTIME_DIR": "/run/user/0"]) == "/run/burrow/status.json")
        #expect(RuntimeReport.defaultPath(userID: 1000, environment: ["XDG_RUNTIME_DIR": "/run/user/1000"])
                == "/run/user/1000/burrow/status.json")
        #expect(RuntimeReport.defaultPath(userID: 1000, environment: [:]) == "/tmp/burrow-1000/status.json")
        #expect(RuntimeReport.defaultPath(userID: 1000, environment: ["XDG_RUNTIME_DIR": "relative"]) == "/tmp/burrow-1000/status.json")
    }

    @Test func policyRoundTripsThroughItsReportedForm() {
        #expect(ReportedPolicy(.unbound).networkPolicy == .unbound)
        #expect(ReportedPolicy(.bound(interfacePatterns: ["wg*", "tun0"])).networkPolicy == .bound(interfacePatterns: ["wg*", "tun0"]))
    }

    @Test func tunnelStateIsTakenFromTheGuardsAvailability() throws {
        let wg0 = UsableInterface(name: "wg0", index: 3, addresses: [try SocketAddressParsing.address("10.64.0.2")])
        #expect(ReportedTunnel(.available(interfaces: [wg0], changed: []))
                == ReportedTunnel(available: true, interfaces: [ReportedInterface(name: "wg0", addresses: ["10.64.0.2"])]))
        let down = ReportedTunnel(.unavailable(lost: "wg0", reason: "carrier lost", since: .now()))
        #expect(!down.available)
        #expect(down.unavailableReason == "wg0: carrier lost")
    }
}

enum SocketAddressParsing {
    static func address(_ text: String) throws -> SocketAddress { try SocketAddress(ipAddress: text, port: 0) }
}

@Suite struct RuntimeReportRemovalTests {
    @Test func removesOnlyItsOwnReport() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.path + "/status.json"
        try Machine.report().write(to: path)  // written by pid 4242
        #expect(!RuntimeReport.remove(at: path, writtenBy: 999_999))
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(RuntimeReport.remove(at: path, writtenBy: 4242))
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(!RuntimeReport.remove(at: path, writtenBy: 4242))
    }

    @Test func aReportFromLiveObjectsCarriesThisProcess() throws {
        let report = RuntimeReport(
            started: Date(timeIntervalSince1970: 1_700_000_000), policy: .unbound,
            availability: .available(interfaces: [], changed: []), lastExternalAddress: nil, leakAlarm: nil,
            killCount: 0, lastKill: nil)
        #expect(report.pid == getpid())
        #expect(report.policy.unbound)
        var snapshot = Machine.healthy
        snapshot.runtime = .running(report)
        let result = LeakAlarmCheck().evaluate(snapshot, configuration: DoctorConfiguration(policy: .unbound))
        #expect(result.detail == "no leak alarm; pid \(getpid()) running unbound (any interface); kill switch never fired")
    }

    @Test func datesAreISO8601UTCWithoutICU() throws {
        #expect(RuntimeReport.iso8601(Date(timeIntervalSince1970: 1_700_000_000.75)) == "2023-11-14T22:13:20Z")
        #expect(RuntimeReport.iso8601(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00Z")
        #expect(RuntimeReport.date(iso8601: "2023-11-14T22:13:20Z") == Date(timeIntervalSince1970: 1_700_000_000))
        #expect(RuntimeReport.date(iso8601: "2024-02-29T23:59:59Z") == Date(timeIntervalSince1970: 1_709_251_199))
        for bad in ["", "2023-11-14 22:13:20Z", "2023-11-14T22:13:20", "2023-13-14T22:13:20Z", "2023-11-14T22:13:2xZ",
                    "2023-11-14T22:13:20.5Z", "2023-11-14T22:13:20+01:00"] {
            #expect(RuntimeReport.date(iso8601: bad) == nil, "\(bad)")
        }
    }
}

@Suite struct RuntimeReportLockTests {
    @Test func onlyOneHolderAtATimeAndTheSecondIsToldWho() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.path + "/run/status.json"
        var first: RuntimeReportLock? = try RuntimeReportLock.acquire(for: path)
        try Machine.report().write(to: path)  // the owner's report, pid 4242
        let refused = try #require(throws: RuntimeReportError.self) { try RuntimeReportLock.acquire(for: path) }
        #expect(refused.description == "runtime report \(path) is owned by another running burrow (pid 4242): "
                + "this one writes no runtime report, so burrow doctor describes the other")
        #expect(first?.reportPath == path)
        first = nil  // the owner exits (the kernel drops the lock even after kill -9)
        #expect(try RuntimeReportLock.acquire(for: path).reportPath == path)
    }
}
