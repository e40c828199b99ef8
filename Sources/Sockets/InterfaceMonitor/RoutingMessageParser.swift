import NIOCore

/// Decodes BSD/macOS routing socket (PF_ROUTE) messages into kernel records. Pure byte parsing with the
/// layouts of <net/route.h> and <net/if.h> on macOS, so it is unit-tested on every platform; the socket
/// itself is in `RoutingSocketChannel` (macOS only).
enum RoutingMessageParser {
    static let messageIfInfo: UInt8 = 0x0E      // RTM_IFINFO: if_msghdr
    static let messageNewAddress: UInt8 = 0x0C  // RTM_NEWADDR: ifa_msghdr
    static let messageDelAddress: UInt8 = 0x0D  // RTM_DELADDR: ifa_msghdr
    static let messageAnnounce: UInt8 = 0x11    // RTM_IFANNOUNCE: if_announcemsghdr
    static let announceDeparture: UInt16 = 1    // IFAN_DEPARTURE
    static let flagUp: Int32 = 0x1              // IFF_UP
    static let flagRunning: Int32 = 0x40        // IFF_RUNNING
    /// sizeof(struct ifa_msghdr): msglen u16, version u8, type u8, addrs i32, flags i32, index u16, pad,
    /// metric i32. The sockaddrs follow it.
    static let addressHeaderSize = 20
    static let bitNetmask = 2  // RTAX_NETMASK
    static let bitAddress = 5  // RTAX_IFA
    static let familyIPv4: UInt8 = 2   // AF_INET
    static let familyIPv6: UInt8 = 30  // AF_INET6 on Darwin

    /// Decodes every message in `bytes`. `nameOf` maps an interface index to its name (if_indextoname).
    static func parse(_ bytes: [UInt8], nameOf: (Int) -> String?) throws -> [KernelRecord] {
        var records: [KernelRecord] = []
        var offset = 0
        while bytes.count - offset >= 4 {
            let length = Int(bytes.hostOrder(UInt16.self, at: offset))
            guard length >= 4, length <= bytes.count - offset else {
                throw NetlinkParseError(offset: offset, reason: "routing message length \(length) does not fit")
            }
            let message = Array(bytes[offset..<(offset + length)])
            switch message[3] {
            case messageIfInfo where message.count >= 14:
                let flags = message.hostOrder(Int32.self, at: 8)
                let index = Int(message.hostOrder(UInt16.self, at: 12))
                if let name = nameOf(index) {
                    let running = flags & flagRunning != 0
                    records.append(.link(
                        index: index, name: name, isUp: flags & flagUp != 0, isRunning: running, hasCarrier: running))
                }
            case messageNewAddress, messageDelAddress:
                if let (index, address) = try decodeAddress(message, at: offset) {
                    records.append(message[3] == messageNewAddress
                        ? .address(index: index, address) : .addressRemoved(index: index, address))
                }
            case messageAnnounce where message.count >= 24:
                if message.hostOrder(UInt16.self, at: 22) == announceDeparture {
                    records.append(.linkRemoved(index: Int(message.hostOrder(UInt16.self, at: 4))))
                }
            default:
                break
            }
            offset += length
        }
        return records
    }

    /// ifa_msghdr followed by one sockaddr per bit set in ifam_addrs, each padded to 4 bytes.
    private static func decodeAddress(_ message: [UInt8], at base: Int) throws -> (Int, InterfaceAddress)? {
        guard message.count >= addressHeaderSize else {
            throw NetlinkParseError(offset: base, reason: "short ifa_msghdr")
        }
        let present = message.hostOrder(Int32.self, at: 4)
        let index = Int(message.hostOrder(UInt16.self, at: 12))
        var offset = addressHeaderSize
        var netmask: [UInt8]?
        var address: SocketAddress?
        for bit in 0..<8 where present & (1 << bit) != 0 {
            guard offset < message.count else { break }
            let length = Int(message[offset])
            guard length <= message.count - offset else {
                throw NetlinkParseError(offset: base + offset, reason: "sockaddr of \(length) bytes does not fit")
            }
            let sockaddr = Array(message[offset..<(offset + length)])
            if bit == bitNetmask { netmask = sockaddr }
            if bit == bitAddress { address = socketAddress(sockaddr) }
            offset += length == 0 ? 4 : (length + 3) & ~3
        }
        guard let address else { return nil }
        return (index, InterfaceAddress(address: address, prefixLength: prefixLength(netmask, for: address)))
    }

    /// sockaddr_in (len, family, port, 4-byte address) or sockaddr_in6 (len, family, port, flowinfo,
    /// 16-byte address). KAME embeds the scope in bytes 2–3 of link-local addresses: cleared here so the
    /// address compares equal to what getifaddrs reports.
    static func socketAddress(_ sockaddr: [UInt8]) -> SocketAddress? {
        guard sockaddr.count >= 2 else { return nil }
        switch sockaddr[1] {
        case familyIPv4 where sockaddr.count >= 8:
            return try? SocketAddress(packedIPAddress: ByteBuffer(bytes: sockaddr[4..<8]), port: 0)
        case familyIPv6 where sockaddr.count >= 24:
            var raw = Array(sockaddr[8..<24])
            if raw[0] == 0xFE && raw[1] & 0xC0 == 0x80 { raw[2] = 0; raw[3] = 0 }
            return try? SocketAddress(packedIPAddress: ByteBuffer(bytes: raw), port: 0)
        default:
            return nil
        }
    }

    /// Counts the one bits of a (possibly shortened) netmask sockaddr; full length when absent.
    private static func prefixLength(_ netmask: [UInt8]?, for address: SocketAddress) -> Int {
        let isIPv4 = address.protocol == .inet
        guard let netmask else { return isIPv4 ? 32 : 128 }
        let start = isIPv4 ? 4 : 8
        guard netmask.count > start else { return 0 }
        return netmask[start...].prefix(isIPv4 ? 4 : 16).reduce(0) { $0 + $1.nonzeroBitCount }
    }
}
