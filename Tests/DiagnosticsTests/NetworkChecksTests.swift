import Sockets
import Testing
@testable import Diagnostics

@Suite struct DNSRouteCheckTests {
    let check = DNSRouteCheck()

    @Test func aServerRoutedThroughTheTunnelIsOk() {
        let result = check.evaluate(Machine.healthy, configuration: Machine.bound)
        #expect(result.status == .ok)
        #expect(result.detail == "--dns: 10.64.0.1 via wg0")
    }

    @Test func aServerRoutedViaTheClearInterfaceIsAProblem() {
        var snapshot = Machine.healthy
        snapshot.routes["10.64.0.1"] = Machine.route("10.64.0.1", via: "eth0", gateway: "192.0.2.1")
        let result = check.evaluate(snapshot, configuration: Machine.bound)
        #expect(result.status == .problem)
        #expect(result.detail.contains("10.64.0.1 is routed via eth0 (gateway 192.0.2.1), not a bound interface"))
        #expect(result.fix?.contains("--dns") == true)
    }

    @Test func resolvConfServersAreUsedWithoutDNSOption() {
        var snapshot = Machine.healthy
        snapshot.routes = ["192.0.2.1": Machine.route("192.0.2.1", via: "eth0")]
        let result = check.evaluate(snapshot, configuration: DoctorConfiguration(policy: .bound(interfacePatterns: ["wg0"])))
        #expect(result.status == .problem)
        #expect(result.detail.hasPrefix("resolv.conf: 192.0.2.1 is routed via eth0"))
    }

    @Test func aLocalStubResolverIsAProblem() {
        var snapshot = Machine.healthy
        snapshot.resolvConf = .parsed(ResolvConf.parse("nameserver 127.0.0.53\n"))
        snapshot.routes = ["127.0.0.53": .route(KernelRoute(destination: "127.0.0.53", device: "lo", type: "local"))]
        let result = check.evaluate(snapshot, configuration: DoctorConfiguration(policy: .bound(interfacePatterns: ["wg0"])))
        #expect(result.status == .problem)
        #expect(result.detail.contains("127.0.0.53 is a local resolver"))
    }

    @Test func anUnroutableServerIsAProblem() {
        var snapshot = Machine.healthy
        snapshot.routes["10.64.0.1"] = .failed("`ip route get 10.64.0.1`: RTNETLINK answers: Network is unreachable")
        let result = check.evaluate(snapshot, configuration: Machine.bound)
        #expect(result.status == .problem)
        #expect(result.detail.contains("10.64.0.1: no route (`ip route get 10.64.0.1`: RTNETLINK answers: Network is unreachable)"))
    }

    @Test func noServerAtAllIsAProblem() {
        var snapshot = Machine.healthy
        snapshot.resolvConf = .unavailable("/etc/resolv.conf cannot be read: no such file")
        let result = check.evaluate(snapshot, configuration: DoctorConfiguration(policy: .bound(interfacePatterns: ["wg0"])))
        #expect(result.status == .problem)
        #expect(result.detail.contains("no DNS server is configured (/etc/resolv.conf cannot be read: no such file)"))
    }

    @Test func unboundIsAWarningNamingTheRoutes() {
        let result = check.evaluate(Machine.healthy, configuration: DoctorConfiguration(policy: .unbound, dnsServers: [dnsServer("10.64.0.1")]))
        #expect(result.status == .warning)
        #expect(result.detail.contains("not bound"))
    }
}

@Suite struct DNSQueryCheckTests {
    let check = DNSQueryCheck()
    let probing = DoctorConfiguration(policy: .bound(interfacePatterns: ["wg0"]), dnsServers: [dnsServer("10.64.0.1")],
                                      probeName: "example.org")

    @Test func withoutAProbeNameTheQueryIsSkippedAndSaysSo() {
        let result = check.evaluate(Machine.healthy, configuration: Machine.bound)
        #expect(result.status == .ok)
        #expect(result.detail.contains("skipped"))
        #expect(result.detail.contains("--probe-name"))
    }

