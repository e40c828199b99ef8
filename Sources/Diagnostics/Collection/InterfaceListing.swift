import Sockets

/// Where the interface table comes from.
public protocol InterfaceListing: Sendable {
    func interfaces() throws -> [InterfaceState]
}

/// The kernel's table, read the way the tunnel guard reads it (rtnetlink / PF_ROUTE, via the interface
/// monitor), so the doctor and the running client judge interfaces by the same facts.
public struct KernelInterfaceListing: InterfaceListing {
    public init() {}

    public func interfaces() throws -> [InterfaceState] {
        let monitor = InterfaceMonitor()
        try monitor.start { _ in }
        defer { monitor.stop() }
        return monitor.snapshot()
    }
}
