/// Is Burrow told which interfaces to use, and do they look like tunnels?
public struct BindingCheck: Check {
    public let id = "binding"
    public let title = "Binding configured"

    public init() {}

    public func evaluate(_ snapshot: SystemSnapshot, configuration: DoctorConfiguration) -> CheckResult {
        guard let policy = configuration.policy else {
            return problem(
                "no interface to bind to is configured: Burrow refuses to touch the network",
                fix: "pass --bind with your VPN interface (for example --bind wg0), or set it in the config file")
        }
        guard case .bound(let patterns) = policy else {
            return problem(
                "running unbound (--allow-unbound): the kernel may route traffic through any interface, revealing your address",
                fix: "replace --allow-unbound with --bind and your VPN interface (for example --bind wg0)")
        }
        let physical = policy.physicalLookingPatterns
        if !physical.isEmpty {
            return warning(
                "bound to \(patterns.spokenList), but \(physical.spokenList) looks like a physical adapter, not a VPN tunnel: traffic through it is not hidden",
                fix: "bind to the VPN's interface instead (wg0, tun0, ...; `ip link` lists them)")
        }
        return ok("bound to \(patterns.spokenList)")
    }
}
