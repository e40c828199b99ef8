/// Where the firewall layer's state comes from. The CLI plugs in the `Firewall` module's status reader;
/// tests plug in fixed observations.
public protocol FirewallStatusReading: Sendable {
    func observe() async -> FirewallObservation
}
