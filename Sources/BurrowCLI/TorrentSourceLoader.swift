import Engine
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import TorrentModel

/// Turns the SOURCE argument (a .torrent path or a magnet URI) into a TorrentSource, with errors that
/// say what was wrong.
enum TorrentSourceLoader {
    static func load(_ argument: String) throws -> TorrentSource {
        if argument.lowercased().hasPrefix("magnet:") {
            do {
                return .magnet(try MagnetLink.parse(argument))
            } catch {
                throw CLIError("invalid magnet link: \(error)")
            }
        }
        guard let data = FileManager.default.contents(atPath: argument) else {
            throw CLIError("cannot read \(argument): no such file, or not readable")
        }
        do {
            return .metainfo(try Metainfo.parse(Array(data)))
        } catch {
            throw CLIError("\(argument) is not a valid .torrent file: \(error)")
        }
    }
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
