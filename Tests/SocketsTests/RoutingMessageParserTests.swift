import NIOCore
import Testing
@testable import Sockets

/// The macOS PF_ROUTE decoder, fed hand-built messages in <net/route.h> layout.
@Suite struct RoutingMessageParserTests {
    static func ifInfo(index: UInt16, flags: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendHostOrder(UInt16(112))
        bytes += [5, 0x0E]
        bytes.appendHostOrder(Int32(0))  // addrs
        bytes.appendHostOrder(flags)
        bytes.appendHostOrder(index)
        return bytes + [UInt8](repeating: 0, count: 112 - bytes.count)
    }

    static func addressMessage(type: UInt8, index: UInt16, address: [UInt8], netmask: [UInt8]) -> [UInt8] {
        var body: [UInt8] = []
        body.appendHostOrder(Int32(1 << 2 | 1 << 5))  // RTA_NETMASK | RTA_IFA
        body.appendHostOrder(Int32(0))
        body.appendHostOrder(index)
        body += [0, 0]
        body.appendHostOrder(Int32(0))  // metric
        func padded(_ sa: [UInt8]) -> [UInt8] { sa + [UInt8](repeating: 0, count: (4 - sa.count % 4) % 4) }
        var bytes: [UInt8] = []
        bytes.appendHostOrder(UInt16(4 + body.count + padded(netmask).count + padded(address).count))
        bytes += [5, type]
        return bytes + body + padded(netmask) + padded(address)
    }

    @Test func decodesInterfaceInfoAddressesAndDepartures() throws {
        let v4 = [16, 2, 0, 0, 10, 9, 0, 2] + [UInt8](repeating: 0, count: 8)
        let mask: [UInt8] = [7, 2, 0, 0, 255, 255, 255]  // shortened netmask sockaddr, /24
        var linkLocal: [UInt8] = [28, 30, 0, 0, 0, 0, 0, 0, 0xfe, 0x80, 0, 7] + [UInt8](repeating: 0, count: 11) + [1]
        linkLocal += [0, 0, 0, 0]
        var announce: [UInt8] = []
        announce.appendHostOrder(UInt16(24))
        announce += [5, 0x11]
        announce.appendHostOrder(UInt16(9))
        announce += Array("utun4".utf8) + [UInt8](repeating: 0, count: 11)
        announce.appendHostOrder(UInt16(1))

        let bytes = Self.ifInfo(index: 9, flags: 0x1 | 0x40)
            + Self.addressMessage(type: 0x0C, index: 9, address: v4, netmask: mask)
            + Self.addressMessage(type: 0x0D, index: 9, address: linkLocal, netmask: [0])
            + announce
        let records = try RoutingMessageParser.parse(bytes) { $0 == 9 ? "utun4" : nil }
        #expect(records == [
            .link(index: 9, name: "utun4", isUp: true, isRunning: true, hasCarrier: true),
            .address(index: 9, InterfaceAddress(address: try SocketAddress(ipAddress: "10.9.0.2", port: 0), prefixLength: 24)),
            .addressRemoved(index: 9, InterfaceAddress(address: try SocketAddress(ipAddress: "fe80::1", port: 0), prefixLength: 0)),
            .linkRemoved(index: 9),
        ])
    }

    @Test func rejectsAMessageLongerThanTheRead() {
        var bytes = Self.ifInfo(index: 1, flags: 1)
        bytes.removeLast(10)
        #expect(throws: NetlinkParseError.self) { try RoutingMessageParser.parse(bytes) { _ in "lo0" } }
    }
}
