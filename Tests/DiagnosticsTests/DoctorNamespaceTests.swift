#if os(Linux)
import Foundation
import Testing

/// Root-only: the built `burrow doctor --json` run inside a scratch network namespace whose interfaces the
/// test creates, so what it reports is checked against a real kernel, real routes and a real nftables.
/// Under CI=true these tests run (and fail when not root) instead of being skipped silently.
@Suite(.serialized) struct DoctorNamespaceTests {
    static let namespace = "bdoc-test"
    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// BURROW_BIN, else the debug build next to this package.
    static var burrowBinary: String {
        if let path = ProcessInfo.processInfo.environment["BURROW_BIN"], !path.isEmpty { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/burrow").path
    }

    @Test func reportsWhatIsWrongWithTheTunnelSetup() throws {
        guard getuid() == 0 || Self.isCI else { return }  // needs root; CI never skips
        try #require(getuid() == 0, "burrow doctor namespace tests need root (they create a network namespace); CI=true forbids skipping them")
        let binary = Self.burrowBinary
        try #require(FileManager.default.isExecutableFile(atPath: binary),
                     "no burrow binary at \(binary): build it (swift build) or set BURROW_BIN")

        let scratch = NSTemporaryDirectory() + "bdoc-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        // An empty config file, so a /etc/burrow/burrow.toml on the machine cannot change the outcome.
        try "".write(toFile: scratch + "/burrow.toml", atomically: true, encoding: .utf8)
        _ = try? Shell.run("ip", "netns", "del", Self.namespace)
        try Shell.run("ip", "netns", "add", Self.namespace)
        defer {
            _ = try? Shell.run("ip", "netns", "del", Self.namespace)
            try? FileManager.default.removeItem(atPath: scratch)
        }
        let doctor = { (arguments: [String]) throws -> DoctorRun in
            try DoctorRun(binary: binary, namespace: Self.namespace,
                          arguments: ["--config", scratch + "/burrow.toml", "--status-file", scratch + "/status.json"] + arguments)
        }

        // The clear side: an interface with the "real" address and the default route.
        try inNamespace("ip", "link", "set", "lo", "up")
        try inNamespace("ip", "link", "add", "clear0", "type", "veth", "peer", "name", "clear0p")
        try inNamespace("ip", "addr", "add", "192.0.2.2/24", "dev", "clear0")
        try inNamespace("ip", "link", "set", "clear0", "up")
        try inNamespace("ip", "link", "set", "clear0p", "up")
        try inNamespace("ip", "route", "add", "default", "via", "192.0.2.1", "dev", "clear0")

        // 1. The bound tunnel interface does not exist.
        let missing = try doctor(["--bind", "tnl0", "--dns", "10.64.0.1"])
        #expect(missing.exitStatus == 1)
        #expect(try missing.status("binding") == "ok")
        #expect(try missing.status("interfaces") == "problem")
        #expect(try missing.detail("interfaces").contains("no interface matches tnl0"))
        #expect(try missing.status("dns-route") == "problem")
        #expect(try missing.detail("dns-route").contains("10.64.0.1 is routed via clear0"))
        #expect(try missing.status("firewall") == "problem")
        #expect(try missing.status("external-address") == "ok")
        #expect(try missing.detail("leak-alarm") == "Burrow is not running")

        // 2. The tunnel appears, up with an address: binding and interfaces are fine, and so is DNS inside it.
        try inNamespace("ip", "link", "add", "tnl0", "type", "veth", "peer", "name", "tnl0p")
        try inNamespace("ip", "addr", "add", "10.64.0.2/24", "dev", "tnl0")
        try inNamespace("ip", "link", "set", "tnl0", "up")
        try inNamespace("ip", "link", "set", "tnl0p", "up")
        let present = try doctor(["--bind", "tnl0", "--dns", "10.64.0.1"])
        #expect(try present.status("binding") == "ok")
        #expect(try present.status("interfaces") == "ok")
        #expect(try present.detail("interfaces") == "usable: tnl0 (10.64.0.2)")
        #expect(try present.status("dns-route") == "ok")
        #expect(try present.detail("dns-route") == "--dns: 10.64.0.1 via tnl0")
        #expect(present.exitStatus == 1, "the firewall layer is still missing")
        #expect(try present.problems() == ["firewall"])

        // 3. A DNS server that the kernel routes through the clear interface.
        let wrongDNS = try doctor(["--bind", "tnl0", "--dns", "198.51.100.53"])
        #expect(wrongDNS.exitStatus == 1)
        #expect(try wrongDNS.status("dns-route") == "problem")
        #expect(try wrongDNS.detail("dns-route").contains("198.51.100.53 is routed via clear0 (gateway 192.0.2.1), not a bound interface"))

        // 4. With the firewall layer applied for the tunnel, nothing is left to complain about.
        try inNamespace(binary, "firewall", "apply", "--config", scratch + "/burrow.toml", "--bind", "tnl0")
        let healthy = try doctor(["--bind", "tnl0", "--dns", "10.64.0.1"])
        #expect(try healthy.status("firewall") == "ok", "\(healthy.output)")
        #expect(try healthy.problems() == [])
        #expect(healthy.exitStatus == 0)

        // 5. The tunnel goes down: a problem again, and the firewall now differs from a changed binding.
        try inNamespace("ip", "link", "set", "tnl0", "down")
        let down = try doctor(["--bind", "tnl0,tnl1", "--dns", "10.64.0.1"])
        #expect(down.exitStatus == 1)
        #expect(try down.detail("interfaces").contains("tnl0 is down (admin down)"))
        #expect(try down.status("firewall") == "problem")
        #expect(try down.detail("firewall").contains("tnl1"))
    }

