#if os(macOS)
import Darwin
import NIOCore

/// A PF_ROUTE socket: the kernel writes a message to it for every interface and address change.
struct RoutingSocketChannel: KernelInterfaceChannel {
    let descriptor: Int32

    static func open() throws -> RoutingSocketChannel {
        let fd = socket(PF_ROUTE, SOCK_RAW, AF_UNSPEC)
        guard fd >= 0 else { throw error("socket(PF_ROUTE)") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        // A larger buffer makes overruns (ENOBUFS, answered by a resync) rare during bursts.
        var size: Int32 = 1 << 20
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        return RoutingSocketChannel(descriptor: fd)
    }

    private static func error(_ operation: String) -> InterfaceMonitorError {
        let code = errno
        return InterfaceMonitorError(operation: operation, errno: code, detail: String(cString: strerror(code)))
    }

    /// The routing socket has no dump request for interfaces; getifaddrs(3) gives the table. Changes made
    /// meanwhile are already queued on the socket and are applied afterwards, so none is lost.
    func readTable(buffer: inout [UInt8], live: (KernelRecord, MonotonicTimestamp) -> Void) throws -> InterfaceStateTable {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { throw Self.error("getifaddrs") }
        defer { freeifaddrs(first) }
        var links: [KernelRecord] = []
        var addresses: [KernelRecord] = []
        var seen: Set<Int> = []
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            cursor = entry.pointee.ifa_next
            let name = String(cString: entry.pointee.ifa_name)
            let index = Int(if_nametoindex(entry.pointee.ifa_name))
            guard index > 0 else { continue }
            if seen.insert(index).inserted {
                let flags = Int32(bitPattern: entry.pointee.ifa_flags)
                let running = flags & IFF_RUNNING != 0
                links.append(.link(index: index, name: name, isUp: flags & IFF_UP != 0, isRunning: running, hasCarrier: running))
            }
            guard let sa = entry.pointee.ifa_addr,
                  let address = RoutingMessageParser.socketAddress(Self.bytes(of: sa))
            else { continue }
            var prefix = address.protocol == .inet ? 32 : 128
            if let mask = entry.pointee.ifa_netmask {
                let maskBytes = Self.bytes(of: mask)
                let start = address.protocol == .inet ? 4 : 8
                prefix = maskBytes.count > start
                    ? maskBytes[start...].prefix(address.protocol == .inet ? 4 : 16).reduce(0) { $0 + $1.nonzeroBitCount }
                    : 0
            }
            addresses.append(.address(index: index, InterfaceAddress(address: address, prefixLength: prefix)))
        }
        var table = InterfaceStateTable()
        for record in links + addresses { _ = table.apply(record) }
        return table
    }

    private static func bytes(of address: UnsafeMutablePointer<sockaddr>) -> [UInt8] {
        let length = Int(address.pointee.sa_len)
        return Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(address), count: max(length, 2)))
    }

    func receive(buffer: inout [UInt8]) -> KernelReceive {
        let count = buffer.withUnsafeMutableBytes { raw in recv(descriptor, raw.baseAddress, raw.count, 0) }
        let timestamp = MonotonicTimestamp.now()
        if count < 0 {
            let code = errno
            if code == EINTR { return .nothing }
            if code == ENOBUFS { return .overrun(at: timestamp) }
            return .failed("recv(PF_ROUTE): \(String(cString: strerror(code))) (errno \(code))")
        }
        if count == 0 { return .failed("the routing socket was shut down") }
        let records: [KernelRecord]
        do {
            records = try RoutingMessageParser.parse(Array(buffer[0..<count])) { index in
                var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
                guard if_indextoname(UInt32(index), &name) != nil else { return nil }
                return String(cString: name)
            }
        } catch {
            return .overrun(at: timestamp)
        }
        return records.isEmpty ? .nothing : .records(records, at: timestamp)
    }

    /// shutdown(SHUT_RD) on a BSD socket wakes a blocked recv, which then returns 0.
    func wake() {
        _ = shutdown(descriptor, SHUT_RD)
    }

    func close() {
        _ = Darwin.close(descriptor)
    }
}
#endif
