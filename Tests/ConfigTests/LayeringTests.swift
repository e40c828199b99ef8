import Config
import Firewall
import Foundation
import NIOCore
import Testing

@Suite struct EnvironmentSettingsTests {
    @Test func namingRuleIsBurrowTableKey() {
        #expect(SettingKey.allCases.map(\.environmentVariable) == [
            "BURROW_NETWORK_BIND", "BURROW_NETWORK_ALLOW_UNBOUND", "BURROW_NETWORK_PORT", "BURROW_NETWORK_DNS",
            "BURROW_FIREWALL_MATCH", "BURROW_STORAGE_STATE_DIR",
        ])
    }

    @Test func variablesAreReadWithTheFileParsers() throws {
        let settings = try EnvironmentSettingsReader.read([
            "BURROW_NETWORK_BIND": "wg0, tun*", "BURROW_NETWORK_PORT": "7000", "BURROW_NETWORK_DNS": "10.64.0.1,[fd00::1]",
            "BURROW_FIREWALL_MATCH": "cgroup:system.slice/burrow.service", "BURROW_STORAGE_STATE_DIR": "/srv/state",
            "BURROW_BIN": "/not/a/setting", "PATH": "/usr/bin",
        ])
        #expect(settings.network.bind == ["wg0", "tun*"])
        #expect(settings.network.port == 7000)
        #expect(settings.network.dns == [try SocketAddress(ipAddress: "10.64.0.1", port: 53),
                                         try SocketAddress(ipAddress: "fd00::1", port: 53)])
        #expect(settings.firewall.match == .cgroup(path: "system.slice/burrow.service"))
        #expect(settings.storage.stateDir == "/srv/state")
        #expect(try EnvironmentSettingsReader.read(["BURROW_NETWORK_ALLOW_UNBOUND": "true"]).network.policy == .unbound)
    }

    /// Every error names the variable and the key.
    @Test(arguments: [
        (["BURROW_NETWORK_PORT": "x"], "environment variable BURROW_NETWORK_PORT: network.port: must be an integer 1-65535, got \"x\""),
        (["BURROW_NETWORK_PORT": "0"], "environment variable BURROW_NETWORK_PORT: network.port: must be an integer 1-65535"),
        (["BURROW_NETWORK_PROT": "1"], "environment variable BURROW_NETWORK_PROT: network.prot: unknown setting (known: BURROW_NETWORK_BIND,"),
        (["BURROW_NETWORK_BIND": ""], "environment variable BURROW_NETWORK_BIND: network.bind: is empty"),
        (["BURROW_NETWORK_BIND": "wg 0"], "environment variable BURROW_NETWORK_BIND: network.bind: interface name \"wg 0\" contains \" \""),
        (["BURROW_NETWORK_DNS": "resolver"], "environment variable BURROW_NETWORK_DNS: network.dns: \"resolver\" is not a numeric IP address"),
        (["BURROW_NETWORK_ALLOW_UNBOUND": "yes"], "environment variable BURROW_NETWORK_ALLOW_UNBOUND: network.allow_unbound: must be true or false"),
        (["BURROW_NETWORK_ALLOW_UNBOUND": "true", "BURROW_NETWORK_BIND": "wg0"],
         "environment variable BURROW_NETWORK_ALLOW_UNBOUND: network.allow_unbound: allow_unbound = true contradicts bind"),
        (["BURROW_STORAGE_STATE_DIR": ""], "environment variable BURROW_STORAGE_STATE_DIR: storage.state_dir: is empty"),
        (["BURROW_STORAGE_STATEDIR": "/a"], "environment variable BURROW_STORAGE_STATEDIR: storage.statedir: unknown setting (known: BURROW_STORAGE_STATE_DIR)"),
        (["BURROW_FIREWALL_MATCH": "mac"], "environment variable BURROW_FIREWALL_MATCH: firewall.match: invalid firewall match \"mac\""),
    ])
    func errorsNameTheVariableAndKey(environment: [String: String], expected: String) {
        let message = errorText { try EnvironmentSettingsReader.read(environment) }
        #expect(message.hasPrefix(expected), "got: \(message)")
    }
}

