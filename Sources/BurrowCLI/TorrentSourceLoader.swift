import Engine
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SafeText
import Storage
import TorrentModel

/// Turns the SOURCE argument (a .torrent path or a magnet URI) into a TorrentSource, with errors that
/// say what was wrong. What was left out of an otherwise usable source goes to `warn`.
enum TorrentSourceLoader {
    static func load(_ argument: String, warn: (String) -> Void) throws -> TorrentSource {
        if argument.lowercased().hasPrefix("magnet:") {
            do {
                let (link, warnings) = try MagnetLink.parseReportingWarnings(argument)
                for warning in warnings { warn("\(warning)") }
                return .magnet(link)
            } catch {
                throw CLIError("invalid magnet link: \(error)")
            }
        }
        // Bounded: a huge file, a FIFO or /dev/zero is refused at the limit, not read into memory.
        let bytes: [UInt8]
        do {
            bytes = try BoundedFileReader.contents(of: argument, limit: Metainfo.maximumFileSize)
        } catch {
            throw CLIError("\(error)")
        }
        do {
            return .metainfo(try Metainfo.parse(bytes))
        } catch {
            throw CLIError("\(argument) is not a valid .torrent file: \(error)")
        }
    }
}

/// A failure shown to the user as is. Its text often quotes a torrent, a magnet or a peer, so it is kept
/// escaped (`ControlCharacters`): printing it can never drive the terminal.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description.escapingControlCharacters }
}
