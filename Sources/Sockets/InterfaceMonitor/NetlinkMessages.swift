import NIOCore

/// rtnetlink wire constants (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h).
/// Spelled out here because Glibc's module does not export the linux/ uapi headers.
enum Netlink {
    static let headerSize = 16
    // Message types.
    static let noop: UInt16 = 1
    static let error: UInt16 = 2
    static let done: UInt16 = 3
    static let overrun: UInt16 = 4
    static let newLink: UInt16 = 16, delLink: UInt16 = 17, getLink: UInt16 = 18
    static let newAddr: UInt16 = 20, delAddr: UInt16 = 21, getAddr: UInt16 = 22
    static let newRoute: UInt16 = 24, delRoute: UInt16 = 25, getRoute: UInt16 = 26
    // Header flags.
    static let flagRequest: UInt16 = 0x1
    static let flagMulti: UInt16 = 0x2
    static let flagAck: UInt16 = 0x4
    static let flagDumpInterrupted: UInt16 = 0x10
    static let flagDump: UInt16 = 0x300
    // Multicast groups (RTMGRP_*).
    static let groupLink: UInt32 = 0x1
    static let groupIPv4Address: UInt32 = 0x10
    static let groupIPv4Route: UInt32 = 0x40
    static let groupIPv6Address: UInt32 = 0x100
    static let groupIPv6Route: UInt32 = 0x400
    // Interface flags (ifinfomsg.ifi_flags).
    static let iffUp: UInt32 = 0x1
    static let iffRunning: UInt32 = 0x40
    static let iffLowerUp: UInt32 = 0x10000
    // Attributes.
    static let iflaIfname: UInt16 = 3
    static let ifaAddress: UInt16 = 1, ifaLocal: UInt16 = 2, ifaFlags: UInt16 = 8
    static let rtaDst: UInt16 = 1, rtaOif: UInt16 = 4, rtaPriority: UInt16 = 6, rtaMultipath: UInt16 = 9
    static let rtaTable: UInt16 = 15
    // Address flags (IFA_F_*): the kernel will not let a socket bind to these yet (or ever).
    static let ifaFlagTentative: UInt32 = 0x40
    static let ifaFlagDadFailed: UInt32 = 0x08
    // Routes.
    static let routeTypeUnicast: UInt8 = 1
    static let routeTableLocal: UInt32 = 255
    // Address families as they appear in payloads.
    static let familyIPv4: UInt8 = 2
    static let familyIPv6: UInt8 = 10

    static func align(_ length: Int) -> Int { (length + 3) & ~3 }

    /// A dump request (RTM_GETLINK / GETADDR / GETROUTE) with an all-zero family header of `bodySize` bytes.
    static func dumpRequest(type: UInt16, bodySize: Int, sequence: UInt32) -> [UInt8] {
        var bytes = header(length: headerSize + bodySize, type: type, flags: flagRequest | flagDump, sequence: sequence)
        bytes += [UInt8](repeating: 0, count: bodySize)
        return bytes
    }

    /// NLMSG_NOOP asking for an ACK: the kernel answers it at once, which wakes a thread blocked in recv.
    static func wakeRequest(sequence: UInt32) -> [UInt8] {
        header(length: headerSize, type: noop, flags: flagRequest | flagAck, sequence: sequence)
    }

    private static func header(length: Int, type: UInt16, flags: UInt16, sequence: UInt32) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendHostOrder(UInt32(length))
        bytes.appendHostOrder(type)
        bytes.appendHostOrder(flags)
        bytes.appendHostOrder(sequence)
        bytes.appendHostOrder(UInt32(0))  // port id 0: addressed to the kernel
        return bytes
    }
}

/// One decoded netlink message.
struct NetlinkMessage: Equatable {
    let type: UInt16
    let flags: UInt16
    let sequence: UInt32
    let portID: UInt32
    let content: Content

    enum Content: Equatable {
        /// Interface, address or route facts (a multipath route yields several).
        case records([KernelRecord])
        /// End of a dump.
        case done
        /// NLMSG_ERROR; code 0 is an acknowledgement, otherwise a negative errno.
        case error(code: Int32)
        /// Something we do not track (other route types, neighbour tables, NOOP…).
        case ignored
    }

    var isDumpInterrupted: Bool { flags & Netlink.flagDumpInterrupted != 0 }
}

