import Foundation
import ArgumentParser
import NIOCore
import Testing
@testable import BurrowCLI
@testable import Firewall
import Sockets

@Suite struct ConfigFileTests {
    @Test func fullFileParses() throws {
        let config = try ConfigFile.parse("""
            # Burrow's settings
            [network]
            bind = ["wg0", "tun*"]   # the tunnels
            port = 6_881
            dns = [
                "10.64.0.1",
                '[fd00::1]',   # trailing comma allowed
            ]

            [firewall]
            match = "mark"
            """, source: "test.toml")
        #expect(config.bind == ["wg0", "tun*"])
        #expect(config.port == 6881)
        #expect(config.dns == [try SocketAddress(ipAddress: "10.64.0.1", port: 53), try SocketAddress(ipAddress: "fd00::1", port: 53)])
        #expect(config.firewallMatch == .burrowMark)
        #expect(config.allowUnbound == nil)
    }

    @Test func singleStringBindAndOtherMatches() throws {
        let config = try ConfigFile.parse("[network]\nbind = \"wg0\"\n[firewall]\nmatch = \"uid:root\"\n", source: "t")
        #expect(config.bind == ["wg0"])
        #expect(config.firewallMatch == .user(uid: 0, name: "root"))
        #expect(try ConfigFile.parse("", source: "t") == ConfigFile())
    }

    @Test(arguments: [
        ("[network]\nbinds = [\"wg0\"]\n", "t:2: unknown key \"binds\" in [network] (known: bind, allow_unbound, port, dns)"),
        ("[netwrk]\nbind = \"wg0\"\n", "t:2: unknown table [netwrk]"),
        ("bind = \"wg0\"\n", "t:1: key \"bind\" is outside any table"),
        ("[network]\nport = 70000\n", "t:2: port must be an integer 1-65535, got 70000"),
        ("[network]\nport = \"6881\"\n", "t:2: port must be an integer"),
        ("[network]\n\n\nport = 1.5\n", "t:4: only integers are supported here"),
        ("[network]\nbind = [\"wg0\", 3]\n", "t:2: bind must contain only strings"),
        ("[network]\nbind = []\n", "t:2: bind is empty"),
        ("[network]\nbind = [\"wg 0\"]\n", "t:2: bind: interface name \"wg 0\" contains \" \""),
        ("[network]\ndns = [\"dns.example\"]\n", "t:2: dns: \"dns.example\" is not a numeric IP address"),
        ("[network]\nbind = \"wg0\n", "t:2: string is not closed before the end of the line"),
        ("[network]\nbind = [\"wg0\"\n", "t:2: array is not closed"),
        ("[network]\nport = 1\nport = 2\n", "t:3: key \"port\" appears twice in [network]"),
        ("[network]\n[network]\n", "t:2: table [network] appears twice"),
        ("[network]\nport = 1 2\n", "t:2: unexpected \"2\" after the value"),
        ("[network]\nnet.port = 1\n", "t:2: dotted keys are not supported"),
        ("[network]\nallow_unbound = yes\n", "t:2: expected a value"),
        ("[network]\nbind = \"wg0\"\nallow_unbound = true\n", "t:3: allow_unbound = true contradicts bind"),
        ("[firewall]\nmatch = \"mac\"\n", "t:2: invalid firewall match \"mac\": expected mark, uid:NAME or cgroup:PATH"),
        ("[firewall]\nmatch = \"x\\q\"\n", "t:2: unsupported escape \"\\q\""),
    ])
    func errorsNameTheLineAndTheProblem(text: String, expected: String) {
        #expect {
            _ = try ConfigFile.parse(text, source: "t")
        } throws: { error in
            let message = "\(error)"
            let matches = message.hasPrefix(expected)
            if !matches { Issue.record("got: \(message)") }
            return matches
        }
    }

    @Test func missingExplicitFileIsAnError() {
        #expect { try ConfigFile.load(path: "/nonexistent/burrow.toml") } throws: {
            "\($0)".hasPrefix("/nonexistent/burrow.toml: cannot read the file")
        }
    }
}

@Suite struct NetworkOptionsTests {
    private func withConfig(_ text: String, _ body: (String) throws -> Void) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("burrow-test-\(UUID().uuidString).toml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try body(path)
    }

    @Test func flagsWinOverTheConfigFile() throws {
        try withConfig("[network]\nbind = [\"wg*\"]\nport = 7000\ndns = [\"10.64.0.1\"]\n[firewall]\nmatch = \"uid:0\"\n") { path in
            let fromFile = try NetworkOptions.parse(["--config", path]).resolve()
            #expect(fromFile.policy == .bound(interfacePatterns: ["wg*"]))
            #expect(fromFile.port == 7000)
            #expect(fromFile.dnsServers == [try SocketAddress(ipAddress: "10.64.0.1", port: 53)])
            #expect(fromFile.firewallMatch == .user(uid: 0, name: nil))
            #expect(fromFile.configSource == path)

            let overridden = try NetworkOptions.parse(["--config", path, "--bind", "tun0", "--port", "7001", "--dns", "10.9.9.9"]).resolve()
            #expect(overridden.policy == .bound(interfacePatterns: ["tun0"]))
            #expect(overridden.port == 7001)
            #expect(overridden.dnsServers == [try SocketAddress(ipAddress: "10.9.9.9", port: 53)])

            let unbound = try NetworkOptions.parse(["--config", path, "--allow-unbound"]).resolve()
            #expect(unbound.policy == .unbound)
        }
    }

    @Test func noBindingAnywhereIsRefused() throws {
        try withConfig("[network]\nport = 7000\n") { path in
            #expect { try NetworkOptions.parse(["--config", path]).resolve() } throws: {
                "\($0)".contains("refusing to touch the network")
            }
            let lenient = try NetworkOptions.parse(["--config", path]).resolve(requireNetworkChoice: false)
            #expect(!lenient.policyWasChosen)
        }
    }

    @Test func badFlagsAndFilesAreClearErrors() throws {
        #expect(throws: (any Error).self) { try NetworkOptions.parse(["--bind", "wg0", "--allow-unbound"]) }
        #expect(throws: (any Error).self) { try NetworkOptions.parse(["--port", "0", "--bind", "wg0"]) }
        #expect(throws: (any Error).self) { try NetworkOptions.parse(["--dns", "resolver", "--bind", "wg0"]) }
        try withConfig("[network]\nbind = 5\n") { path in
            #expect { try NetworkOptions.parse(["--config", path]).resolve() } throws: {
                "\($0)".contains("\(path):2: bind must be a string or an array of strings")
            }
        }
    }
}
