#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore

/// Asks the kernel which way packets to an address would go.
public protocol RouteLookup: Sendable {
    func route(to destination: SocketAddress) -> RouteObservation
}

/// `ip -j route get ADDRESS [mark M]`: the kernel's own answer, including policy routing rules (which is
/// how wg-quick and most VPN clients steer traffic), so no routing logic is re-implemented here.
public struct IPRouteLookup: RouteLookup {
    /// Path to `ip`; nil when it is not installed.
    public let executable: String?
    /// The packet mark to look up with: Burrow's SO_MARK when Burrow marks its sockets (as root), so
    /// mark-based policy routing is taken into account exactly as for Burrow's packets.
    public let mark: UInt32?

    /// Uses the `ip` found in the system directories or PATH.
    public init(mark: UInt32? = nil) {
        self.init(executable: CommandRunner.locate("ip"), mark: mark)
    }

    init(executable: String?, mark: UInt32?) {
        self.executable = executable
        self.mark = mark
    }

    public func route(to destination: SocketAddress) -> RouteObservation {
        guard let executable else { return .failed("the `ip` tool (iproute2) is not installed") }
        guard let address = destination.ipAddress else { return .failed("\(destination) is not an IP address") }
        var arguments = ["-j", "route", "get", address]
        if let mark { arguments += ["mark", "0x" + String(mark, radix: 16)] }
        let output: CommandRunner.Output
        do {
            output = try CommandRunner.run(executable, arguments)
        } catch {
            return .failed("could not run \(executable): \(error.localizedDescription)")
        }
        guard output.status == 0 else {
            let said = output.stderr.isEmpty ? "exit status \(output.status)" : output.stderr
            return .failed("`ip route get \(address)`: \(said)")
        }
        return Self.parse(output.stdout, destination: address)
    }

    private struct Entry: Decodable {
        let dst: String?
        let dev: String?
        let gateway: String?
        let prefsrc: String?
        let type: String?
    }

    /// Reads `ip -j route get` output: a JSON array with one route object.
    static func parse(_ json: String, destination: String) -> RouteObservation {
        let entries: [Entry]
        do {
            entries = try JSONDecoder().decode([Entry].self, from: Data(json.utf8))
        } catch {
            return .failed("`ip route get \(destination)` printed something that is not route JSON: \(json.prefix(120))")
        }
        guard let entry = entries.first else {
            return .failed("`ip route get \(destination)` returned no route")
        }
        guard let device = entry.dev else {
            return .failed("the route to \(destination) names no interface (type \(entry.type ?? "unknown"))")
        }
        return .route(KernelRoute(destination: entry.dst ?? destination, device: device, gateway: entry.gateway,
                                  preferredSource: entry.prefsrc, type: entry.type))
    }
}
