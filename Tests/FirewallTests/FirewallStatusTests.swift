import Foundation
import Testing
@testable import Firewall

/// `nft -j list table inet burrow` output, shaped like nft 1.0.6 prints it.
enum CannedListing {
    static func rule(_ handle: Int, _ expressions: String) -> String {
        #"{"rule": {"family": "inet", "table": "burrow", "chain": "output", "handle": \#(handle), "expr": [\#(expressions)]}}"#
    }

    static func identity(_ key: String, _ value: String, source: String = "meta") -> String {
        #"{"match": {"op": "!=", "left": {"\#(source)": {"key": "\#(key)"}}, "right": \#(value)}}, {"return": null}"#
    }

    static func allow(_ name: String) -> String {
        #"{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "\#(name)"}}, {"accept": null}"#
    }

    static func drop(_ family: String) -> String {
        #"{"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "\#(family)"}}, {"counter": "leak_attempts_\#(family)"}, {"drop": null}"#
    }

    static func counter(_ family: String, packets: Int, bytes: Int) -> String {
        named("leak_attempts_" + family, packets: packets, bytes: bytes)
    }

    static func named(_ name: String, packets: Int, bytes: Int) -> String {
        #"{"counter": {"family": "inet", "name": "\#(name)", "table": "burrow", "handle": 2, "packets": \#(packets), "bytes": \#(bytes)}}"#
    }

    static let loopback = #"{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "lo"}}, {"counter": "loopback_dropped"}, {"drop": null}"#

    static let chain = #"{"chain": {"family": "inet", "table": "burrow", "name": "output", "handle": 1, "type": "filter", "hook": "output", "prio": 0, "policy": "accept"}}"#

