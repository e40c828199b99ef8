import ArgumentParser
import Config
import Firewall
import Foundation
import NIOCore
import Sockets
import Testing
import TorrentModel
@testable import BurrowCLI

/// The CLI's network flags as the top layer over the environment and the configuration file.
@Suite struct NetworkOptionsTests {
    private func withConfig(_ text: String, _ body: (String) async throws -> Void) async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("burrow-test-\(UUID().uuidString).toml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await body(path)
    }

    @Test func flagsWinOverEnvironmentOverFile() async throws {
        try await withConfig("[network]\nbind = [\"wg*\"]\nport = 7000\ndns = [\"10.64.0.1\"]\n[firewall]\nmatch = \"uid:0\"\n") { path in
            let fromFile = try NetworkOptions.parse(["--config", path]).resolve(environment: [:])
            #expect(fromFile.policy == .bound(interfacePatterns: ["wg*"]))
            #expect(fromFile.port == 7000)
            #expect(fromFile.dnsServers == [try SocketAddress(ipAddress: "10.64.0.1", port: 53)])
            #expect(fromFile.firewallMatch == .user(uid: 0, name: nil))
            #expect(fromFile.configSource == path)

            let environment = ["BURROW_NETWORK_BIND": "tun1", "BURROW_NETWORK_PORT": "7001"]
            let fromEnvironment = try NetworkOptions.parse(["--config", path]).resolve(environment: environment)
            #expect(fromEnvironment.policy == .bound(interfacePatterns: ["tun1"]))
            #expect(fromEnvironment.port == 7001)
            #expect(fromEnvironment.dnsServers == [try SocketAddress(ipAddress: "10.64.0.1", port: 53)])

            let overridden = try NetworkOptions.parse(["--config", path, "--bind", "tun0", "--port", "7002", "--dns", "10.9.9.9"])
                .resolve(environment: environment)
            #expect(overridden.policy == .bound(interfacePatterns: ["tun0"]))
            #expect(overridden.port == 7002)
            #expect(overridden.dnsServers == [try SocketAddress(ipAddress: "10.9.9.9", port: 53)])

            let unbound = try NetworkOptions.parse(["--config", path, "--allow-unbound"]).resolve(environment: environment)
            #expect(unbound.policy == .unbound)
        }
    }

    @Test func noBindingAnywhereIsRefused() async throws {
        try await withConfig("[network]\nport = 7000\n") { path in
            #expect { try NetworkOptions.parse(["--config", path]).resolve(environment: [:]) } throws: {
                "\($0)".contains("refusing to touch the network") && "\($0)".contains("BURROW_NETWORK_BIND=wg0")
            }
            let lenient = try NetworkOptions.parse(["--config", path]).resolve(requireNetworkChoice: false, environment: [:])
            #expect(!lenient.policyWasChosen)
            let fromEnvironment = try NetworkOptions.parse(["--config", path])
                .resolve(environment: ["BURROW_NETWORK_ALLOW_UNBOUND": "true"])
            #expect(fromEnvironment.policy == .unbound)
        }
    }

    @Test func badFlagsFilesAndVariablesAreClearErrors() async throws {
        #expect(throws: (any Error).self) { try NetworkOptions.parse(["--bind", "wg0", "--allow-unbound"]) }
        #expect { try NetworkOptions.parse(["--port", "0", "--bind", "wg0"]) } throws: {
            NetworkOptions.message(for: $0) == "--port: must be an integer 1-65535, got 0"
        }
        #expect { try NetworkOptions.parse(["--dns", "resolver", "--bind", "wg0"]) } throws: {
            NetworkOptions.message(for: $0) == "--dns: \"resolver\" is not a numeric IP address"
        }
        try await withConfig("[network]\nbind = 5\n") { path in
            #expect { try NetworkOptions.parse(["--config", path]).resolve(environment: [:]) } throws: {
                "\($0)".contains("\(path):2: network.bind: must be an interface name or a list of them, got 5")
            }
        }
        #expect { try NetworkOptions.parse(["--bind", "wg0"]).resolve(environment: ["BURROW_NETWORK_PORT": "http"]) } throws: {
            "\($0)".contains("environment variable BURROW_NETWORK_PORT: network.port: must be an integer 1-65535, got \"http\"")
        }
    }

    /// The executable reports a bad file before anything else, naming file, line and key.
    @Test func downloadNamesTheBadKeyOfTheConfigFile() async throws {
        try await withConfig("[network]\nbind = \"wg0\"\nprot = 6881\n") { path in
            let burrow = try BurrowProcess(["download", "/nonexistent.torrent", "--config", path])
            let status = try await burrow.waitForExit()
            let stderr = String(decoding: burrow.stderr, as: UTF8.self)
            #expect(status != 0)
            #expect(stderr.contains("\(path):3: network.prot: unknown key (known in [network]: bind, allow_unbound, port, dns)"),
                    "got: \(stderr)")
        }
    }
}

