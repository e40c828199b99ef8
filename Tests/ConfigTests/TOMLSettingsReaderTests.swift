import Config
import Firewall
import Foundation
import NIOCore
import Testing

@Suite struct TOMLSettingsReaderTests {
    @Test func fullFileParses() throws {
        let settings = try TOMLSettingsReader.parse("""
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

            [storage]
            state_dir = "/srv/burrow/state"
            """, source: .file(path: "test.toml"))
        #expect(settings.network.bind == ["wg0", "tun*"])
        #expect(settings.network.port == 6881)
        #expect(settings.network.dns == [try SocketAddress(ipAddress: "10.64.0.1", port: 53),
                                         try SocketAddress(ipAddress: "fd00::1", port: 53)])
        #expect(settings.firewall.match == .burrowMark)
        #expect(settings.storage.stateDir == "/srv/burrow/state")
        #expect(settings.network.allowUnbound == nil)
        #expect(settings.network.policy == .bound(interfacePatterns: ["wg0", "tun*"]))
    }

    /// Full TOML through TOMLKit: dotted keys, inline tables and escapes the old subset parser refused.
    @Test func fullTOMLSyntaxIsAccepted() throws {
        let dotted = try TOMLSettingsReader.parse(
            "network.bind = \"wg0\"\nnetwork.port = 0x1AE1\nfirewall = { match = \"uid:0\" }\n", source: .file(path: "t"))
        #expect(dotted == Settings(network: NetworkSettings(bind: ["wg0"], port: 6881),
                                   firewall: FirewallSettings(match: .user(uid: 0, name: nil))))
        let escaped = try TOMLSettingsReader.parse("[network]\nbind = \"\\u0077g0\"\n", source: .file(path: "t"))
        #expect(escaped.network.bind == ["wg0"])
        #expect(try TOMLSettingsReader.parse("", source: .file(path: "t")) == Settings())
    }

    /// Every error names the file, the key and the line (toml++'s for syntax, the key's line for values).
    @Test(arguments: [
        ("[network]\nbinds = [\"wg0\"]\n", "t:2: network.binds: unknown key (known in [network]: bind, allow_unbound, port, dns)"),
        ("[netwrk]\nbind = \"wg0\"\n", "t:1: netwrk: unknown table [netwrk] (known tables: [network], [firewall], [storage])"),
        ("bind = \"wg0\"\n", "t:1: bind: unknown key outside any table"),
        ("network = 5\n", "t:1: network: must be a table ([network]), got 5"),
        ("[network]\nport = 70000\n", "t:2: network.port: must be an integer 1-65535, got 70000"),
        ("[network]\nport = \"6881\"\n", "t:2: network.port: must be an integer 1-65535, got the string \"6881\""),
        ("[network]\n\n\nport = 1.5\n", "t:4: network.port: must be an integer 1-65535, got a floating-point number"),
        ("[network]\nbind = [\"wg0\", 3]\n", "t:2: network.bind: must be an interface name or a list of them, got a list containing 3"),
        ("[network]\nbind = 5\n", "t:2: network.bind: must be an interface name or a list of them, got 5"),
        ("[network]\nbind = []\n", "t:2: network.bind: is empty"),
        ("[network]\nbind = [\"wg0\", \"\"]\n", "t:2: network.bind: interface name is empty"),
        ("[network]\nbind = [\"wg 0\"]\n", "t:2: network.bind: interface name \"wg 0\" contains \" \""),
        ("[network]\ndns = [\"dns.example\"]\n", "t:2: network.dns: \"dns.example\" is not a numeric IP address"),
        ("[network]\nallow_unbound = \"yes\"\n", "t:2: network.allow_unbound: must be true or false, got the string \"yes\""),
        ("[network]\nbind = \"wg0\"\nallow_unbound = true\n", "t:3: network.allow_unbound: allow_unbound = true contradicts bind"),
        ("[firewall]\nmatch = \"mac\"\n", "t:2: firewall.match: invalid firewall match \"mac\": expected mark, uid:NAME or cgroup:PATH"),
        ("[firewall]\nmatch = 1\n", "t:2: firewall.match: must be a string"),
        ("network.prot = 1\n", "t:1: network.prot: unknown key"),
        ("[storage]\nstate_dir = \"\"\n", "t:2: storage.state_dir: is empty"),
        ("[storage]\nstate_dir = [\"/a\"]\n", "t:2: storage.state_dir: must be a folder path (a string), got a list"),
        ("[storage]\nresume_dir = \"/a\"\n", "t:2: storage.resume_dir: unknown key (known in [storage]: state_dir)"),
    ])
    func valueErrorsNameKeySourceAndLine(text: String, expected: String) {
        let message = errorText { try TOMLSettingsReader.parse(text, source: .file(path: "t")) }
        #expect(message.hasPrefix(expected), "got: \(message)")
    }

    /// Syntax errors come from toml++ with its line; duplicates are syntax errors there.
    @Test(arguments: [
        ("[network]\nbind = \"wg0\n", "t:2: not valid TOML: "),
        ("[network]\nbind = [\"wg0\"\n", "t:2: not valid TOML: "),
        ("[network]\nport = 1\nport = 2\n", "t:3: not valid TOML: "),
        ("[network]\n[network]\n", "t:2: not valid TOML: "),
        ("[network]\nport = 1 2\n", "t:2: not valid TOML: "),
        ("[network]\nallow_unbound = yes\n", "t:2: not valid TOML: "),
        ("[firewall]\nmatch = \"x\\q\"\n", "t:2: not valid TOML: "),
    ])
    func syntaxErrorsNameTheLine(text: String, expected: String) {
        let message = errorText { try TOMLSettingsReader.parse(text, source: .file(path: "t")) }
        #expect(message.hasPrefix(expected), "got: \(message)")
    }

    /// Where reading the text finds the key twice (here once inside a multi-line string), no line is named
    /// rather than a wrong one.
    @Test func ambiguousKeyLineIsLeftOut() {
        let text = "[network]\nallow_unbound = \"yes\"\ndns = \"\"\"\nallow_unbound = 1\n\"\"\"\n"
        let message = errorText { try TOMLSettingsReader.parse(text, source: .file(path: "t")) }
        #expect(message.hasPrefix("t: network.allow_unbound: must be true or false"), "got: \(message)")
    }

    @Test func missingFileIsAnError() {
        let message = errorText { try TOMLSettingsReader.read(path: "/nonexistent/burrow.toml") }
        #expect(message.hasPrefix("/nonexistent/burrow.toml: cannot read the file"), "got: \(message)")
    }
}
