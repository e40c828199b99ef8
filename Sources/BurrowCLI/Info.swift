import ArgumentParser
import Engine
import TorrentModel

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a torrent's name, info hash, files, piece size and trackers (no network).")

    @Argument(help: "A .torrent file or a magnet URI.")
    var source: String

    func run() throws {
        let loaded: TorrentSource
        do { loaded = try TorrentSourceLoader.load(source) } catch { throw ValidationError("\(error)") }
        switch loaded {
        case .metainfo(let metainfo):
            let info = metainfo.info
            print("name:        \(info.name)")
            print("info hash:   \(info.infoHash.hex)")
            print("size:        \(ByteFormat.size(info.totalLength)) (\(info.totalLength) bytes)")
            print("pieces:      \(info.pieceCount) × \(ByteFormat.size(Int64(info.pieceLength)))")
            if info.isPrivate { print("private:     yes") }
            if let comment = metainfo.comment { print("comment:     \(comment)") }
            if let createdBy = metainfo.createdBy { print("created by:  \(createdBy)") }
            print("files:       \(info.files.filter { !$0.isPadding }.count)")
            for (index, file) in info.files.enumerated() where !file.isPadding {
                print("  [\(index)] \(file.relativePath)  \(ByteFormat.size(file.length))")
            }
            print("trackers:")
            if metainfo.announceTiers.isEmpty { print("  (none)") }
            for (tier, urls) in metainfo.announceTiers.enumerated() {
                for url in urls { print("  tier \(tier): \(url)") }
            }
        case .magnet(let magnet):
            print("name:        \(magnet.displayName ?? "(unknown until metadata is fetched)")")
            print("info hash:   \(magnet.infoHash.hex)")
            print("trackers:")
            if magnet.trackers.isEmpty { print("  (none)") }
            for url in magnet.trackers { print("  \(url)") }
            if !magnet.peers.isEmpty { print("peers:       \(magnet.peers.joined(separator: ", "))") }
        }
    }
}