    private func inNamespace(_ command: String...) throws {
        try Shell.run(["ip", "netns", "exec", Self.namespace] + command)
    }
}

/// One run of `burrow doctor --json` in the namespace, decoded.
struct DoctorRun {
    let exitStatus: Int32
    let output: String
    let checks: [[String: Any]]

    init(binary: String, namespace: String, arguments: [String]) throws {
        let result = try Shell.capture(["ip", "netns", "exec", namespace, binary, "doctor", "--json"] + arguments)
        exitStatus = result.status
        output = result.stdout + result.stderr
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        guard let checks = object?["checks"] as? [[String: Any]] else {
            throw ShellError(command: "burrow doctor --json", output: "no checks in output: \(output)")
        }
        self.checks = checks
    }

    private func check(_ id: String) throws -> [String: Any] {
        guard let found = checks.first(where: { $0["id"] as? String == id }) else {
            throw ShellError(command: "burrow doctor --json", output: "no check \(id) in output: \(output)")
        }
        return found
    }

    func status(_ id: String) throws -> String { try check(id)["status"] as? String ?? "?" }
    func detail(_ id: String) throws -> String { try check(id)["detail"] as? String ?? "?" }
    func problems() throws -> [String] {
        checks.filter { $0["status"] as? String == "problem" }.compactMap { $0["id"] as? String }
    }
}

enum Shell {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs a command found in the system directories (or an absolute path) and returns what it printed.
    static func capture(_ command: [String]) throws -> Result {
        let process = Process()
        let name = command[0]
        let executable = name.hasPrefix("/") ? name
            : ["/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"].map { $0 + name }
                .first { FileManager.default.isExecutableFile(atPath: $0) } ?? name
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(command.dropFirst())
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// Runs a command; throws with its output unless it exits 0.
    static func run(_ command: [String]) throws {
        let result = try capture(command)
        guard result.status == 0 else {
            throw ShellError(command: command.joined(separator: " "), output: result.stdout + result.stderr)
        }
    }

    static func run(_ command: String...) throws { try run(command) }
}

struct ShellError: Error, CustomStringConvertible {
    let command: String
    let output: String
    var description: String { "\(command) failed: \(output)" }
}
#endif