struct NetlinkParseError: Error, Equatable, CustomStringConvertible {
    let offset: Int
    let reason: String
    var description: String { "malformed netlink data at byte \(offset): \(reason)" }
}

/// Decodes a datagram read from an rtnetlink socket. Every length is checked before use.
enum NetlinkParser {
    static func parse(_ bytes: [UInt8]) throws -> [NetlinkMessage] {
        var messages: [NetlinkMessage] = []
        var offset = 0
        while bytes.count - offset >= Netlink.headerSize {
            let length = Int(bytes.hostOrder(UInt32.self, at: offset))
            guard length >= Netlink.headerSize, length <= bytes.count - offset else {
                throw NetlinkParseError(offset: offset, reason: "message length \(length) does not fit")
            }
            let type = bytes.hostOrder(UInt16.self, at: offset + 4)
            let flags = bytes.hostOrder(UInt16.self, at: offset + 6)
            let sequence = bytes.hostOrder(UInt32.self, at: offset + 8)
            let portID = bytes.hostOrder(UInt32.self, at: offset + 12)
            let body = Array(bytes[(offset + Netlink.headerSize)..<(offset + length)])
            let content = try decodeBody(type: type, body: body, at: offset + Netlink.headerSize)
            messages.append(NetlinkMessage(type: type, flags: flags, sequence: sequence, portID: portID, content: content))
            offset += Netlink.align(length)
        }
        return messages
    }

    private static func decodeBody(type: UInt16, body: [UInt8], at offset: Int) throws -> NetlinkMessage.Content {
        switch type {
        case Netlink.done:
            return .done
        case Netlink.error:
            guard body.count >= 4 else { throw NetlinkParseError(offset: offset, reason: "short NLMSG_ERROR") }
            return .error(code: body.hostOrder(Int32.self, at: 0))
        case Netlink.newLink, Netlink.delLink:
            return .records(try decodeLink(body, removed: type == Netlink.delLink, at: offset))
        case Netlink.newAddr, Netlink.delAddr:
            return .records(try decodeAddress(body, removed: type == Netlink.delAddr, at: offset))
        case Netlink.newRoute, Netlink.delRoute:
            return .records(try decodeRoute(body, removed: type == Netlink.delRoute, at: offset))
        default:
            return .ignored
        }
    }

    /// ifinfomsg (16 bytes: family, pad, type, index, flags, change) + attributes.
    private static func decodeLink(_ body: [UInt8], removed: Bool, at offset: Int) throws -> [KernelRecord] {
        guard body.count >= 16 else { throw NetlinkParseError(offset: offset, reason: "short ifinfomsg") }
        let index = Int(body.hostOrder(Int32.self, at: 4))
        if removed { return [.linkRemoved(index: index)] }
        let flags = body.hostOrder(UInt32.self, at: 8)
        var name: String?
        try forEachAttribute(in: body, from: 16, baseOffset: offset) { type, data in
            if type == Netlink.iflaIfname {
                name = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
            }
        }
        guard let name else { throw NetlinkParseError(offset: offset, reason: "link \(index) has no IFLA_IFNAME") }
        return [.link(
            index: index, name: name, isUp: flags & Netlink.iffUp != 0, isRunning: flags & Netlink.iffRunning != 0,
            hasCarrier: flags & Netlink.iffLowerUp != 0)]
    }

    /// ifaddrmsg (8 bytes: family, prefixlen, flags, scope, index) + attributes.
    private static func decodeAddress(_ body: [UInt8], removed: Bool, at offset: Int) throws -> [KernelRecord] {
        guard body.count >= 8 else { throw NetlinkParseError(offset: offset, reason: "short ifaddrmsg") }
        let family = body[0]
        guard family == Netlink.familyIPv4 || family == Netlink.familyIPv6 else { return [] }
        let prefixLength = Int(body[1])
        var flags = UInt32(body[2])
        let index = Int(body.hostOrder(UInt32.self, at: 4))
        var local: [UInt8]?
        var address: [UInt8]?
        try forEachAttribute(in: body, from: 8, baseOffset: offset) { type, data in
            switch type {
            case Netlink.ifaLocal: local = data
            case Netlink.ifaAddress: address = data
            case Netlink.ifaFlags where data.count >= 4: flags = data.hostOrder(UInt32.self, at: 0)
            default: break
            }
        }
        // On point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL, when present, is always ours.
        guard let raw = local ?? address else { return [] }
        guard let socketAddress = packedAddress(raw, family: family) else {
            throw NetlinkParseError(offset: offset, reason: "address of \(raw.count) bytes for family \(family)")
        }
        let tentative = flags & (Netlink.ifaFlagTentative | Netlink.ifaFlagDadFailed) != 0
        let entry = InterfaceAddress(address: socketAddress, prefixLength: prefixLength, isTentative: tentative)
        return [removed ? .addressRemoved(index: index, entry) : .address(index: index, entry)]
    }

