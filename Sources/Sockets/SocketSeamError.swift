import NIOCore

/// Why the socket seam refused or failed to make a socket. Never answered by falling back to an unbound one.
public enum SocketSeamError: Error, Equatable, CustomStringConvertible {
    /// No interface allowed by the policy is present and up with an address of the needed family.
    case noUsableInterface(policy: String, family: String)
    /// The kernel refused to pin a socket to the interface.
    case bindingFailed(interface: String, reason: String)
    /// Name resolution produced nothing usable.
    case resolutionFailed(host: String, reason: String)
    /// The seam was shut down (program exiting, or networking halted).
    case halted

    public var description: String {
        switch self {
        case .noUsableInterface(let policy, let family):
            return "no interface allowed by the network policy (\(policy)) is up with an \(family) address"
        case .bindingFailed(let interface, let reason):
            return "could not bind a socket to interface \(interface): \(reason)"
        case .resolutionFailed(let host, let reason):
            return "could not resolve \(host): \(reason)"
        case .halted:
            return "networking is halted"
        }
    }
}