    static func listing(identity: String = identity("mark", "1112692480"), allowed: [String] = ["wg0", "tun*"],
                        extraRules: [String] = [], chain: String = chain,
                        counters: [String] = [counter("ipv4", packets: 7, bytes: 420), counter("ipv6", packets: 1, bytes: 80),
                                              named("loopback_dropped", packets: 11, bytes: 660)]) -> Data {
        var items = [#"{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}"#,
                     #"{"table": {"family": "inet", "name": "burrow", "handle": 3}}"#]
        items += counters
        items.append(chain)
        var handle = 4
        for expressions in [identity] + allowed.map(allow) + [loopback, drop("ipv4"), drop("ipv6")] + extraRules {
            items.append(rule(handle, expressions))
            handle += 1
        }
        return Data(#"{"nftables": [\#(items.joined(separator: ", "))]}"#.utf8)
    }
}

@Suite struct FirewallStatusTests {
    let spec = try! FirewallSpec(allowedInterfaces: ["wg0", "tun*"], match: .burrowMark)

    @Test func liveTableThatMatchesTheConfiguration() throws {
        let live = try NftablesListing.parse(CannedListing.listing())
        #expect(live.rules["output"] == BurrowTable.rules(for: spec))
        let status = FirewallStatus(live: live, expected: spec)
        #expect(status.state == .matching)
        #expect(status.verdict == "active and matching")
        #expect(status.leakAttempts == LiveTable.Counter(packets: 8, bytes: 500))
        #expect(status.countersLine == "leak attempts blocked: 8 packets, 500 bytes (IPv4 7 packets, 420 bytes; IPv6 1 packets, 80 bytes)")
        #expect(status.loopback == LiveTable.Counter(packets: 11, bytes: 660), "loopback drops are not leak attempts")
        #expect(status.loopbackLine?.hasSuffix("11 packets, 660 bytes") == true)
    }

    @Test func missingTableIsNotInstalled() {
        let status = FirewallStatus(live: nil, expected: spec)
        #expect(status.state == .notInstalled)
        #expect(status.verdict == "not installed")
        #expect(status.countersLine == nil)
    }

    @Test func otherInterfacesAreNamed() throws {
        let live = try NftablesListing.parse(CannedListing.listing(allowed: ["wg0", "eth0"]))
        let status = FirewallStatus(live: live, expected: spec)
        #expect(status.state == .differs(["allows eth0 (not configured)", "does not allow tun* (configured)"]))
        #expect(status.verdict == "active but differs: allows eth0 (not configured); does not allow tun* (configured)")
    }

    @Test func otherIdentityIsNamed() throws {
        let live = try NftablesListing.parse(CannedListing.listing(identity: CannedListing.identity("skuid", "1001")))
        #expect(live.rules["output"]?.first == .ignoreUnless(.user(uid: 1001, name: nil)))
        let status = FirewallStatus(live: live, expected: spec)
        #expect(status.state == .differs(["identifies Burrow's traffic by uid 1001 (configured: mark 0x42525700)"]))
        let userSpec = try FirewallSpec(allowedInterfaces: ["wg0", "tun*"], match: .user(uid: 1001, name: "burrow"))
        #expect(FirewallStatus(live: live, expected: userSpec).state == .matching, "uid by name equals uid by number")
    }

    @Test func cgroupRulesAreReadWithoutTheirLevel() throws {
        // nft 1.0.6 leaves the level out of the JSON; the path determines it.
        let live = try NftablesListing.parse(CannedListing.listing(
            identity: CannedListing.identity("cgroupv2", "\"system.slice/burrow.service\"", source: "socket")))
        let cgroupSpec = try FirewallSpec(allowedInterfaces: ["wg0", "tun*"], match: .cgroup(path: "system.slice/burrow.service"))
        #expect(FirewallStatus(live: live, expected: cgroupSpec).state == .matching)
    }

    @Test func handEditedRulesChainsAndCountersAreReported() throws {
        let extra = #"{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "lo"}}, {"counter": {"packets": 0, "bytes": 0}}, {"accept": null}"#
        let otherChain = #"{"chain": {"family": "inet", "table": "burrow", "name": "output", "handle": 1, "type": "filter", "hook": "output", "prio": 0, "policy": "drop"}}"#
        let live = try NftablesListing.parse(CannedListing.listing(
            extraRules: [extra], chain: otherChain, counters: [CannedListing.counter("ipv4", packets: 0, bytes: 0)]))
        guard case .differs(let differences) = FirewallStatus(live: live, expected: spec).state else {
            Issue.record("expected differences")
            return
        }
        #expect(differences.contains { $0.hasPrefix("chain output is type filter hook output priority 0 policy drop") })
        #expect(differences.contains("counter leak_attempts_ipv6 is missing"))
        #expect(differences.contains("counter loopback_dropped is missing"))
        #expect(differences.contains { $0.hasPrefix("unexpected rule [") && $0.contains("\"lo\"") })
    }

    @Test func reorderedRulesDiffer() throws {
        let live = try NftablesListing.parse(CannedListing.listing(allowed: ["tun*", "wg0"]))
        guard case .differs(let differences) = FirewallStatus(live: live, expected: spec).state else {
            Issue.record("a different rule order must not count as matching")
            return
        }
        #expect(differences.count == 1 && differences[0].hasPrefix("rules are in a different order"))
    }

    @Test func missingIdentityRuleMeansEveryProgramIsFiltered() throws {
        var data = String(decoding: CannedListing.listing(), as: UTF8.self)
        data = data.replacingOccurrences(of: CannedListing.rule(4, CannedListing.identity("mark", "1112692480")) + ", ", with: "")
        let live = try NftablesListing.parse(Data(data.utf8))
        #expect(FirewallStatus(live: live, expected: spec).state
                == .differs(["no rule limits the chain to Burrow's traffic (configured: mark 0x42525700)"]))
    }

    @Test func unreadableListingsAreErrors() {
        #expect { try NftablesListing.parse(Data("nope".utf8)) } throws: { "\($0)".contains("not JSON") }
        #expect { try NftablesListing.parse(Data("{\"tables\": []}".utf8)) } throws: { "\($0)".contains("\"nftables\" array") }
    }
}
