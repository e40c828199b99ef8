import NIOCore
import Testing
@testable import Sockets

/// Hand-built rtnetlink messages (host byte order), independent of the parser under test.
enum NetlinkPacket {
    static func message(type: UInt16, flags: UInt16 = 0, sequence: UInt32 = 0, portID: UInt32 = 0, body: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendHostOrder(UInt32(16 + body.count))
        bytes.appendHostOrder(type)
        bytes.appendHostOrder(flags)
        bytes.appendHostOrder(sequence)
        bytes.appendHostOrder(portID)
        bytes += body
        while bytes.count % 4 != 0 { bytes.append(0) }
        return bytes
    }

    static func attribute(_ type: UInt16, _ data: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendHostOrder(UInt16(4 + data.count))
        bytes.appendHostOrder(type)
        bytes += data
        while bytes.count % 4 != 0 { bytes.append(0) }
        return bytes
    }

    static func link(index: Int32, name: String, flags: UInt32) -> [UInt8] {
        var body: [UInt8] = [0, 0, 1, 0]  // family, pad, type (ARPHRD_ETHER)
        body.appendHostOrder(index)
        body.appendHostOrder(flags)
        body.appendHostOrder(UInt32(0xFFFF_FFFF))
        return body + attribute(3, Array(name.utf8) + [0])
    }

    static func address(family: UInt8, prefix: UInt8, index: UInt32, local: [UInt8]?, address: [UInt8]?, flags: UInt32 = 0) -> [UInt8] {
        var body: [UInt8] = [family, prefix, 0, 0]
        body.appendHostOrder(index)
        if let address { body += attribute(1, address) }
        if let local { body += attribute(2, local) }
        var flagBytes: [UInt8] = []
        flagBytes.appendHostOrder(flags)
        return body + attribute(8, flagBytes)
    }

    static func defaultRoute(family: UInt8, table: UInt8, oif: Int32) -> [UInt8] {
        var oifBytes: [UInt8] = []
        oifBytes.appendHostOrder(oif)
        return [family, 0, 0, 0, table, 3, 0, 1, 0, 0, 0, 0] + attribute(4, oifBytes)
    }
}

@Suite struct NetlinkParserTests {
    @Test func decodesLinkAddressAndRouteMessagesInOneDatagram() throws {
        let up: UInt32 = 0x1 | 0x40 | 0x10000
        let datagram = NetlinkPacket.message(type: 16, body: NetlinkPacket.link(index: 7, name: "wg0", flags: up))
            + NetlinkPacket.message(type: 20, body: NetlinkPacket.address(
                family: 2, prefix: 32, index: 7, local: [10, 7, 0, 2], address: [10, 7, 0, 1]))
            + NetlinkPacket.message(type: 24, body: NetlinkPacket.defaultRoute(family: 10, table: 254, oif: 7))
            + NetlinkPacket.message(type: 3, flags: 2, sequence: 5, portID: 99, body: [0, 0, 0, 0])
        let messages = try NetlinkParser.parse(datagram)
        #expect(messages.count == 4)
        #expect(messages[0].content == .records([.link(index: 7, name: "wg0", isUp: true, isRunning: true, hasCarrier: true)]))
        // IFA_LOCAL wins over IFA_ADDRESS (the peer, on point-to-point links).
        #expect(messages[1].content == .records([.address(
            index: 7, InterfaceAddress(address: try SocketAddress(ipAddress: "10.7.0.2", port: 0), prefixLength: 32))]))
        #expect(messages[2].content == .records([.defaultRoute(
            DefaultRouteKey(ipv6: true, table: 254, priority: 0, interfaceIndex: 7))]))
        #expect(messages[3].content == .done && messages[3].sequence == 5 && messages[3].portID == 99)
    }

    @Test func marksTentativeIPv6Addresses() throws {
        let v6: [UInt8] = [0xfd, 0x51] + [UInt8](repeating: 0, count: 13) + [1]
        let messages = try NetlinkParser.parse(NetlinkPacket.message(
            type: 20, body: NetlinkPacket.address(family: 10, prefix: 64, index: 3, local: nil, address: v6, flags: 0x40)))
        guard case .records(let records) = messages[0].content, case .address(3, let address) = records.first else {
            Issue.record("expected an address record, got \(messages)")
            return
        }
        #expect(address.isTentative)
        #expect(!address.isUsableSource)
    }

    @Test func ignoresRoutesInTheLocalTableAndNonDefaultRoutes() throws {
        var nonDefault = NetlinkPacket.defaultRoute(family: 2, table: 254, oif: 2)
        nonDefault[1] = 24
        let datagram = NetlinkPacket.message(type: 24, body: NetlinkPacket.defaultRoute(family: 2, table: 255, oif: 2))
            + NetlinkPacket.message(type: 24, body: nonDefault)
        #expect(try NetlinkParser.parse(datagram).map(\.content) == [.records([]), .records([])])
    }

    @Test func reportsErrorsAndAcks() throws {
        var body: [UInt8] = []
        body.appendHostOrder(Int32(-16))
        let datagram = NetlinkPacket.message(type: 2, body: body + [UInt8](repeating: 0, count: 16))
        #expect(try NetlinkParser.parse(datagram).first?.content == .error(code: -16))
    }

    @Test func rejectsAMessageLongerThanTheDatagram() {
        var datagram = NetlinkPacket.message(type: 16, body: NetlinkPacket.link(index: 1, name: "lo", flags: 1))
        datagram.removeLast(8)
        #expect(throws: NetlinkParseError.self) { try NetlinkParser.parse(datagram) }
    }

    @Test func rejectsAnAttributeOverrunningItsMessage() {
        var body = NetlinkPacket.link(index: 1, name: "lo", flags: 1)
        body[16] = 200  // rta_len of IFLA_IFNAME
        #expect(throws: NetlinkParseError.self) {
            try NetlinkParser.parse(NetlinkPacket.message(type: 16, body: body))
        }
    }
}

