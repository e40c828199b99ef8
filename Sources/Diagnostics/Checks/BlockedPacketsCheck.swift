/// Packets the firewall layer dropped: each one is something that tried to leave outside the tunnel and
/// was stopped only by the second layer.
public struct BlockedPacketsCheck: Check {
    public let id = "blocked-packets"
    public let title = "Packets blocked by the firewall"

    public init() {}

    public func evaluate(_ snapshot: SystemSnapshot, configuration: DoctorConfiguration) -> CheckResult {
        guard case .active(let table) = snapshot.firewall else {
            return ok("no counters: the firewall layer is not active (see the firewall check)")
        }
        guard let packets = table.droppedPackets else {
            return ok("the firewall table keeps no drop counters")
        }
        let bytes = table.droppedBytes.map { " (\($0) bytes)" } ?? ""
        guard packets == 0 else {
            return warning(
                "the firewall dropped \(packets) packet\(packets == 1 ? "" : "s")\(bytes) since it was applied: traffic tried to leave outside the tunnel and was stopped",
                fix: "usually a tunnel that went down mid-connection; if it keeps growing while the tunnel is up, report it (`journalctl -k`, `nft list table inet burrow`)")
        }
        return ok("no packet dropped since the firewall was applied")
    }
}
