import FuzzSupport
@testable import Sockets

/// Kernel interface messages: rtnetlink datagrams (Linux) and PF_ROUTE messages (BSD/macOS; pure byte
/// parsing, so fuzzed here too). Input: one byte choosing the parser, then the bytes the kernel would have
/// sent. Whatever parses is applied to an `InterfaceStateTable`, as the interface monitor does.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNetlink(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let routingSocket = input.byte() & 1 != 0
    let bytes = input.rest
    var table = InterfaceStateTable()
    do {
        if routingSocket {
            for record in try RoutingMessageParser.parse(bytes, nameOf: { "if\($0)" }) { _ = table.apply(record) }
        } else {
            for message in try NetlinkParser.parse(bytes) {
                guard case .records(let records) = message.content else { continue }
                for record in records { _ = table.apply(record) }
            }
        }
    } catch {
        exercise(error)
    }
    return 0
}