    /// rtmsg (12 bytes: family, dst_len, src_len, tos, table, protocol, scope, type, flags) + attributes.
    /// Only default unicast routes outside the `local` table matter: they say where traffic leaves.
    private static func decodeRoute(_ body: [UInt8], removed: Bool, at offset: Int) throws -> [KernelRecord] {
        guard body.count >= 12 else { throw NetlinkParseError(offset: offset, reason: "short rtmsg") }
        let family = body[0]
        guard family == Netlink.familyIPv4 || family == Netlink.familyIPv6,
              body[1] == 0, body[7] == Netlink.routeTypeUnicast
        else { return [] }
        var table = UInt32(body[4])
        var priority: UInt32 = 0
        var interfaces: [Int] = []
        try forEachAttribute(in: body, from: 12, baseOffset: offset) { type, data in
            switch type {
            case Netlink.rtaTable where data.count >= 4: table = data.hostOrder(UInt32.self, at: 0)
            case Netlink.rtaPriority where data.count >= 4: priority = data.hostOrder(UInt32.self, at: 0)
            case Netlink.rtaOif where data.count >= 4: interfaces.append(Int(data.hostOrder(Int32.self, at: 0)))
            case Netlink.rtaMultipath: interfaces += multipathInterfaces(data)
            default: break
            }
        }
        guard table != Netlink.routeTableLocal else { return [] }
        return interfaces.map { index in
            let key = DefaultRouteKey(
                ipv6: family == Netlink.familyIPv6, table: table, priority: priority, interfaceIndex: index)
            return removed ? .defaultRouteRemoved(key) : .defaultRoute(key)
        }
    }

    /// RTA_MULTIPATH: a run of rtnexthop (len u16, flags u8, hops u8, ifindex i32, then attributes).
    private static func multipathInterfaces(_ data: [UInt8]) -> [Int] {
        var indices: [Int] = []
        var offset = 0
        while data.count - offset >= 8 {
            let length = Int(data.hostOrder(UInt16.self, at: offset))
            guard length >= 8, length <= data.count - offset else { break }
            indices.append(Int(data.hostOrder(Int32.self, at: offset + 4)))
            offset += Netlink.align(length)
        }
        return indices
    }

    /// Walks rtattr entries (len u16, type u16, payload) starting at `start`.
    private static func forEachAttribute(
        in body: [UInt8], from start: Int, baseOffset: Int, _ visit: (UInt16, [UInt8]) throws -> Void
    ) throws {
        var offset = start
        while body.count - offset >= 4 {
            let length = Int(body.hostOrder(UInt16.self, at: offset))
            guard length >= 4, length <= body.count - offset else {
                throw NetlinkParseError(offset: baseOffset + offset, reason: "attribute length \(length) does not fit")
            }
            // The top two bits are NLA_F_NESTED / NLA_F_NET_BYTEORDER, not part of the type.
            let type = body.hostOrder(UInt16.self, at: offset + 2) & 0x3FFF
            try visit(type, Array(body[(offset + 4)..<(offset + length)]))
            offset += Netlink.align(length)
        }
    }

    static func packedAddress(_ raw: [UInt8], family: UInt8) -> SocketAddress? {
        switch (family, raw.count) {
        case (Netlink.familyIPv4, 4), (Netlink.familyIPv6, 16):
            return try? SocketAddress(packedIPAddress: ByteBuffer(bytes: raw), port: 0)
        default:
            return nil
        }
    }
}

extension Array where Element == UInt8 {
    /// Reads a fixed-width integer in host byte order (netlink's order) at `offset`. Callers check bounds.
    func hostOrder<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= count, "netlink read out of bounds")
        return withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }

    mutating func appendHostOrder<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value) { append(contentsOf: $0) }
    }
}
