import Diagnostics
import Foundation
import Logging
import Testing
@testable import Engine

/// Two clients pointed at one runtime report path do not fight over it: the first owns it until it stops.
@Suite(.serialized) struct RuntimeReportOwnershipTests {
    static func client(reportPath: String) -> BurrowClient {
        var logger = Logger(label: "report-test")
        logger.logLevel = .critical
        var configuration = ClientConfiguration(networkPolicy: .unbound, listenPort: SwarmTests.freePort())
        configuration.runtimeReportPath = reportPath
        return BurrowClient(configuration: configuration, logger: logger)
    }

    static func waitForFile(_ path: String) async throws {
        for _ in 0..<50 where !FileManager.default.fileExists(atPath: path) {
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    @Test func aSecondClientLeavesTheFirstClientsReportAlone() async throws {
        let directory = try SwarmTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/status.json"
        let first = Self.client(reportPath: path)
        try await first.start()
        try await Self.waitForFile(path)
        let owned = try RuntimeReport.read(from: path)

        let second = Self.client(reportPath: path)
        try await second.start()
        try await Task.sleep(for: .milliseconds(100))
        await second.shutdown()
        // The second client neither replaced nor, when it stopped, deleted the first one's report.
        #expect(FileManager.default.fileExists(atPath: path), "the second client deleted the first one's report")
        #expect(try RuntimeReport.read(from: path).started == owned.started)

        await first.shutdown()
        #expect(!FileManager.default.fileExists(atPath: path))
        // Once the owner is gone, the next client takes the path over.
        let third = Self.client(reportPath: path)
        try await third.start()
        try await Self.waitForFile(path)
        #expect(FileManager.default.fileExists(atPath: path))
        await third.shutdown()
    }
}
