import NIOCore
import Testing
@testable import Sockets

@Suite struct DNSMessageCodecTests {
    let exampleQuestion = Packet.question(Packet.name("www.example.org"), type: 1)

    @Test func encodesAStandardRecursiveQuery() throws {
        let name = try DNSName(parsing: "www.Example.org.")
        let bytes = DNSMessageCodec.encodeQuery(id: 0xBEEF, name: name, type: .aaaa)
        let expected = Packet.header(id: 0xBEEF, flags: 0x0100) + Packet.name("www.Example.org") + [0, 28, 0, 1]
        #expect(bytes == expected)
    }

    @Test func decodesAnswersWithCompressionPointers() throws {
        // Answer owner is a pointer to the question name at offset 12.
        let packet = Packet.header(id: 7, flags: Packet.responseFlags(), answers: 2) + exampleQuestion
            + Packet.record(Packet.pointer(12), type: 1, data: [192, 0, 2, 1])
            + Packet.record(Packet.pointer(12), type: 1, data: [192, 0, 2, 2])
        let response = try DNSMessageCodec.decodeResponse(packet)
        #expect(response.id == 7)
        #expect(response.isResponse)
        #expect(response.responseCode == .noError)
        #expect(response.questions.first?.name == (try DNSName(parsing: "WWW.example.ORG")))
        let found = response.addresses(for: try DNSName(parsing: "www.example.org"), type: .a)
        #expect(found.addresses == [[192, 0, 2, 1], [192, 0, 2, 2]])
    }

    @Test func followsACNAMEChainInsideTheResponse() throws {
        // www.example.org CNAME edge.cdn.net (label "edge" + pointer to "cdn.net" spelled in the next record),
        // edge.cdn.net CNAME final.cdn.net, final.cdn.net A 198.51.100.9.
        var packet = Packet.header(id: 1, flags: Packet.responseFlags(), answers: 3) + exampleQuestion
        let firstRecordData = packet.count + 2 + 10  // pointer owner + type/class/ttl/len
        packet += Packet.record(Packet.pointer(12), type: 5, data: Packet.name("edge.cdn.net"))
        let cdnNet = firstRecordData + 5  // skip "\u{4}edge"
        packet += Packet.record([4] + Array("edge".utf8) + Packet.pointer(cdnNet), type: 5,
                                data: [5] + Array("final".utf8) + Packet.pointer(cdnNet))
        packet += Packet.record(Packet.name("final.cdn.net"), type: 1, data: [198, 51, 100, 9])
        let response = try DNSMessageCodec.decodeResponse(packet)
        let found = response.addresses(for: try DNSName(parsing: "www.example.org"), type: .a)
        #expect(found.addresses == [[198, 51, 100, 9]])
        #expect(found.canonicalName == (try DNSName(parsing: "final.cdn.net")))
    }

    @Test func aCNAMELoopEndsWithoutAddresses() throws {
        let packet = Packet.header(id: 1, flags: Packet.responseFlags(), answers: 2) + exampleQuestion
            + Packet.record(Packet.name("www.example.org"), type: 5, data: Packet.name("b.example.org"))
            + Packet.record(Packet.name("b.example.org"), type: 5, data: Packet.name("www.example.org"))
        let response = try DNSMessageCodec.decodeResponse(packet)
        #expect(response.addresses(for: try DNSName(parsing: "www.example.org"), type: .a).addresses.isEmpty)
    }

    @Test func readsTheTruncationFlagAndSkipsTheCutAnswers() throws {
        // TC=1 and the answer section is cut in the middle of a record: still decodes, with no answers.
        let packet = Packet.header(id: 9, flags: Packet.responseFlags(truncated: true), answers: 5) + exampleQuestion
            + Array(Packet.record(Packet.pointer(12), type: 1, data: [1, 2, 3, 4]).prefix(6))
        let response = try DNSMessageCodec.decodeResponse(packet)
        #expect(response.isTruncated)
        #expect(response.answers.isEmpty)
    }

    @Test func rejectsAnAnswerCutShortWithoutTheTruncationFlag() {
        let packet = Packet.header(id: 9, flags: Packet.responseFlags(), answers: 1) + exampleQuestion
            + Array(Packet.record(Packet.pointer(12), type: 1, data: [1, 2, 3, 4]).prefix(12))
        #expect(throws: DNSMessageError.self) { try DNSMessageCodec.decodeResponse(packet) }
    }

