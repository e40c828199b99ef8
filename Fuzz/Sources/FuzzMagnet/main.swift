import FuzzSupport
import TorrentModel

/// Magnet URIs (BEP 9). A link that parses renders back to a URI that parses to an equal link, as
/// `MagnetLink.uri` promises.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMagnet(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let text = String(decoding: FuzzInput(start, count).rest, as: UTF8.self)
    let link: MagnetLink
    do {
        link = try MagnetLink.parse(text)
    } catch {
        exercise(error)
        return 0
    }
    do {
        let again = try MagnetLink.parse(link.uri)
        fuzzCheck(again == link, "\(link.uri) parses to another link")
    } catch {
        fuzzCheck(false, "the rendered URI \(link.uri) does not parse: \(error)")
    }
    return 0
}
