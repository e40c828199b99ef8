import Foundation

/// What a finished command printed and how it exited.
public struct CommandResult: Sendable, Equatable {
    public var status: Int32
    public var standardOutput: Data
    public var standardError: String

    public var succeeded: Bool { status == 0 }
}

/// Runs a packet filter's command line tool (nft, pfctl) with Foundation's `Process`. Synchronous: these
/// tools answer in milliseconds, and the callers (the CLI, daemon start-up) wait for the answer anyway.
public struct CommandRunner: Sendable {
    /// Prepended to every command line, e.g. `["nsenter", "--net=/run/netns/x"]` to act inside a
    /// network namespace (tests do; the real CLI uses none).
    public var launcher: [String]

    public init(launcher: [String] = []) {
        self.launcher = launcher
    }

    /// `tool`'s absolute path: PATH first, then /usr/sbin and /sbin (often missing from a user's PATH).
    public static func locate(_ tool: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if tool.contains("/") { return FileManager.default.isExecutableFile(atPath: tool) ? tool : nil }
        let searchPath = (environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        for directory in searchPath where !directory.isEmpty {
            let candidate = directory + "/" + tool
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs `executable` (already located) with `arguments`, feeding `input` on standard input.
    public func run(_ executable: String, _ arguments: [String], input: String? = nil) throws(FirewallError) -> CommandResult {
        let argv = launcher + [executable] + arguments
        let program = argv[0]
        guard let path = Self.locate(program) else {
            throw .toolMissing(tool: program, hint: "cannot run \(argv.joined(separator: " "))")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = Array(argv.dropFirst())
        // Input comes from a private temporary file rather than a pipe: a tool that exits without reading
        // it can then not raise SIGPIPE in this process, and no write can block.
        let inputFile = try InputFile(contents: input ?? "", tool: program)
        defer { inputFile.remove() }
        let stdout = Pipe(), stderr = Pipe()
        process.standardInput = inputFile.handle
        process.standardOutput = stdout
        process.standardError = stderr
        do { try process.run() } catch {
            throw .launchFailed(tool: program, reason: error.localizedDescription)
        }
        // Both output pipes are drained at once, so neither buffer can fill up and stall the tool.
        let collected = CollectedOutput()
        let group = DispatchGroup()
        for (pipe, isError) in [(stdout, false), (stderr, true)] {
            let reader = pipe.fileHandleForReading
            DispatchQueue.global().async(group: group) {
                collected.store(reader.readDataToEndOfFile(), isError: isError)
            }
        }
        group.wait()
        process.waitUntilExit()
        let (output, errorOutput) = collected.both
        return CommandResult(status: process.terminationStatus, standardOutput: output,
                             standardError: String(decoding: errorOutput, as: UTF8.self))
    }
}

/// The two output streams, filled by two reader threads. Invariant: only touched under `lock`.
private final class CollectedOutput: @unchecked Sendable {
    private let lock = NSLock()
    private var output = Data()
    private var errorOutput = Data()

    func store(_ data: Data, isError: Bool) {
        lock.lock()
        defer { lock.unlock() }
        if isError { errorOutput = data } else { output = data }
    }

    var both: (Data, Data) {
        lock.lock()
        defer { lock.unlock() }
        return (output, errorOutput)
    }
}

/// A temporary file (mode 0600, unlinked after use) holding a command's standard input.
private struct InputFile {
    let path: String
    let handle: FileHandle

    init(contents: String, tool: String) throws(FirewallError) {
        path = NSTemporaryDirectory() + "burrow-firewall-\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: path, contents: Data(contents.utf8),
                                             attributes: [.posixPermissions: 0o600]),
              let handle = FileHandle(forReadingAtPath: path) else {
            throw .launchFailed(tool: tool, reason: "could not write its input to a temporary file at \(path)")
        }
        self.handle = handle
    }

    func remove() {
        try? handle.close()
        try? FileManager.default.removeItem(atPath: path)
    }
}
