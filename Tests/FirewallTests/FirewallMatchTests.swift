import Testing
@testable import Firewall
import Sockets

@Suite struct FirewallMatchTests {
    @Test func markIsTheDefaultSpelling() throws {
        #expect(try FirewallMatch(parsing: "mark") == .mark(SocketMark.burrow))
        #expect(FirewallMatch.burrowMark.description == "mark 0x42525700")
    }

    @Test func userByNameResolvesToTheUid() throws {
        // root exists everywhere with uid 0.
        let match = try FirewallMatch(parsing: "uid:root")
        #expect(match == .user(uid: 0, name: "root"))
        #expect(match == .user(uid: 0, name: nil), "a user by name and by number is the same uid")
        #expect(try FirewallMatch(parsing: "uid:1001") == .user(uid: 1001, name: nil))
        #expect(match.argument == "uid:root")
    }

    @Test func cgroupPathIsNormalisedAndItsLevelCounted() throws {
        let match = try FirewallMatch(parsing: "cgroup:/system.slice/burrow.service/")
        #expect(match == .cgroup(path: "system.slice/burrow.service"))
        #expect(match.cgroupLevel == 2)
    }

    @Test(arguments: [
        ("marks", "expected mark, uid:NAME or cgroup:PATH"),
        ("uid:", "needs a user name or number"),
        ("uid:no-such-user-burrow-test", "there is no user named \"no-such-user-burrow-test\""),
        ("cgroup:", "needs a cgroup v2 path"),
        ("cgroup:a/../b", "may not contain . or .."),
        ("cgroup:a\"b", "contains \"\"\""),
    ])
    func badMatchesSayWhatIsWrong(text: String, expected: String) {
        #expect {
            _ = try FirewallMatch(parsing: text)
        } throws: { error in
            "\(error)".contains(expected) && "\(error)".contains(text)
        }
    }
}
