import Testing
@testable import Firewall
import Sockets

@Suite struct NftablesRulesetTests {
    @Test func namesAndPatternsBecomeOifnameRulesInOrder() throws {
        let spec = try FirewallSpec(allowedInterfaces: ["wg0", "tun*", "wg0"], match: .burrowMark)
        #expect(spec.allowedInterfaces == ["wg0", "tun*"], "duplicates collapse, order kept")
        let text = try NftablesRuleset.batch(for: spec)
        let rules = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let chainStart = try #require(rules.firstIndex(of: "chain output {"))
        #expect(Array(rules[(chainStart + 1)...(chainStart + 8)]) == [
            "type filter hook output priority filter; policy accept;",
            "meta mark != 0x42525700 return",
            "oifname \"wg0\" accept",
            "oifname \"tun*\" accept",
            "oifname \"lo\" counter name \"loopback_dropped\" drop",
            "meta nfproto ipv4 counter name \"leak_attempts_ipv4\" drop",
            "meta nfproto ipv6 counter name \"leak_attempts_ipv6\" drop",
            "}",
        ])
    }

    @Test func batchDeletesAndRecreatesOnlyBurrowsTableAtomically() throws {
        let text = try NftablesRuleset.batch(for: FirewallSpec(allowedInterfaces: ["wg0"], match: .burrowMark))
        let commands = text.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.hasPrefix("\t") }
        #expect(Array(commands.prefix(3)) == ["table inet burrow", "delete table inet burrow", "table inet burrow {"])
        // Both families: one inet table, one counter per family, nothing outside Burrow's table.
        #expect(text.contains("counter leak_attempts_ipv4 {") && text.contains("counter leak_attempts_ipv6 {"))
        #expect(text.contains("counter loopback_dropped {"))
        #expect(!text.contains("flush ruleset"))
        #expect(!text.contains("table ip ") && !text.contains("table ip6 "))
        #expect(!text.contains("oifname \"lo\" accept"), "loopback is not allowed for Burrow's packets")
        #expect(NftablesRuleset.removalBatch == "table inet burrow\ndelete table inet burrow\n")
    }

    @Test func eachMatchKindIdentifiesBurrowsTraffic() throws {
        let cases: [(FirewallMatch, String)] = [
            (.burrowMark, "meta mark != 0x42525700 return"),
            (.mark(0x1), "meta mark != 0x1 return"),
            (.user(uid: 1001, name: "burrow"), "meta skuid != 1001 return"),
            (.cgroup(path: "system.slice/burrow.service"), "socket cgroupv2 level 2 != \"system.slice/burrow.service\" return"),
            (.cgroup(path: "burrow"), "socket cgroupv2 level 1 != \"burrow\" return"),
        ]
        for (match, expected) in cases {
            let text = try NftablesRuleset.batch(for: FirewallSpec(allowedInterfaces: ["wg0"], match: match))
            #expect(text.contains("\t\t" + expected + "\n"), "\(match)")
            #expect(text.components(separatedBy: " return\n").count == 2, "exactly one identity rule for \(match)")
        }
    }

    @Test(arguments: ["tun?", "wg[0-3]", "*vpn", "w*g", "!eth0"])
    func globsNftCannotExpressAreRefused(pattern: String) throws {
        let spec = try FirewallSpec(allowedInterfaces: [pattern], match: .burrowMark)
        #expect {
            _ = try NftablesRuleset.batch(for: spec)
        } throws: { error in
            "\(error)".contains("\"\(pattern)\" cannot be expressed in nftables")
        }
    }

    @Test func specRefusesWhatWouldEnforceNothing() {
        #expect(throws: FirewallError.self) { try FirewallSpec(policy: .unbound, match: .burrowMark) }
        #expect(throws: FirewallError.self) { try FirewallSpec(allowedInterfaces: [], match: .burrowMark) }
        #expect { try FirewallSpec(allowedInterfaces: ["*"], match: .burrowMark) } throws: { error in
            "\(error)".contains("allows every interface")
        }
        #expect { try FirewallSpec(allowedInterfaces: ["wg\"0"], match: .burrowMark) } throws: { error in
            "\(error)".contains("contains")
        }
    }

    @Test func specFromPolicyKeepsItsPatterns() throws {
        let spec = try FirewallSpec(policy: .bound(interfacePatterns: ["wg*", "tun0"]), match: .burrowMark)
        #expect(spec.allowedInterfaces == ["wg*", "tun0"])
        #expect(BurrowTable.rules(for: spec) == [
            .ignoreUnless(.burrowMark), .allowInterface("wg*"), .allowInterface("tun0"), .dropLoopback(counter: "loopback_dropped"),
            .countAndDrop(.ipv4, counter: "leak_attempts_ipv4"), .countAndDrop(.ipv6, counter: "leak_attempts_ipv6"),
        ])
    }

    @Test func capabilityBitIsReadFromProcStatus() {
        #expect(NetAdminCapability.hasNetAdmin(procStatus: "Name:\tx\nCapEff:\t000001ffffffffff\n"))
        #expect(NetAdminCapability.hasNetAdmin(procStatus: "CapEff:\t0000000000001000\n"))
        #expect(!NetAdminCapability.hasNetAdmin(procStatus: "CapEff:\t0000000000000000\n"))
        #expect(!NetAdminCapability.hasNetAdmin(procStatus: "CapPrm:\t000001ffffffffff\n"))
    }
}