    @Test func anAnsweredQueryIsOk() {
        var snapshot = Machine.healthy
        snapshot.dnsQueries = ["10.64.0.1": .answered(addresses: ["93.184.215.14"])]
        let result = check.evaluate(snapshot, configuration: probing)
        #expect(result.status == .ok)
        #expect(result.detail == "example.org: 10.64.0.1 answered 93.184.215.14")
    }

    @Test func aFailedQueryIsAProblem() {
        var snapshot = Machine.healthy
        snapshot.dnsQueries = ["10.64.0.1": .failed("10.64.0.1:53 A over UDP: timed out after 3 s")]
        let result = check.evaluate(snapshot, configuration: probing)
        #expect(result.status == .problem)
        #expect(result.detail.contains("no DNS server answered example.org"))
        #expect(result.detail.contains("timed out after 3 s"))
    }

    @Test func oneFailingServerOfTwoIsAWarning() {
        var configuration = probing
        configuration.dnsServers.append(dnsServer("10.64.0.9"))
        var snapshot = Machine.healthy
        snapshot.dnsQueries = ["10.64.0.1": .answered(addresses: ["93.184.215.14"]), "10.64.0.9": .failed("refused")]
        let result = check.evaluate(snapshot, configuration: configuration)
        #expect(result.status == .warning)
        #expect(result.detail.contains("10.64.0.9: refused"))
    }
}

@Suite struct IPv6ExposureCheckTests {
    let check = IPv6ExposureCheck()

    @Test func linkLocalAndUniqueLocalOutsideTheTunnelAreFine() {
        var snapshot = Machine.healthy
        snapshot.interfaces.append(interface("eth1", index: 5, addresses: ["fd12:3456::1", "fe80::2"]))
        let result = check.evaluate(snapshot, configuration: Machine.bound)
        #expect(result.status == .ok)
        #expect(result.detail == "no global IPv6 address on any interface")
    }

    @Test func globalIPv6OnAClearInterfaceIsAWarning() {
        var snapshot = Machine.healthy
        snapshot.interfaces[1] = interface("eth0", index: 2, addresses: ["192.0.2.2", "2001:db8:1::2"])
        let result = check.evaluate(snapshot, configuration: Machine.bound)
        #expect(result.status == .warning)
        #expect(result.detail.contains("eth0 (2001:db8:1::2)"))
        #expect(result.detail.contains("Burrow never uses them"))
        #expect(result.fix?.contains("disable_ipv6") == true)
    }

    @Test func globalIPv6OnTheTunnelIsFine() {
        var snapshot = Machine.healthy
        snapshot.interfaces[2] = interface("wg0", index: 3, addresses: ["10.64.0.2", "2001:db8:64::2"])
        let result = check.evaluate(snapshot, configuration: Machine.bound)
        #expect(result.status == .ok)
        #expect(result.detail == "global IPv6 only inside the tunnel: wg0 (2001:db8:64::2)")
    }

    @Test func aDownInterfaceExposesNothing() {
        var snapshot = Machine.healthy
        snapshot.interfaces.append(interface("eth1", index: 5, up: false, addresses: ["2001:db8:2::2"]))
        #expect(check.evaluate(snapshot, configuration: Machine.bound).status == .ok)
    }
}

@Suite struct DNSQueryNoAddressTests {
    @Test func aServerSayingTheNameDoesNotExistIsReachableButAWarning() {
        var snapshot = Machine.healthy
        snapshot.dnsQueries = ["10.64.0.1": .answeredNoAddress("could not resolve nosuch.example: 10.64.0.1:53 says the name does not exist (NXDOMAIN)")]
        let configuration = DoctorConfiguration(policy: .bound(interfacePatterns: ["wg0"]), dnsServers: [dnsServer("10.64.0.1")],
                                                probeName: "nosuch.example")
        let result = DNSQueryCheck().evaluate(snapshot, configuration: configuration)
        #expect(result.status == .warning)
        #expect(result.detail.hasPrefix("reachable through the tunnel, but could not resolve nosuch.example"))
        #expect(result.fix?.contains("--probe-name") == true)
    }
}