    @Test func rejectsAPointerThatPointsToItself() {
        // The answer owner name is a pointer to its own offset.
        let ownerOffset = 12 + exampleQuestion.count
        let packet = Packet.header(id: 1, flags: Packet.responseFlags(), answers: 1) + exampleQuestion
            + Packet.record(Packet.pointer(ownerOffset), type: 1, data: [1, 2, 3, 4])
        #expect { try DNSMessageCodec.decodeResponse(packet) } throws: { error in
            (error as? DNSMessageError)?.reason.contains("does not point backwards") == true
        }
    }

    @Test func rejectsAPointerCycleThroughEarlierLabels() {
        // At offset 12: label "a" then a pointer back to 12: reading would loop forever.
        let packet = Packet.header(id: 1, flags: Packet.responseFlags(), answers: 0)
            + [1, UInt8(ascii: "a")] + Packet.pointer(12) + [0, 1, 0, 1]
        #expect { try DNSMessageCodec.decodeResponse(packet) } throws: { error in
            (error as? DNSMessageError)?.reason.contains("loop") == true
        }
    }

    @Test func rejectsAForwardPointer() {
        let packet = Packet.header(id: 1, flags: Packet.responseFlags(), answers: 0) + Packet.pointer(40) + [0, 1, 0, 1]
        #expect(throws: DNSMessageError.self) { try DNSMessageCodec.decodeResponse(packet) }
    }

    @Test func rejectsAnARecordOfTheWrongLength() {
        let packet = Packet.header(id: 1, flags: Packet.responseFlags(), answers: 1) + exampleQuestion
            + Packet.record(Packet.pointer(12), type: 1, data: [1, 2, 3])
        #expect { try DNSMessageCodec.decodeResponse(packet) } throws: { error in
            (error as? DNSMessageError)?.reason == "A record of 3 bytes"
        }
    }

    @Test func rejectsAHeaderCutShort() {
        #expect(throws: DNSMessageError.self) { try DNSMessageCodec.decodeResponse([0, 1, 0x81]) }
    }

    @Test func decodesTheResponseCode() throws {
        let packet = Packet.header(id: 3, flags: Packet.responseFlags(rcode: 3)) + exampleQuestion
        #expect(try DNSMessageCodec.decodeResponse(packet).responseCode == .nameError)
    }

    @Test func aResponseWithTheWrongIDOrQuestionIsNotOurs() throws {
        let server = try SocketAddress(ipAddress: "192.0.2.53", port: 53)
        let expectation = DNSExpectation(
            id: 100, question: DNSQuestion(name: try DNSName(parsing: "www.example.org"), type: .a, recordClass: 1),
            server: server)
        let right = Packet.header(id: 100, flags: Packet.responseFlags()) + exampleQuestion
        let wrongID = Packet.header(id: 101, flags: Packet.responseFlags()) + exampleQuestion
        let wrongName = Packet.header(id: 100, flags: Packet.responseFlags())
            + Packet.question(Packet.name("evil.example.org"), type: 1)
        let wrongType = Packet.header(id: 100, flags: Packet.responseFlags())
            + Packet.question(Packet.name("www.example.org"), type: 28)
        let aQuery = Packet.header(id: 100, flags: 0x0100) + exampleQuestion
        #expect(try expectation.match(right) != nil)
        #expect(try expectation.match(wrongID) == nil)
        #expect(try expectation.match(wrongName) == nil)
        #expect(try expectation.match(wrongType) == nil)
        #expect(try expectation.match(aQuery) == nil)
    }

    @Test(arguments: [
        ("", "the name is empty"),
        ("a..b", "it has an empty label"),
        (String(repeating: "x", count: 64) + ".org", "is longer than 63 bytes"),
        ("bücher.de", "only ASCII names are accepted"),
        ("has space.org", "only ASCII names are accepted"),
        (Array(repeating: String(repeating: "y", count: 60), count: 5).joined(separator: "."), "longer than 255 bytes"),
    ])
    func rejectsBadHostNamesClearly(name: String, reason: String) {
        #expect { try DNSName(parsing: name) } throws: { error in
            guard let error = error as? DNSNameError else { return false }
            return error.name == name && error.description.contains(reason)
        }
    }
}

@Suite struct ResolvConfTests {
    @Test func readsIPv4AndIPv6NameserversAndSkipsTheRest() throws {
        let text = """
            # generated
            search example.org
            nameserver 10.64.0.1
            nameserver   fd00::53   # tunnel resolver
            ; nameserver 192.0.2.99
            options edns0
            nameserver 10.64.0.1
            """
        let conf = ResolvConf.parse(text)
        #expect(conf.nameservers == [
            try SocketAddress(ipAddress: "10.64.0.1", port: 53), try SocketAddress(ipAddress: "fd00::53", port: 53),
        ])
        #expect(conf.ignored.isEmpty)
    }

    @Test func explainsNameserverLinesItCannotUse() {
        let conf = ResolvConf.parse("nameserver\nnameserver dns.example.org\nnameserver fe80::1%eth0\n")
        #expect(conf.nameservers.isEmpty)
        #expect(conf.ignored == [
            "line 1: nameserver without an address",
            "line 2: nameserver \"dns.example.org\" is not an IPv4 or IPv6 address",
            "line 3: nameserver fe80::1%eth0 has a scope; scoped addresses are not supported",
        ])
    }

    @Test func aMissingFileIsAClearError() {
        #expect { try ResolvConf.load(path: "/nonexistent/resolv.conf") } throws: { error in
            (error as? ResolvConfError)?.description.hasPrefix("/nonexistent/resolv.conf cannot be read") == true
        }
    }
}