@Suite struct PfAnchorTests {
    @Test func anchorHasTheSameMeaningAsTheNftTable() throws {
        let spec = try FirewallSpec(allowedInterfaces: ["utun3", "wg*"], match: .user(uid: 501, name: "burrow"))
        let text = try PfAnchor.rules(for: spec)
        let rules = text.split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(rules == [
            "pass out quick on utun3 proto { tcp udp } all user 501 keep state",
            "pass out quick on wg proto { tcp udp } all user 501 keep state",
            "block drop out quick on lo0 proto { tcp udp } all user 501 label \"burrow-loopback\"",
            "block drop out log quick inet proto { tcp udp } all user 501 label \"burrow-leak-ipv4\"",
            "block drop out log quick inet6 proto { tcp udp } all user 501 label \"burrow-leak-ipv6\"",
        ])
        #expect(text.contains("pfctl -a burrow -f -"))
        #expect(PfAnchor.loadArguments == ["-a", "burrow", "-f", "-"])
    }

    @Test func pfNeedsAUserMatchAndExpressiblePatterns() throws {
        #expect { try PfAnchor.rules(for: FirewallSpec(allowedInterfaces: ["utun3"], match: .burrowMark)) } throws: {
            "\($0)".contains("pf cannot identify Burrow's traffic by mark") && "\($0)".contains("uid:NAME")
        }
        #expect { try PfAnchor.rules(for: FirewallSpec(allowedInterfaces: ["utun?"], match: .user(uid: 1, name: nil))) } throws: {
            "\($0)".contains("\"utun?\" cannot be expressed in pf")
        }
    }

    @Test func labelCountersAreSummedPerFamily() {
        let output = """
            burrow-leak-ipv4 10 3 180 0 0 3 180 0
            burrow-leak-ipv4 10 1 60 0 0 1 60 0
            burrow-leak-ipv6 4 2 200 0 0 2 200 0
            other-label 1 1 1 0 0 0 0 0
            """
        let counters = PfAnchor.counters(fromLabels: output)
        #expect(counters[.ipv4] == LiveTable.Counter(packets: 4, bytes: 240))
        #expect(counters[.ipv6] == LiveTable.Counter(packets: 2, bytes: 200))
    }

    @Test func pfRulesListingIsComparedWithTheConfiguration() throws {
        let spec = try FirewallSpec(allowedInterfaces: ["utun3"], match: .user(uid: 501, name: nil))
        let live = """
            pass out quick on utun3 proto tcp all user = 501 flags S/SA keep state
            pass out quick on utun3 proto udp all user = 501 keep state
            block drop out quick on lo0 proto tcp all user = 501 label "burrow-loopback"
            block drop out quick on lo0 proto udp all user = 501 label "burrow-loopback"
            block drop out log quick inet proto tcp all user = 501 label "burrow-leak-ipv4"
            block drop out log quick inet proto udp all user = 501 label "burrow-leak-ipv4"
            block drop out log quick inet6 proto tcp all user = 501 label "burrow-leak-ipv6"
            block drop out log quick inet6 proto udp all user = 501 label "burrow-leak-ipv6"
            """
        #expect(try PfAnchor.state(fromRules: live, expected: spec) == .matching)
        #expect(try PfAnchor.state(fromRules: "", expected: spec) == .notInstalled)
        let other = try FirewallSpec(allowedInterfaces: ["utun4"], match: .user(uid: 501, name: nil))
        #expect(try PfAnchor.state(fromRules: live, expected: other)
                == .differs(["allows utun3 (not configured)", "does not allow utun4 (configured)"]))
    }
}
