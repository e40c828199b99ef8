import Logging
import NIOCore
import NIOPosix
import Sockets

/// Asks one DNS server for a name, live.
public protocol DNSProbing: Sendable {
    func query(_ name: String, server: SocketAddress, policy: NetworkPolicy) async -> DNSQueryOutcome
}

/// Resolves through Burrow's own stub resolver over sockets from a `SocketFactory` under the policy: pinned
/// to the bound interfaces and marked like Burrow's sockets, so the answer says whether Burrow itself
/// could resolve names, firewall included.
public struct SocketSeamDNSProbe: DNSProbing {
    public let socketMark: UInt32?
    public let timeout: TimeAmount

    public init(socketMark: UInt32?, timeout: TimeAmount = .seconds(3)) {
        self.socketMark = socketMark
        self.timeout = timeout
    }

    public func query(_ name: String, server: SocketAddress, policy: NetworkPolicy) async -> DNSQueryOutcome {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        threadPool.start()
        // Silent: the doctor reports outcomes itself, and must not mix log lines into --json output.
        let logger = Logger(label: "burrow.doctor.dns", factory: { _ in SwiftLogNoOpLogHandler() })
        let sockets = SocketFactory(policy: policy, group: group, threadPool: threadPool, logger: logger,
                                    socketMark: socketMark)
        let resolver = DNSResolver(servers: [server], sockets: sockets, timeout: timeout, attempts: 1)
        let outcome: DNSQueryOutcome
        do {
            let addresses = try await resolver.resolve(host: name, port: 0).get()
            outcome = .answered(addresses: addresses.compactMap(\.ipAddress))
        } catch let error as DNSResolutionError {
            switch error {
            case .nameDoesNotExist, .noAddresses: outcome = .answeredNoAddress("\(error)")
            default: outcome = .failed("\(error)")
            }
        } catch {
            outcome = .failed("\(error)")
        }
        sockets.halt()
        try? await threadPool.shutdownGracefully()
        try? await group.shutdownGracefully()
        return outcome
    }
}