@Suite struct SettingsLayeringTests {
    private func load(file: String?, environment: [String: String] = [:], flags: Settings = Settings()) throws -> LoadedSettings {
        try withTemporaryFolder { folder in
            let path = folder + "/burrow.toml"
            if let file { try file.write(toFile: path, atomically: true, encoding: .utf8) }
            return try SettingsLoader.load(explicitPath: file == nil ? nil : path, defaultPath: folder + "/absent.toml",
                                           environment: environment, flags: flags)
        }
    }

    @Test func environmentOverridesFileAndFlagsOverrideEnvironment() throws {
        let file = "[network]\nbind = [\"wg*\"]\nport = 7000\ndns = [\"10.64.0.1\"]\n[firewall]\nmatch = \"uid:0\"\n"
            + "[storage]\nstate_dir = \"/from/file\"\n"
        let fromFile = try load(file: file).settings
        #expect(fromFile.network.policy == .bound(interfacePatterns: ["wg*"]))
        #expect(fromFile.network.port == 7000)

        let environment = ["BURROW_NETWORK_PORT": "7001", "BURROW_FIREWALL_MATCH": "mark", "BURROW_STORAGE_STATE_DIR": "/from/env"]
        let withEnvironment = try load(file: file, environment: environment).settings
        #expect(withEnvironment.network.port == 7001)
        #expect(withEnvironment.firewall.match == .burrowMark)
        #expect(withEnvironment.storage.stateDir == "/from/env")
        #expect(withEnvironment.network.bind == ["wg*"], "keys the environment leaves unset come from the file")
        #expect(withEnvironment.network.dns == [try SocketAddress(ipAddress: "10.64.0.1", port: 53)])

        var flags = Settings()
        try flags.set(.networkPort, text: "7002", from: .flag("--port"))
        try flags.set(.networkBind, text: "tun0", from: .flag("--bind"))
        try flags.set(.storageStateDir, text: "relative/state", from: .flag("--state-dir"))
        let withFlags = try load(file: file, environment: environment, flags: flags).settings
        #expect(withFlags.network.port == 7002)
        #expect(withFlags.network.policy == .bound(interfacePatterns: ["tun0"]))
        #expect(withFlags.firewall.match == .burrowMark)
        #expect(withFlags.storage.stateDir == "relative/state")
    }

    /// The highest layer that chose a binding decides it: bind over allow_unbound and the other way round.
    @Test func bindingChoiceIsTakenWholeFromTheHighestLayer() throws {
        let unboundByEnvironment = try load(file: "[network]\nbind = \"wg0\"\n",
                                            environment: ["BURROW_NETWORK_ALLOW_UNBOUND": "true"]).settings
        #expect(unboundByEnvironment.network.policy == .unbound)

        var bindFlag = Settings()
        try bindFlag.set(.networkBind, text: "wg1", from: .flag("--bind"))
        let boundByFlag = try load(file: "[network]\nallow_unbound = true\n", flags: bindFlag).settings
        #expect(boundByFlag.network.policy == .bound(interfacePatterns: ["wg1"]))

        let withdrawn = try load(file: "[network]\nallow_unbound = true\n",
                                 environment: ["BURROW_NETWORK_ALLOW_UNBOUND": "false"]).settings
        #expect(withdrawn.network.policy == nil, "bind never silently defaults")
        #expect(try load(file: nil).settings.network.policy == nil)
    }

    @Test func explicitFileMustExistAndItsErrorsNameIt() throws {
        let missing = errorText { try SettingsLoader.load(explicitPath: "/nonexistent/b.toml", environment: [:]) }
        #expect(missing.hasPrefix("/nonexistent/b.toml: cannot read the file"), "got: \(missing)")
        let bad = errorText { try load(file: "[network]\nport = 0\n") }
        #expect(bad.hasSuffix("burrow.toml:2: network.port: must be an integer 1-65535, got 0"), "got: \(bad)")
        #expect(try load(file: "[network]\nport = 1\n").filePath?.hasSuffix("/burrow.toml") == true)
        #expect(try load(file: nil).filePath == nil)
    }

    @Test func flagErrorsNameTheFlag() {
        var flags = Settings()
        let message = errorText { try flags.set(.networkPort, text: "0", from: .flag("--port")) }
        #expect(message == "--port: must be an integer 1-65535, got 0")
    }
}
