import Config
import Firewall
import Foundation
import NIOCore
import Testing

@Suite struct TOMLSettingsWriterTests {
    private let full = Settings(
        network: NetworkSettings(bind: ["wg0", "tun*"], port: 51413,
                                 dns: [try! SocketAddress(ipAddress: "10.64.0.1", port: 53),
                                       try! SocketAddress(ipAddress: "fd00::1", port: 53)]),
        firewall: FirewallSettings(match: .cgroup(path: "system.slice/burrow.service")),
        storage: StorageSettings(stateDir: "/var/lib/burrow"))

    @Test func savedSettingsReadBackEqual() throws {
        try withTemporaryFolder { folder in
            let path = folder + "/burrow.toml"
            try TOMLSettingsWriter.save(full, to: path)
            #expect(try TOMLSettingsReader.read(path: path) == full)

            var unbound = Settings()
            unbound.network.allowUnbound = true
            try TOMLSettingsWriter.save(unbound, to: path)
            #expect(try TOMLSettingsReader.read(path: path) == unbound, "keys unset now are removed")
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["burrow.toml"],
                    "no temporary file is left behind")
        }
    }

    @Test func savingKeepsPermissionsAndTheSymlink() throws {
        try withTemporaryFolder { folder in
            let real = folder + "/real.toml"
            let link = folder + "/burrow.toml"
            try "[network]\nport = 1\n".write(toFile: real, atomically: false, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: real)
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: real)

            try TOMLSettingsWriter.save(full, to: link)
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == real)
            #expect(try FileManager.default.attributesOfItem(atPath: real)[.posixPermissions] as? Int == 0o640)
            #expect(try TOMLSettingsReader.read(path: link) == full)

            // The owner too, where the writer may set it (as root: a file of nobody's stays nobody's).
            if geteuid() == 0 {
                try FileManager.default.setAttributes([.ownerAccountID: 65534, .groupOwnerAccountID: 65534], ofItemAtPath: real)
                try TOMLSettingsWriter.save(Settings(), to: link)
                let attributes = try FileManager.default.attributesOfItem(atPath: real)
                #expect(attributes[.ownerAccountID] as? Int == 65534 && attributes[.groupOwnerAccountID] as? Int == 65534)
            }

            let fresh = folder + "/new.toml"
            try TOMLSettingsWriter.save(full, to: fresh)
            #expect(try FileManager.default.attributesOfItem(atPath: fresh)[.posixPermissions] as? Int == 0o600)
        }
    }

    /// Keys Burrow does not model (a later module's table) survive a save; Burrow's own keys are rewritten.
    @Test func otherKeysAreKept() throws {
        let text = try TOMLSettingsWriter.document(
            for: full, over: "[rpc]\nusername = \"me\"\n[network]\nport = 1\nallow_unbound = false\n",
            source: .file(path: "t"))
        #expect(text.contains("username = \"me\""), "got: \(text)")
        #expect(text.contains("port = 51413"), "got: \(text)")
        #expect(!text.contains("allow_unbound"), "got: \(text)")
    }

    @Test func savingOverABrokenFileIsRefused() throws {
        try withTemporaryFolder { folder in
            let path = folder + "/burrow.toml"
            try "[network\n".write(toFile: path, atomically: false, encoding: .utf8)
            let message = errorText { try TOMLSettingsWriter.save(full, to: path) }
            #expect(message.hasPrefix("\(path):1: not valid TOML"), "got: \(message)")
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "[network\n")
        }
    }
}
