import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SafeText
import Synchronization
import Testing

/// The `burrow` executable built with these tests (`BURROW_BIN` overrides), run as a user would.
enum BurrowBinary {
    static func path() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["BURROW_BIN"] { return explicit }
        // SwiftPM puts the test bundle next to the products: .build/<triple>/debug/.
        let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("burrow").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        throw BinaryMissing(testBinary: testBinary.path)
    }

    struct BinaryMissing: Error, CustomStringConvertible {
        let testBinary: String
        var description: String { "no burrow executable next to \(testBinary): run `swift build --build-tests` (or set BURROW_BIN)" }
    }
}

/// One `burrow` process with its standard output and error captured as they arrive.
final class BurrowProcess: Sendable {
    private final class Output: Sendable {
        let bytes = Mutex<(stdout: [UInt8], stderr: [UInt8])>(([], []))
    }

    private let process: Process
    private let output = Output()

    init(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try BurrowBinary.path())
        process.arguments = arguments
        let stdout = Pipe(), stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        self.process = process
        let output = self.output
        stdout.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            output.bytes.withLock { $0.stdout += data }
        }
        stderr.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            output.bytes.withLock { $0.stderr += data }
        }
        try process.run()
    }

    var stdout: [UInt8] { output.bytes.withLock { $0.stdout } }
    var stderr: [UInt8] { output.bytes.withLock { $0.stderr } }

    /// Waits until `condition` holds for the output so far; false after `timeout`.
    func wait(upTo timeout: Duration, until condition: (_ stdout: String, _ stderr: String) -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self)) { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// SIGINT (as Ctrl-C would), then waits for the exit; SIGKILL if it does not come. Returns the status.
    @discardableResult
    func stop() async throws -> Int32 {
        if process.isRunning { process.interrupt() }
        return try await waitForExit()
    }

    func waitForExit(upTo timeout: Duration = .seconds(20)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        // The last bytes may still sit in the pipes.
        try await Task.sleep(for: .milliseconds(200))
        return process.terminationStatus
    }

    /// Runs `burrow arguments` to its end.
    static func run(_ arguments: [String]) async throws -> BurrowProcess {
        let burrow = try BurrowProcess(arguments)
        _ = try await burrow.waitForExit()
        return burrow
    }
}

/// The characters in `output` that a terminal would act on, other than the newlines ending Burrow's own
/// lines: each named with its line, so a failure shows what slipped through. Invalid UTF-8 counts too
/// (a lone 0x9B byte is a CSI on some terminals).
func rawControlCharacters(in output: [UInt8]) -> [String] {
    let text = String(decoding: output, as: UTF8.self)
    var found = [String]()
    if !text.utf8.elementsEqual(output) { found.append("output is not valid UTF-8") }
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        let raw = line.unicodeScalars.filter(ControlCharacters.needEscaping)
        if !raw.isEmpty {
            found.append("\(raw.map { "U+" + String($0.value, radix: 16) }) in \(String(line).debugDescription)")
        }
    }
    return found
}

/// An HTTP tracker on 127.0.0.1 that answers every announce with the same bencoded body.
final class FakeTracker: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    private let handler: Responder
    let url: String

    init(body: [UInt8]) async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let handler = Responder(body: body)
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        self.handler = handler
        url = "http://127.0.0.1:\(channel.localAddress!.port!)/announce"
    }

    var announces: Int { handler.count.withLock { $0 } }

    func close() async throws {
        try await channel.close()
        try await group.shutdownGracefully()
    }

    final class Responder: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let body: [UInt8]
        let count = Mutex(0)
        init(body: [UInt8]) { self.body = body }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            count.withLock { $0 += 1 }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Length", value: "\(body.count)")
            headers.add(name: "Connection", value: "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}

/// A scratch directory removed by `remove()`.
struct ScratchDirectory {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("burrow-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}
