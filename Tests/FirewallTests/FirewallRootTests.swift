import Foundation
import Testing
@testable import Firewall
import Sockets

/// A scratch network namespace for one test: the firewall is applied inside it (nft runs through
/// `ip netns exec`), so the host's own ruleset is never touched. Loopback is brought up first:
/// Foundation's Process on Linux needs it for its internal wake-up sockets.
struct ScratchNamespace {
    let name: String
    let runner = CommandRunner()

    init(_ label: String) throws {
        name = "bfw-\(label)-\(getpid())"
        _ = try? runner.run("ip", ["netns", "del", name])  // left over by a killed run
        try check(runner.run("ip", ["netns", "add", name]), "ip netns add \(name)")
        try ip("link", "set", "lo", "up")
    }

    var controller: FirewallController {
        FirewallController(nftables: Nftables(runner: CommandRunner(launcher: ["ip", "netns", "exec", name])))
    }

    func ip(_ arguments: String...) throws {
        try check(runner.run("ip", ["-n", name] + arguments), "ip \(arguments.joined(separator: " "))")
    }

    /// A veth pair `interface` / `interface`p, both ends in the namespace, up: `interface` gets an
    /// IPv4 /24 and an IPv6 /64 (no duplicate address detection), and static neighbours .2 / ::2, so a
    /// datagram sent there is transmitted at once. An ingress counter on the peer end counts the UDP
    /// datagrams to port 9 that really went out on the wire (ARP and IPv6 chatter are not counted).
    func addLink(_ interface: String, ipv4: String, ipv6: String) throws {
        let peer = interface + "p"
        try ip("link", "add", interface, "type", "veth", "peer", "name", peer)
        try ip("addr", "add", ipv4 + ".1/24", "dev", interface)
        try ip("-6", "addr", "add", ipv6 + "::1/64", "dev", interface, "nodad")
        try ip("link", "set", peer, "up")
        try ip("link", "set", interface, "up")
        try ip("neigh", "add", ipv4 + ".2", "lladdr", "02:42:52:57:00:01", "dev", interface, "nud", "permanent")
        try ip("-6", "neigh", "add", ipv6 + "::2", "lladdr", "02:42:52:57:00:01", "dev", interface, "nud", "permanent")
        _ = try nft(["add", "table", "netdev", "bfwprobe"])
        _ = try nft(["add", "chain", "netdev", "bfwprobe", peer,
                     "{ type filter hook ingress device \"\(peer)\" priority 0; }"])
        _ = try nft(["add", "rule", "netdev", "bfwprobe", peer, "udp", "dport", "9", "counter"])
    }