/// `[storage] state_dir` reaches `burrow download` as `--state-dir` does, below the flag and the environment.
@Suite struct StateDirectorySettingTests {
    @Test func downloadKeepsItsStateWhereTheConfigFileSays() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let torrent = scratch.path + "/small.torrent"
        try Data(try TorrentCreator.create(singleFile: "small.bin", data: [UInt8](repeating: 7, count: 20_000),
                                           pieceLength: 16 * 1024, details: .init(announce: [["http://127.0.0.1:1/announce"]])))
            .write(to: URL(fileURLWithPath: torrent))
        let config = scratch.path + "/burrow.toml"
        let fromFile = scratch.path + "/state-from-file"
        try "[storage]\nstate_dir = \"\(fromFile)\"\n".write(toFile: config, atomically: true, encoding: .utf8)

        let arguments = [torrent, "--output", scratch.path + "/out", "--config", config, "--allow-unbound"]
        #expect(try Download.parse(arguments).resolveSettings(environment: [:]).settings.storage.stateDir == fromFile)
        #expect(try Download.parse(arguments).resolveSettings(environment: ["BURROW_STORAGE_STATE_DIR": "/from/env"])
                    .settings.storage.stateDir == "/from/env")
        #expect(try Download.parse(arguments + ["--state-dir", "/from/flag"])
                    .resolveSettings(environment: ["BURROW_STORAGE_STATE_DIR": "/from/env"]).settings.storage.stateDir == "/from/flag")

        // The running download creates its state folder there.
        let burrow = try BurrowProcess(["download"] + arguments + ["--port", "\(Int.random(in: 30000...40000))"])
        var created = false
        for _ in 0..<100 where !created {
            try await Task.sleep(for: .milliseconds(100))
            created = FileManager.default.fileExists(atPath: fromFile)
        }
        try await burrow.stop()
        #expect(created, "no state folder from [storage] state_dir\n\(String(decoding: burrow.stderr, as: UTF8.self))")
    }
}

/// `firewall --match` is the flag layer of `firewall.match`, over the file.
@Suite struct FirewallMatchSettingTests {
    @Test func matchFlagWinsOverFile() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let config = scratch.path + "/burrow.toml"
        try "[network]\nbind = \"wg0\"\n[firewall]\nmatch = \"uid:0\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        let options = try FirewallSpecOptions.parse(["--config", config])
        #expect(try options.network.resolve(environment: [:]).firewallMatch == .user(uid: 0, name: nil))
        #expect(try FirewallSpecOptions.parse(["--config", config, "--match", "cgroup:burrow"]).spec().match
                    == .cgroup(path: "burrow"))
        #expect { try FirewallSpecOptions.parse(["--config", config, "--match", "mac"]) } throws: {
            FirewallSpecOptions.message(for: $0).hasPrefix("--match: invalid firewall match \"mac\"")
        }
    }
}
