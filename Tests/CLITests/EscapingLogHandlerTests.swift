import Logging
import Synchronization
import Testing
@testable import BurrowCLI

@Suite struct EscapingLogHandlerTests {
    /// Stands in for the printing handler: keeps what reaches it, and its own metadata so a test can see
    /// that nothing unescaped was left there to merge.
    final class Events: Sendable {
        private let events = Mutex<[LogEvent]>([])
        var first: LogEvent? { events.withLock { $0.first } }
        func append(_ event: LogEvent) { events.withLock { $0.append(event) } }
    }

    struct Recorder: LogHandler {
        let events = Events()
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) { events.append(event) }
    }

    struct HostileError: Error, CustomStringConvertible {
        var description: String { "peer said \u{1B}[2K\r" }
    }

    static let hostile = "name\u{1B}[2K\rburrow: done\n\u{9B}\u{202E}"
    static let shown = #"name\e[2K\rburrow: done\n\u{9b}\u{202e}"#

    @Test func messageMetadataAndErrorReachThePrintingHandlerEscaped() throws {
        let recorder = Recorder()
        let events = recorder.events
        var wrapped = recorder
        wrapped.metadata = ["preset": "\(Self.hostile)"]
        wrapped.metadataProvider = Logger.MetadataProvider { ["provided": "\(Self.hostile)"] }
        var logger = Logger(label: "test") { _ in EscapingLogHandler(wrapped) }
        logger[metadataKey: "torrent"] = "\(Self.hostile)"
        logger.warning("tracker warning: \(Self.hostile)", error: HostileError(), metadata: [
            "warning": "\(Self.hostile)",
            "list": .array(["\(Self.hostile)", .stringConvertible(Self.hostile)]),
            "nested": .dictionary(["key\n": "\(Self.hostile)"]),
        ])

        let event = try #require(events.first)
        #expect(event.message.description == "tracker warning: \(Self.shown)")
        #expect(event.error == nil)
        let metadata = try #require(event.metadata)
        #expect(metadata["torrent"] == "\(Self.shown)")
        #expect(metadata["preset"] == "\(Self.shown)")
        #expect(metadata["provided"] == "\(Self.shown)")
        #expect(metadata["warning"] == "\(Self.shown)")
        #expect(metadata["list"] == .array(["\(Self.shown)", "\(Self.shown)"]))
        #expect(metadata["nested"] == .dictionary([#"key\n"#: "\(Self.shown)"]))
        #expect(metadata["error.message"] == #"peer said \e[2K\r"#)
    }

    @Test func theWrappedHandlerKeepsNoMetadataOfItsOwn() {
        var wrapped = Recorder()
        wrapped.metadata = ["preset": "x"]
        var handler = EscapingLogHandler(wrapped)
        handler[metadataKey: "later"] = "y"
        handler.logLevel = .error
        #expect(handler.metadata == ["preset": "x", "later": "y"])
        #expect(handler.logLevel == .error)
    }

    @Test func plainLinesPassUnchanged() throws {
        let recorder = Recorder()
        let events = recorder.events
        let logger = Logger(label: "test") { _ in EscapingLogHandler(recorder) }
        logger.notice("kill switch: wg0 lost (carrier); closed 3 sockets in 41 µs", metadata: ["peers": "12"])
        let event = try #require(events.first)
        #expect(event.message.description == "kill switch: wg0 lost (carrier); closed 3 sockets in 41 µs")
        #expect(event.metadata == ["peers": "12"])
    }
}
