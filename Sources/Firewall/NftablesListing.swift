import Foundation

/// Burrow's table as the kernel holds it, read from `nft -j list table inet burrow`.
public struct LiveTable: Sendable, Equatable {
    public struct Chain: Sendable, Equatable {
        public var name: String
        public var type: String?
        public var hook: String?
        public var priority: Int?
        public var policy: String?
    }

    public struct Counter: Sendable, Equatable {
        public var packets: UInt64
        public var bytes: UInt64
    }

    public var chains: [Chain] = []
    /// Rules per chain name, in kernel order.
    public var rules: [String: [FirewallRule]] = [:]
    /// Named counters of the table by name.
    public var counters: [String: Counter] = [:]

    /// What was blocked on the way out, summed over the per-family counters that exist (not loopback).
    public var leakAttempts: Counter {
        IPFamily.allCases.compactMap { counters[BurrowTable.counter($0)] }
            .reduce(Counter(packets: 0, bytes: 0)) { Counter(packets: $0.packets + $1.packets, bytes: $0.bytes + $1.bytes) }
    }
}

/// Reads nft's JSON listing (libnftables JSON schema 1) with Foundation's JSONSerialization.
public enum NftablesListing {
    public static func parse(_ data: Data) throws(FirewallError) -> LiveTable {
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: data) } catch {
            throw .unreadableListing("not JSON (\(error.localizedDescription))")
        }
        guard let top = root as? [String: Any], let items = top["nftables"] as? [Any] else {
            throw .unreadableListing("expected an object with an \"nftables\" array")
        }
        var table = LiveTable()
        for case let item as [String: Any] in items {
            if let chain = item["chain"] as? [String: Any], belongsToBurrow(chain) {
                guard let name = chain["name"] as? String else { throw .unreadableListing("a chain without a name") }
                table.chains.append(LiveTable.Chain(
                    name: name, type: chain["type"] as? String, hook: chain["hook"] as? String,
                    priority: integer(chain["prio"]), policy: chain["policy"] as? String))
            } else if let counter = item["counter"] as? [String: Any], belongsToBurrow(counter) {
                guard let name = counter["name"] as? String else { throw .unreadableListing("a counter without a name") }
                table.counters[name] = LiveTable.Counter(packets: UInt64(max(0, integer(counter["packets"]) ?? 0)),
                                                         bytes: UInt64(max(0, integer(counter["bytes"]) ?? 0)))
            } else if let rule = item["rule"] as? [String: Any], belongsToBurrow(rule) {
                guard let chain = rule["chain"] as? String, let expressions = rule["expr"] as? [Any] else {
                    throw .unreadableListing("a rule without chain or expressions")
                }
                table.rules[chain, default: []].append(classify(expressions))
            }
        }
        return table
    }

    private static func belongsToBurrow(_ object: [String: Any]) -> Bool {
        object["family"] as? String == BurrowTable.family && object["table"] as? String == BurrowTable.name
    }

    /// Recognises the shapes Burrow generates; anything else is kept, described, as `.unrecognized`.
    static func classify(_ expressions: [Any]) -> FirewallRule {
        let parts = expressions.compactMap { $0 as? [String: Any] }
        if parts.count == expressions.count {
            if parts.count == 2, let match = comparison(parts[0]), parts[1].keys.contains("return"), match.op == "!=" {
                switch (match.subject, match.value) {
                case ("meta mark", let value as NSNumber) where UInt32(exactly: value.int64Value) != nil:
                    return .ignoreUnless(.mark(UInt32(value.int64Value)))
                case ("meta skuid", let value as NSNumber) where UInt32(exactly: value.int64Value) != nil:
                    return .ignoreUnless(.user(uid: UInt32(value.int64Value), name: nil))
                case ("socket cgroupv2", let value as String):
                    return .ignoreUnless(.cgroup(path: value.split(separator: "/").joined(separator: "/")))
                default: break
                }
            }
            if parts.count == 2, let match = comparison(parts[0]), match.op == "==", match.subject == "meta oifname",
               let name = match.value as? String, parts[1].keys.contains("accept") {
                return .allowInterface(name)
            }
            if parts.count == 3, let match = comparison(parts[0]), match.op == "==", match.subject == "meta oifname",
               match.value as? String == "lo", let counter = parts[1]["counter"] as? String, parts[2].keys.contains("drop") {
                return .dropLoopback(counter: counter)
            }
            if parts.count == 3, let match = comparison(parts[0]), match.op == "==", match.subject == "meta nfproto",
               let familyName = match.value as? String, let family = IPFamily(rawValue: familyName),
               let counter = parts[1]["counter"] as? String, parts[2].keys.contains("drop") {
                return .countAndDrop(family, counter: counter)
            }
        }
        return .unrecognized(render(expressions))
    }

    /// `{"match": {"op": "!=", "left": {"meta": {"key": "mark"}}, "right": 1}}` → ("!=", "meta mark", 1).
    private static func comparison(_ expression: [String: Any]) -> (op: String, subject: String, value: Any)? {
        guard let match = expression["match"] as? [String: Any], let left = match["left"] as? [String: Any],
              left.count == 1, let subject = left.first, let key = (subject.value as? [String: Any])?["key"] as? String,
              let right = match["right"] else { return nil }
        // nft omits "op" only for its implicit comparison, which is equality.
        return ((match["op"] as? String) ?? "==", "\(subject.key) \(key)", right)
    }

    /// A compact, stable rendering of a rule nobody expected, for "active but differs" messages.
    private static func render(_ expressions: [Any]) -> String {
        guard JSONSerialization.isValidJSONObject(expressions),
              let data = try? JSONSerialization.data(withJSONObject: expressions, options: [.sortedKeys]),
              let text = String(data: data, encoding: .utf8) else { return "\(expressions)" }
        return text.count > 300 ? String(text.prefix(300)) + "…" : text
    }

    private static func integer(_ value: Any?) -> Int? {
        if let number = value as? NSNumber { return number.intValue }
        return value as? Int
    }
}
