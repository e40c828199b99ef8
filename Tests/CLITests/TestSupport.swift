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
        #if os(Linux)
        let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        #else
        let testBinary = Bundle.main.bundleURL
        #endif
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

    /// With `stdoutIsTerminal`, standard output is a pseudo-terminal in raw mode (no newline translation),
    /// so Burrow draws its live progress line as it would for a person.
    init(_ arguments: [String], stdoutIsTerminal: Bool = false) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try BurrowBinary.path())
        process.arguments = arguments
        let stderr = Pipe()
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        self.process = process
        let output = self.output
        stderr.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            output.bytes.withLock { $0.stderr += data }
        }
        if stdoutIsTerminal {
            let terminal = try PseudoTerminal()
            process.standardOutput = FileHandle(fileDescriptor: terminal.secondary, closeOnDealloc: false)
            try process.run()
            close(terminal.secondary)
            terminal.readUntilClosed { bytes in output.bytes.withLock { $0.stdout += bytes } }
        } else {
            let stdout = Pipe()
            process.standardOutput = stdout
            stdout.fileHandleForReading.readabilityHandler = { handle in
                let data = handle.availableData
                output.bytes.withLock { $0.stdout += data }
            }
            try process.run()
        }
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

/// A pseudo-terminal pair: the child writes to `secondary`, the test reads from the primary side.
struct PseudoTerminal {
    let primary: Int32
    let secondary: Int32

    struct Failure: Error { let call: String }

    init() throws {
        #if canImport(Darwin)
        primary = posix_openpt(O_RDWR | O_NOCTTY)
        guard primary >= 0, grantpt(primary) == 0, unlockpt(primary) == 0, let name = ptsname(primary) else {
            throw Failure(call: "posix_openpt")
        }
        let path = String(cString: name)
        #else
        // Glibc's posix_openpt/ptsname are not visible to Swift; this is what they do on Linux.
        primary = open("/dev/ptmx", O_RDWR | O_NOCTTY)
        var unlock: Int32 = 0, number: UInt32 = 0
        let setLock: UInt = 0x4004_5431, getNumber: UInt = 0x8004_5430  // TIOCSPTLCK, TIOCGPTN
        guard primary >= 0, ioctl(primary, setLock, &unlock) == 0, ioctl(primary, getNumber, &number) == 0 else {
            throw Failure(call: "open /dev/ptmx")
        }
        let path = "/dev/pts/\(number)"
        #endif
        secondary = open(path, O_RDWR | O_NOCTTY)
        guard secondary >= 0 else { throw Failure(call: "open \(path)") }
        // Raw mode: what Burrow writes arrives byte for byte (no "\n" -> "\r\n").
        var attributes = termios()
        guard tcgetattr(secondary, &attributes) == 0 else { throw Failure(call: "tcgetattr") }
        cfmakeraw(&attributes)
        guard tcsetattr(secondary, TCSANOW, &attributes) == 0 else { throw Failure(call: "tcsetattr") }
    }

    /// Reads on a thread of its own until every writer has closed the secondary side, then closes the primary.
    func readUntilClosed(_ deliver: @escaping @Sendable ([UInt8]) -> Void) {
        let primary = self.primary
        Thread.detachNewThread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(primary, $0.baseAddress, $0.count) }
                if count > 0 { deliver(Array(buffer[..<count])) } else if count < 0 && errno == EINTR { continue } else { break }
            }
            close(primary)
        }
    }
}
