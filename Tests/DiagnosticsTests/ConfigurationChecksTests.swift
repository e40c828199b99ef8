import Sockets
import Testing
@testable import Diagnostics

@Suite struct BindingCheckTests {
    let check = BindingCheck()

    @Test func aTunnelBindingIsOk() {
        let result = check.evaluate(Machine.healthy, configuration: Machine.bound)
        #expect(result.status == .ok)
        #expect(result.detail == "bound to wg0")
        #expect(result.fix == nil)
    }

    @Test func noBindingAtAllIsAProblem() {
        let result = check.evaluate(Machine.healthy, configuration: DoctorConfiguration(policy: nil))
        #expect(result.status == .problem)
        #expect(result.detail.contains("no interface to bind to"))
        #expect(result.fix?.contains("--bind") == true)
    }

    @Test func unboundIsAProblem() {
        let result = check.evaluate(Machine.healthy, configuration: DoctorConfiguration(policy: .unbound))
        #expect(result.status == .problem)
        #expect(result.detail.contains("--allow-unbound"))
        #expect(result.fix?.contains("--bind") == true)
    }

    @Test(arguments: ["eth0", "enp3s0", "wlan0", "wlp2s0"])
    func aPhysicalLookingBindIsAWarning(_ name: String) {
        let configuration = DoctorConfiguration(policy: .bound(interfacePatterns: ["wg0", name]))
        let result = check.evaluate(Machine.healthy, configuration: configuration)
        #expect(result.status == .warning)
        #expect(result.detail.contains("\(name) looks like a physical adapter"))
        #expect(result.fix != nil)
    }
}

@Suite struct InterfacesCheckTests {
    let check = InterfacesCheck()

    @Test func anUpTunnelWithAnAddressIsOk() {
        let result = check.evaluate(Machine.healthy, configuration: Machine.bound)
        #expect(result.status == .ok)
        #expect(result.detail == "usable: wg0 (10.64.0.2)")
    }

    @Test func aMissingInterfaceIsAProblem() {
        let snapshot = SystemSnapshot(interfaces: [Machine.loopback, Machine.ethernet])
        let result = check.evaluate(snapshot, configuration: Machine.bound)
        #expect(result.status == .problem)
        #expect(result.detail.contains("no interface matches wg0"))
        #expect(result.fix?.contains("wg-quick up wg0") == true)
    }

    @Test func anAdministrativelyDownInterfaceIsAProblem() {
        let snapshot = SystemSnapshot(interfaces: [Machine.ethernet, interface("wg0", index: 3, up: false, addresses: ["10.64.0.2"])])
        let result = check.evaluate(snapshot, configuration: Machine.bound)
        #expect(result.status == .problem)
        #expect(result.detail.contains("wg0 is down (admin down)"))
        #expect(result.fix?.contains("ip link set wg0 up") == true)
    }

    @Test func anInterfaceWithoutCarrierIsAProblem() {
        let snapshot = SystemSnapshot(interfaces: [interface("wg0", index: 3, carrier: false, addresses: ["10.64.0.2"])])
        let result = check.evaluate(snapshot, configuration: Machine.bound)
        #expect(result.status == .problem)
        #expect(result.detail.contains("wg0 is down (carrier lost)"))
    }

    @Test func anInterfaceWithNoAddressIsAProblem() {
        let snapshot = SystemSnapshot(interfaces: [interface("wg0", index: 3)])
        let result = check.evaluate(snapshot, configuration: Machine.bound)
        #expect(result.status == .problem)
        #expect(result.detail.contains("wg0 has no address"))
    }

    @Test func onlyALinkLocalAddressIsNoUsableAddress() {
        let snapshot = SystemSnapshot(interfaces: [interface("wg0", index: 3, addresses: ["fe80::5"])])
        let result = check.evaluate(snapshot, configuration: Machine.bound)
        #expect(result.status == .problem)
        #expect(result.detail.contains("only unusable addresses (fe80::5"))
    }