@Suite struct InterfaceStateTableTests {
    static func address(_ text: String, prefix: Int = 24) -> InterfaceAddress {
        InterfaceAddress(address: try! SocketAddress(ipAddress: text, port: 0), prefixLength: prefix)
    }

    @Test func reportsLinkTransitionsWithReasons() {
        var table = InterfaceStateTable()
        #expect(table.apply(.link(index: 4, name: "wg0", isUp: false, isRunning: false, hasCarrier: false)).isEmpty)
        let up = table.apply(.link(index: 4, name: "wg0", isUp: true, isRunning: true, hasCarrier: true))
        guard case .linkUp(let state)? = up.first else { Issue.record("expected linkUp, got \(up)"); return }
        #expect(state.name == "wg0" && state.isOperational)
        // Same flags again (e.g. an MTU change): nothing to report.
        #expect(table.apply(.link(index: 4, name: "wg0", isUp: true, isRunning: true, hasCarrier: true)).isEmpty)
        let carrier = table.apply(.link(index: 4, name: "wg0", isUp: true, isRunning: false, hasCarrier: false))
        #expect(carrier.first.map { if case .linkDown(_, .carrierLost) = $0 { true } else { false } } == true)
        _ = table.apply(.link(index: 4, name: "wg0", isUp: true, isRunning: true, hasCarrier: true))
        let admin = table.apply(.link(index: 4, name: "wg0", isUp: false, isRunning: false, hasCarrier: false))
        #expect(admin.first.map { if case .linkDown(_, .adminDown) = $0 { true } else { false } } == true)
        let removed = table.apply(.linkRemoved(index: 4))
        #expect(removed.first.map { if case .linkDown(_, .removed) = $0 { true } else { false } } == true)
        #expect(table.snapshot.isEmpty)
    }

    @Test func tracksAddressesAndDefaultRoutes() {
        var table = InterfaceStateTable()
        _ = table.apply(.link(index: 2, name: "tun0", isUp: true, isRunning: true, hasCarrier: true))
        #expect(table.apply(.address(index: 2, Self.address("10.8.0.2"))).count == 1)
        #expect(table.apply(.address(index: 2, Self.address("10.8.0.2"))).isEmpty)  // repeated announcement
        _ = table.apply(.address(index: 2, Self.address("fd00::2", prefix: 64)))
        #expect(table.snapshot.first?.addresses.map(\.description) == ["10.8.0.2", "fd00::2"])
        let removed = table.apply(.addressRemoved(index: 2, Self.address("10.8.0.2")))
        guard case .addressRemoved(let state, let gone)? = removed.first else { Issue.record("\(removed)"); return }
        #expect(gone.description == "10.8.0.2" && state.addresses.map(\.description) == ["fd00::2"])

        let route = DefaultRouteKey(ipv6: false, table: 51820, priority: 0, interfaceIndex: 2)
        let routed = table.apply(.defaultRoute(route))
        #expect(routed.count == 1 && table.snapshot.first?.hasDefaultRouteIPv4 == true)
        #expect(table.apply(.defaultRouteRemoved(route)).count == 1)
        #expect(table.snapshot.first?.hasDefaultRouteIPv4 == false)
    }

    @Test func aRenameIsTheOldNameDisappearing() {
        var table = InterfaceStateTable()
        _ = table.apply(.link(index: 9, name: "wg0", isUp: true, isRunning: true, hasCarrier: true))
        let changes = table.apply(.link(index: 9, name: "wg-old", isUp: true, isRunning: true, hasCarrier: true))
        #expect(changes.count == 2)
        if case .linkDown(let old, .removed) = changes[0] { #expect(old.name == "wg0") } else { Issue.record("\(changes)") }
    }

    @Test func addressesForUnknownInterfacesAreIgnored() {
        var table = InterfaceStateTable()
        #expect(table.apply(.address(index: 77, Self.address("10.0.0.1"))).isEmpty)
        #expect(table.snapshot.isEmpty)
    }
}
