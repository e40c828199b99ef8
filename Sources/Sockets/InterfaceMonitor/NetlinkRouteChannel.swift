#if os(Linux)
import Glibc

/// An rtnetlink socket subscribed to link, address and route changes (IPv4 and IPv6).
struct NetlinkRouteChannel: KernelInterfaceChannel {
    let descriptor: Int32
    /// The port id the kernel gave this socket: dump replies are addressed to it.
    let portID: UInt32

    /// Sequence number of the stop wake-up request; dumps use 1...n, live notifications carry other
    /// processes' port ids.
    private static let wakeSequence: UInt32 = 0xFFFF_FFFF
    /// A few retries when the kernel reports the dump was interrupted by concurrent changes.
    private static let dumpAttempts = 5

    static func open() throws -> NetlinkRouteChannel {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0 /* NETLINK_ROUTE */)
        guard fd >= 0 else { throw error("socket(AF_NETLINK)") }
        // A large receive buffer makes overruns (and the resync they cost) rare during bursts of changes.
        // SO_RCVBUFFORCE ignores rmem_max but needs CAP_NET_ADMIN; plain SO_RCVBUF is the fallback.
        var size: Int32 = 4 << 20
        let sizeLength = socklen_t(MemoryLayout<Int32>.size)
        if setsockopt(fd, SOL_SOCKET, 33 /* SO_RCVBUFFORCE */, &size, sizeLength) != 0 {
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeLength)
        }
        let groups = Netlink.groupLink | Netlink.groupIPv4Address | Netlink.groupIPv6Address
            | Netlink.groupIPv4Route | Netlink.groupIPv6Route
        var address = netlinkAddress(portID: 0, groups: groups)
        let bound = address.withUnsafeMutableBytes { raw in
            bind(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
        guard bound == 0 else {
            let failure = error("bind(AF_NETLINK, RTMGRP_LINK|IFADDR|ROUTE)")
            Glibc.close(fd)
            throw failure
        }
        var length = socklen_t(address.count)
        let named = address.withUnsafeMutableBytes { raw in
            getsockname(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
        }
        guard named == 0 else {
            let failure = error("getsockname(AF_NETLINK)")
            Glibc.close(fd)
            throw failure
        }
        return NetlinkRouteChannel(descriptor: fd, portID: address.hostOrder(UInt32.self, at: 4))
    }

    /// struct sockaddr_nl: family u16, pad u16, pid u32, groups u32.
    private static func netlinkAddress(portID: UInt32, groups: UInt32) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendHostOrder(UInt16(AF_NETLINK))
        bytes.appendHostOrder(UInt16(0))
        bytes.appendHostOrder(portID)
        bytes.appendHostOrder(groups)
        return bytes
    }

    private static func error(_ operation: String) -> InterfaceMonitorError {
        let code = errno
        return InterfaceMonitorError(operation: operation, errno: code, detail: String(cString: strerror(code)))
    }

    func readTable(buffer: inout [UInt8], live: (KernelRecord, MonotonicTimestamp) -> Void) throws -> InterfaceStateTable {
        var lastProblem = "no attempt"
        for attempt in 1...Self.dumpAttempts {
            var table = InterfaceStateTable()
            do {
                // Links first: address and route records refer to links by index.
                let dumps: [(type: UInt16, bodySize: Int)] = [
                    (Netlink.getLink, 16), (Netlink.getAddr, 8), (Netlink.getRoute, 12),
                ]
                var complete = true
                for (number, dump) in dumps.enumerated() {
                    let sequence = UInt32(attempt * 16 + number)
                    complete = try runDump(
                        type: dump.type, bodySize: dump.bodySize, sequence: sequence, into: &table,
                        buffer: &buffer, live: live) && complete
                }
                if complete { return table }
                lastProblem = "the kernel interrupted the dump (table changed meanwhile)"
            } catch let failure as InterfaceMonitorError where failure.errno == EBUSY || failure.errno == ENOBUFS {
                lastProblem = failure.description
            }
        }
        throw InterfaceMonitorError(
            operation: "reading the interface table", errno: EAGAIN,
            detail: "gave up after \(Self.dumpAttempts) attempts: \(lastProblem)")
    }

    /// Sends one dump request and reads until its NLMSG_DONE. Returns false when the result may be
    /// inconsistent (NLM_F_DUMP_INTR, or notifications lost meanwhile).
    private func runDump(
        type: UInt16, bodySize: Int, sequence: UInt32, into table: inout InterfaceStateTable,
        buffer: inout [UInt8], live: (KernelRecord, MonotonicTimestamp) -> Void
    ) throws -> Bool {
        try sendAll(Netlink.dumpRequest(type: type, bodySize: bodySize, sequence: sequence))
        var consistent = true
        while true {
            let received = readOnce(buffer: &buffer)
            let timestamp = MonotonicTimestamp.now()
            switch received {
            case .interrupted:
                continue
            case .failed(let code, let operation):
                if code == ENOBUFS {
                    // Live notifications were dropped; dump replies are not, so finish this dump, then redo all.
                    consistent = false
                    continue
                }
                throw InterfaceMonitorError(operation: operation, errno: code, detail: String(cString: strerror(code)))
            case .truncated:
                consistent = false
                continue
            case .bytes(let count):
                let messages: [NetlinkMessage]
                do {
                    messages = try NetlinkParser.parse(Array(buffer[0..<count]))
                } catch {
                    throw InterfaceMonitorError(operation: "dump", errno: EBADMSG, detail: "\(error)")
                }
                for message in messages {
                    let isReply = message.portID == portID && message.sequence == sequence
                    if isReply {
                        if message.isDumpInterrupted { consistent = false }
                        switch message.content {
                        case .done:
                            return consistent
                        case .error(let code) where code != 0:
                            throw InterfaceMonitorError(
                                operation: "dump request \(type)", errno: -code, detail: String(cString: strerror(-code)))
                        case .records(let records):
                            for record in records { _ = table.apply(record) }
                        case .error, .ignored:
                            break
                        }
                    } else if case .records(let records) = message.content {
                        // A live notification interleaved with the dump: it is newer than what the dump has
                        // said so far, so it applies to both the table being built and the live one.
                        for record in records {
                            _ = table.apply(record)
                            live(record, timestamp)
                        }
                    }
                }
            }
        }
    }

    func receive(buffer: inout [UInt8]) -> KernelReceive {
        let received = readOnce(buffer: &buffer)
        let timestamp = MonotonicTimestamp.now()
        switch received {
        case .interrupted:
            return .nothing
        case .truncated:
            return .overrun(at: timestamp)
        case .failed(let code, let operation):
            if code == ENOBUFS { return .overrun(at: timestamp) }
            return .failed("\(operation): \(String(cString: strerror(code))) (errno \(code))")
        case .bytes(let count):
            guard let messages = try? NetlinkParser.parse(Array(buffer[0..<count])) else {
                // Cannot tell what changed: treat like lost notifications and re-read everything.
                return .overrun(at: timestamp)
            }
            var records: [KernelRecord] = []
            for message in messages {
                if message.type == Netlink.overrun { return .overrun(at: timestamp) }
                if case .records(let decoded) = message.content { records += decoded }
            }
            return records.isEmpty ? .nothing : .records(records, at: timestamp)
        }
    }

    func wake() {
        // Netlink sockets do not support shutdown(2), and closing an fd does not wake a thread blocked on
        // it. Asking the kernel for an ACK does: the reply lands in this socket's queue.
        _ = try? sendAll(Netlink.wakeRequest(sequence: Self.wakeSequence))
    }

    func close() {
        Glibc.close(descriptor)
    }

    private enum ReadResult {
        case bytes(Int)
        case truncated
        case interrupted
        case failed(Int32, String)
    }

    /// One blocking recv. MSG_TRUNC makes netlink report the real datagram size, so a datagram larger than
    /// the buffer is detected instead of silently cut.
    private func readOnce(buffer: inout [UInt8]) -> ReadResult {
        let capacity = buffer.count
        let count = buffer.withUnsafeMutableBytes { raw in
            recv(descriptor, raw.baseAddress, raw.count, Int32(MSG_TRUNC))
        }
        if count < 0 {
            let code = errno
            return code == EINTR ? .interrupted : .failed(code, "recv(AF_NETLINK)")
        }
        return count > capacity ? .truncated : .bytes(count)
    }

    private func sendAll(_ request: [UInt8]) throws {
        var kernel = Self.netlinkAddress(portID: 0, groups: 0)
        while true {
            let sent = request.withUnsafeBytes { bytes in
                kernel.withUnsafeMutableBytes { address in
                    sendto(descriptor, bytes.baseAddress, bytes.count, 0,
                           address.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(address.count))
                }
            }
            if sent >= 0 { return }
            if errno == EINTR { continue }
            throw Self.error("sendto(AF_NETLINK)")
        }
    }
}
#endif
