import Bencode

extension Metainfo {
    /// Largest .torrent file Burrow reads (checked before reading it; see `BoundedFileReader`).
    public static let maximumFileSize = 64 * 1024 * 1024
    /// Most bencode values a .torrent may hold: 20 per file at `TorrentInfo.maximumFileCount` files (a
    /// file entry is 6 values plus one per path component), so any accepted torrent fits, and a
    /// million-file one fails after a bounded part of it was decoded.
    public static let maximumBencodeValues = 20 * TorrentInfo.maximumFileCount

    static let decodingOptions: Bencode.DecodingOptions = {
        var options = Bencode.DecodingOptions.lenient
        options.maxValues = maximumBencodeValues
        return options
    }()

    /// Parses and validates a .torrent file (BEP 3 v1, single or multi-file, BEP 12 tiers).
    ///
    /// Informational fields (`comment`, `created by`, `creation date`) of the wrong type are
    /// ignored rather than refused: they never affect what is downloaded.
    public static func parse(_ bytes: [UInt8]) throws -> Metainfo {
        let decoded = try MetainfoError.wrappingBencode {
            try Bencode.decodeTopLevelDictionary(bytes, options: decodingOptions)
        }
        let top = try MetainfoFields(.dictionary(decoded.entries), path: "")
        let infoValue = try top.required("info")
        guard case .dictionary = infoValue, let infoRange = decoded.rawRanges["info"] else {
            throw MetainfoError.wrongType(field: "info", expected: "dictionary", found: infoValue.kindName)
        }
        let info = try TorrentInfo.parse(infoValue: infoValue, rawBytes: Array(bytes[infoRange]))
        return Metainfo(
            info: info,
            announceTiers: try announceTiers(top),
            comment: top["comment.utf-8"]?.string ?? top["comment"]?.bytes.map(PathComponentRules.text),
            createdBy: top["created by"]?.bytes.map(PathComponentRules.text),
            creationDate: top["creation date"]?.int)
    }

    /// BEP 12: `announce-list` wins over `announce` when it yields any URL. URLs are trimmed, empty
    /// and non-UTF-8 ones dropped, repeats (across all tiers) kept only at their first position,
    /// and tiers left empty removed. Shuffling within tiers is the announcer's job.
    static func announceTiers(_ top: MetainfoFields) throws -> [[String]] {
        var seen = Set<String>()
        var tiers = [[String]]()
        func acceptedURL(_ value: BValue, field: String) throws -> String? {
            guard case .bytes = value else {
                throw MetainfoError.wrongType(field: field, expected: "byte string", found: value.kindName)
            }
            guard let url = value.string?.trimmingWhitespace(), !url.isEmpty, !seen.contains(url) else { return nil }
            seen.insert(url)
            return url
        }
        if top["announce-list"] != nil {
            for (tierIndex, tierValue) in try top.requiredList("announce-list").enumerated() {
                guard case .list(let urls) = tierValue else {
                    throw MetainfoError.wrongType(
                        field: "announce-list[\(tierIndex)]", expected: "list", found: tierValue.kindName)
                }
                let tier = try urls.enumerated().compactMap { urlIndex, url in
                    try acceptedURL(url, field: "announce-list[\(tierIndex)][\(urlIndex)]")
                }
                if !tier.isEmpty { tiers.append(tier) }
            }
        }
        if tiers.isEmpty, let announce = top["announce"], let url = try acceptedURL(announce, field: "announce") {
            tiers = [[url]]
        }
        return tiers
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(scalars[first...last])
    }
}
