import Crypto
import FuzzSupport
import NIOCore
import PeerWire
import TorrentModel

/// Payloads of extension messages (BEP 10 handshake, BEP 9 ut_metadata, BEP 11 ut_pex): every input goes
/// through all three decoders, from an array and from a ByteBuffer (which must agree). Whatever decodes
/// must encode to bytes that decode back to the same message (PEX: to its first `maxEncodedEntries`
/// entries, the most we send), and a metadata piece must be taken or refused by `MetadataAssembler`
/// without a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzExtensionMessages(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let payload = FuzzInput(start, count).rest
    let buffer = ByteBuffer(bytes: payload)

    let handshake = outcome { try ExtensionHandshake.decode(payload) }
    fuzzCheck(handshake == outcome { try ExtensionHandshake.decode(buffer) }, "handshake: array and buffer disagree")
    if case .success(let handshake) = handshake {
        fuzzCheck((try? ExtensionHandshake.decode(handshake.encode())) == handshake, "handshake round trip")
    }

    let metadata = outcome { try MetadataMessage.decode(payload) }
    fuzzCheck(metadata == outcome { try MetadataMessage.decode(buffer) }, "ut_metadata: array and buffer disagree")
    if case .success(let message?) = metadata {
        fuzzCheck((try? MetadataMessage.decode(message.encode())) == message, "ut_metadata round trip")
        assemble(message)
    }

    let pex = outcome { try PexMessage.decode(payload) }
    fuzzCheck(pex == outcome { try PexMessage.decode(buffer) }, "ut_pex: array and buffer disagree")
    if case .success(let message) = pex {
        let limit = PexMessage.maxEncodedEntries
        let sent = try? PexMessage.decode(message.encode())
        fuzzCheck(sent?.added == Array(message.added.prefix(limit))
                  && sent?.addedFlags == Array(message.addedFlags.prefix(limit))
                  && sent?.added6 == Array(message.added6.prefix(limit))
                  && sent?.added6Flags == Array(message.added6Flags.prefix(limit))
                  && sent?.dropped == Array(message.dropped.prefix(limit))
                  && sent?.dropped6 == Array(message.dropped6.prefix(limit)), "ut_pex round trip")
        fuzzCheck(message.added.count <= PexMessage.maxDecodedEntries, "ut_pex kept \(message.added.count) peers")
    }
    return 0
}

/// Feeds a data message to an assembler sized by its own `total_size` and expecting the hash of its
/// payload, so a one-piece message can complete. Sizes above 256 KiB are skipped only to keep each run
/// fast (the assembler zero-fills `total_size` bytes up front); the size limit itself is still checked.
private func assemble(_ message: MetadataMessage) {
    guard case .data(_, let totalSize, let payload) = message else { return }
    let infoHash = InfoHash(bytes: Array(Insecure.SHA1.hash(data: payload)))!
    guard totalSize <= 256 * 1024 else {
        if totalSize > MetadataAssembler.maximumSize {
            fuzzCheck((try? MetadataAssembler(infoHash: infoHash, totalSize: totalSize)) == nil, "size \(totalSize) accepted")
        }
        return
    }
    do {
        var assembler = try MetadataAssembler(infoHash: infoHash, totalSize: totalSize)
        if case .complete(let bytes)? = try assembler.add(message) { fuzzCheck(bytes == payload, "assembled other bytes") }
    } catch {
        exercise(error)
    }
}

/// A decoder's result with the error rendered as text, so two runs can be compared.
private enum Outcome<Value: Equatable>: Equatable {
    case success(Value)
    case failure(String)
}

private func outcome<Value: Equatable>(_ body: () throws -> Value) -> Outcome<Value> {
    do {
        return .success(try body())
    } catch {
        exercise(error)
        return .failure(String(describing: error))
    }
}
