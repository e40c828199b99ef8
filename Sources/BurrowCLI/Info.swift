import ArgumentParser
import Engine
import Foundation
import SafeText
import TorrentModel

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a torrent's name, info hash, files, piece size and trackers (no network).")

    @Argument(help: "A .torrent file or a magnet URI.")
    var source: String

    func run() throws {
        let loaded: TorrentSource
        do {
            loaded = try TorrentSourceLoader.load(source) { warning in
                FileHandle.standardError.write(Data("warning: \(escaping: warning)\n".utf8))
            }
        } catch { throw ValidationError("\(error)") }
        // Every line quotes the torrent (names, paths, comment, trackers): each is printed escaped.
        func show(_ line: String) { print(line.escapingControlCharacters) }
        switch loaded {
        case .metainfo(let metainfo):
            let info = metainfo.info
            show("name:        \(info.name)")
            show("info hash:   \(info.infoHash.hex)")
            show("size:        \(ByteFormat.size(info.totalLength)) (\(info.totalLength) bytes)")
            show("pieces:      \(info.pieceCount) × \(ByteFormat.size(Int64(info.pieceLength)))")
            if info.isPrivate { show("private:     yes") }
            if let comment = metainfo.comment { show("comment:     \(comment)") }
            if let createdBy = metainfo.createdBy { show("created by:  \(createdBy)") }
            show("files:       \(info.files.filter { !$0.isPadding }.count)")
            for (index, file) in info.files.enumerated() where !file.isPadding {
                show("  [\(index)] \(file.relativePath)  \(ByteFormat.size(file.length))")
            }
            show("trackers:")
            if metainfo.announceTiers.isEmpty { show("  (none)") }
            for (tier, urls) in metainfo.announceTiers.enumerated() {
                for url in urls { show("  tier \(tier): \(url)") }
            }
        case .magnet(let magnet):
            show("name:        \(magnet.displayName ?? "(unknown until metadata is fetched)")")
            show("info hash:   \(magnet.infoHash.hex)")
            show("trackers:")
            if magnet.trackers.isEmpty { show("  (none)") }
            for url in magnet.trackers { show("  \(url)") }
            if !magnet.peers.isEmpty { show("peers:       \(magnet.peers.joined(separator: ", "))") }
        }
    }
}