    /// UDP datagrams to port 9 that left through `interface` (counted where its peer receives them).
    func wirePackets(_ interface: String) throws -> Int {
        let listing = try nft(["list", "chain", "netdev", "bfwprobe", interface + "p"])
        guard let range = listing.range(of: #"counter packets (\d+)"#, options: .regularExpression) else { return -1 }
        return Int(listing[range].split(separator: " ")[2]) ?? -1
    }

    func nft(_ arguments: [String]) throws -> String {
        let result = try runner.run("ip", ["netns", "exec", name, "nft"] + arguments)
        try check(result, "nft \(arguments.joined(separator: " "))")
        return String(decoding: result.standardOutput, as: UTF8.self)
    }

    /// Sends one UDP datagram from inside the namespace; "sent" or "error <errno name>".
    func sendUDP(to host: String, mark: UInt32? = nil, asUID uid: UInt32? = nil) throws -> String {
        let script = """
            import errno, os, socket, sys
            host, mark, uid = sys.argv[1], sys.argv[2], sys.argv[3]
            if uid != "-":
                os.setgid(int(uid)); os.setuid(int(uid))
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            s = socket.socket(family, socket.SOCK_DGRAM)
            if mark != "-":
                s.setsockopt(socket.SOL_SOCKET, 36, int(mark))  # SO_MARK
            try:
                s.sendto(b"burrow firewall test", (host, 9))
                print("sent")
            except OSError as e:
                print("error " + errno.errorcode.get(e.errno, str(e.errno)))
            """
        let result = try runner.run("ip", ["netns", "exec", name, Self.python, "-c", script, host,
                                           mark.map(String.init) ?? "-", uid.map(String.init) ?? "-"])
        try check(result, "python3 UDP sender")
        return String(decoding: result.standardOutput, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func remove() {
        _ = try? runner.run("ip", ["netns", "del", name])
    }

    static var python: String { FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3" }

    private func check(_ result: CommandResult, _ what: String) throws {
        if !result.succeeded {
            throw FirewallError.toolFailed(tool: what, action: "prepare the scratch namespace", status: result.status,
                                           output: result.standardError)
        }
    }
}

/// Applies the real firewall in scratch namespaces. Needs root, ip and nft; under CI=true a missing
/// prerequisite is a failure, never a silent skip.
@Suite(.serialized) struct FirewallRootTests {
    static let missingPrerequisite: String? = {
        if geteuid() != 0 { return "not root" }
        for tool in ["ip", "nft"] where CommandRunner.locate(tool) == nil { return "\(tool) is not installed" }
        if CommandRunner.locate("python3") == nil { return "python3 is not installed" }
        return nil
    }()
    static let inCI = ["1", "true", "yes"].contains((ProcessInfo.processInfo.environment["CI"] ?? "").lowercased())
    static let shouldRun = missingPrerequisite == nil || inCI

    private func requirePrerequisites() throws {
        if let missing = Self.missingPrerequisite {
            Issue.record("CI=true: the firewall root tests cannot run: \(missing)")
            throw FirewallError.unsupportedPlatform(missing)
        }
    }

    @Test(.enabled(if: shouldRun)) func applyIsIdempotentAndRemoveRestoresTheRuleset() throws {
        try requirePrerequisites()
        let ns = try ScratchNamespace("idem")
        defer { ns.remove() }
        // Another program's table must survive apply and remove untouched.
        _ = try ns.nft(["add", "table", "ip", "someone_else"])
        _ = try ns.nft(["add", "chain", "ip", "someone_else", "out", "{ type filter hook output priority 10; policy accept; }"])
        let before = try ns.nft(["list", "ruleset"])
        let spec = try FirewallSpec(allowedInterfaces: ["wg0", "tun*"], match: .burrowMark)

        let first = try ns.controller.apply(spec)
        #expect(first.state == .matching)
        let afterFirst = try ns.nft(["list", "ruleset"])
        let second = try ns.controller.apply(spec)
        #expect(second.state == .matching)
        #expect(try ns.nft(["list", "ruleset"]) == afterFirst, "applying twice gives the same ruleset")
        #expect(afterFirst.contains("table ip someone_else"))
        #expect(afterFirst.contains("oifname \"tun*\" accept"))

        #expect(try ns.controller.remove() == true)
        #expect(try ns.nft(["list", "ruleset"]) == before, "remove leaves exactly what was there before")
        #expect(try ns.controller.remove() == false, "removing again is a no-op")
        #expect(try ns.nft(["list", "ruleset"]) == before)
        #expect(try ns.controller.status(expected: spec).state == .notInstalled)
    }

    @Test(.enabled(if: shouldRun)) func markedPacketsOutOfOtherInterfacesAreDroppedAndCounted() throws {
        try requirePrerequisites()
        let ns = try ScratchNamespace("leak")
        defer { ns.remove() }
        try ns.addLink("clear9", ipv4: "10.250.1", ipv6: "fd00:250:1")
        try ns.addLink("tunnel9", ipv4: "10.250.2", ipv6: "fd00:250:2")
        let spec = try FirewallSpec(allowedInterfaces: ["tunnel*"], match: .burrowMark)
        try ns.controller.apply(spec)
        let mark = SocketMark.burrow

        // Unmarked traffic (other programs) is untouched.
        let clearBefore = try ns.wirePackets("clear9")
        #expect(try ns.sendUDP(to: "10.250.1.2") == "sent")
        #expect(try ns.wirePackets("clear9") == clearBefore + 1)
        #expect(try ns.controller.status(expected: spec).leakAttempts.packets == 0)

        // Burrow's packets leave through the allowed interface...
        let tunnelBefore = try ns.wirePackets("tunnel9")
        #expect(try ns.sendUDP(to: "10.250.2.2", mark: mark) == "sent")
        #expect(try ns.wirePackets("tunnel9") == tunnelBefore + 1)

        // ...and never through another one: the kernel refuses the send, nothing reaches the wire.
        #expect(try ns.sendUDP(to: "10.250.1.2", mark: mark) == "error EPERM")
        #expect(try ns.sendUDP(to: "fd00:250:1::2", mark: mark) == "error EPERM")
        #expect(try ns.sendUDP(to: "127.0.0.1", mark: mark) == "error EPERM", "loopback is not Burrow's way out")
        #expect(try ns.wirePackets("clear9") == clearBefore + 1)
        let status = try ns.controller.status(expected: spec)
        #expect(status.state == .matching)
        #expect(status.counters[.ipv4]?.packets == 1)
        #expect(status.loopback?.packets == 1, "loopback drops are counted apart from leaks")
        #expect(status.counters[.ipv6]?.packets == 1)
        #expect((status.counters[.ipv4]?.bytes ?? 0) > 0)

        // A pattern covers an interface created after the firewall was applied.
        try ns.addLink("tunnel10", ipv4: "10.250.3", ipv6: "fd00:250:3")
        #expect(try ns.sendUDP(to: "10.250.3.2", mark: mark) == "sent")
        #expect(try ns.wirePackets("tunnel10") == 1)
        #expect(try ns.controller.status(expected: spec).leakAttempts.packets == 2)
    }

    @Test(.enabled(if: shouldRun)) func userMatchFiltersOnlyThatUsersSockets() throws {
        try requirePrerequisites()
        let ns = try ScratchNamespace("uid")
        defer { ns.remove() }
        try ns.addLink("clear9", ipv4: "10.250.1", ipv6: "fd00:250:1")
        let nobody: UInt32 = 65534
        let spec = try FirewallSpec(allowedInterfaces: ["wg0"], match: .user(uid: nobody, name: nil))
        #expect(try ns.controller.apply(spec).state == .matching)
        #expect(try ns.nft(["list", "table", "inet", "burrow"]).contains("meta skuid != \(nobody) return"))
        #expect(try ns.sendUDP(to: "10.250.1.2", asUID: nobody) == "error EPERM")
        #expect(try ns.sendUDP(to: "10.250.1.2") == "sent", "root's sockets are not the dedicated user's")
        #expect(try ns.controller.status(expected: spec).counters[.ipv4]?.packets == 1)
    }

    @Test(.enabled(if: shouldRun)) func statusNoticesHandEditsAndNftErrorsAreShown() throws {
        try requirePrerequisites()
        let ns = try ScratchNamespace("edit")
        defer { ns.remove() }
        let spec = try FirewallSpec(allowedInterfaces: ["wg0"], match: .burrowMark)
        try ns.controller.apply(spec)
        _ = try ns.nft(["add", "rule", "inet", "burrow", "output", "oifname", "\"eth9\"", "accept"])
        let status = try ns.controller.status(expected: spec)
        guard case .differs(let differences) = status.state else {
            Issue.record("a hand-added rule must make the status differ, got \(status.state)")
            return
        }
        #expect(differences.contains("allows eth9 (not configured)"))
        #expect(try ns.controller.apply(spec).state == .matching, "applying again repairs the table")

        // nft's own error text reaches the user, e.g. for a cgroup that does not exist.
        let missingCgroup = try FirewallSpec(allowedInterfaces: ["wg0"], match: .cgroup(path: "no-such-burrow-cgroup"))
        #expect { try ns.controller.apply(missingCgroup) } throws: { error in
            "\(error)".contains("nft failed to apply Burrow's ruleset") && "\(error)".contains("cgroupv2 path fails")
        }
        #expect(try ns.controller.status(expected: spec).state == .matching, "a failed batch changes nothing")
    }
}