    @Test func oneUsableOfTwoBoundPatternsIsAWarning() {
        let configuration = DoctorConfiguration(policy: .bound(interfacePatterns: ["wg0", "tun0"]))
        let result = check.evaluate(Machine.healthy, configuration: configuration)
        #expect(result.status == .warning)
        #expect(result.detail.contains("usable: wg0"))
        #expect(result.detail.contains("no interface matches tun0"))
    }

    @Test func aPatternMatchesEveryInterfaceItNames() {
        let snapshot = SystemSnapshot(interfaces: [
            interface("wg0", index: 3, addresses: ["10.64.0.2"]), interface("wg1", index: 4, up: false),
        ])
        let result = check.evaluate(snapshot, configuration: DoctorConfiguration(policy: .bound(interfacePatterns: ["wg*"])))
        #expect(result.status == .warning)
        #expect(result.detail.contains("wg1 is down"))
    }

    @Test func withoutABindingThereIsNothingToCheck() {
        let result = check.evaluate(Machine.healthy, configuration: DoctorConfiguration(policy: .unbound))
        #expect(result.status == .ok)
        #expect(result.detail.contains("not applicable"))
    }
}

@Suite struct FirewallCheckTests {
    let check = FirewallCheck()

    func evaluate(_ firewall: FirewallObservation, _ configuration: DoctorConfiguration = Machine.bound) -> CheckResult {
        var snapshot = Machine.healthy
        snapshot.firewall = firewall
        return check.evaluate(snapshot, configuration: configuration)
    }

    @Test func aMatchingTableIsOk() {
        let result = evaluate(.active(Machine.healthyFirewall))
        #expect(result.status == .ok)
        #expect(result.detail == "active and matching: Burrow's packets (mark 0x42525700) may leave only through wg0")
    }

    @Test func aMissingTableIsAProblem() {
        let result = evaluate(.absent, DoctorConfiguration(policy: .bound(interfacePatterns: ["wg0", "tun*"])))
        #expect(result.status == .problem)
        #expect(result.detail.contains("not loaded"))
        #expect(result.fix == "run `burrow firewall apply --bind wg0,tun*` as root")
    }

    @Test func aDifferingTableIsAProblemListingEachDifference() {
        let differing = FirewallTable(comparison: .differs(["allows tun0 (not configured)", "does not allow wg0 (configured)"]),
                                      allowedInterfaces: ["tun0"])
        let result = evaluate(.active(differing))
        #expect(result.status == .problem)
        #expect(result.detail == "active but differs from the configuration: allows tun0 (not configured); does not allow wg0 (configured)")
        #expect(result.fix?.contains("burrow firewall apply --bind wg0") == true)
    }

    @Test func aTableWhileUnboundIsAProblem() {
        let table = FirewallTable(comparison: .notCompared, allowedInterfaces: ["wg0"])
        let result = evaluate(.active(table), DoctorConfiguration(policy: .unbound))
        #expect(result.status == .problem)
        #expect(result.detail.contains("runs unbound"))
    }

    @Test func noTableWhileUnboundIsOnlyAWarning() {
        #expect(evaluate(.absent, DoctorConfiguration(policy: .unbound)).status == .warning)
    }

    @Test func aTableWithoutConfigurationIsShownUncompared() {
        let table = FirewallTable(comparison: .notCompared, allowedInterfaces: ["wg0"])
        let result = evaluate(.active(table), DoctorConfiguration(policy: nil))
        #expect(result.status == .ok)
        #expect(result.detail.contains("no --bind given to compare it with"))
    }

    @Test func anUnreadableStateIsAWarningAskingForRoot() {
        let result = evaluate(.unreadable("burrow firewall status needs CAP_NET_ADMIN (run as root)"))
        #expect(result.status == .warning)
        #expect(result.detail.contains("CAP_NET_ADMIN"))
        #expect(result.fix?.contains("as root") == true)
    }
}
