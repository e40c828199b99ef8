import Bencode
import NIOCore

/// A BEP 9 `ut_metadata` message: a bencoded dictionary, followed for `data` by the raw piece bytes.
public enum MetadataMessage: Equatable, Sendable {
    /// Metadata travels in pieces of this size; only the last piece may be shorter.
    public static let pieceSize = 16 * 1024

    case request(piece: Int)
    /// `payload` is the piece itself; `totalSize` the size of the whole info dictionary.
    case data(piece: Int, totalSize: Int, payload: [UInt8])
    case reject(piece: Int)

    static let messageName = "ut_metadata"

    public var piece: Int {
        switch self {
        case .request(let piece), .data(let piece, _, _), .reject(let piece): return piece
        }
    }

    public func encode() -> [UInt8] {
        switch self {
        case .request(let piece):
            return Bencode.encode(["msg_type": 0, "piece": .integer(Int64(piece))])
        case .reject(let piece):
            return Bencode.encode(["msg_type": 2, "piece": .integer(Int64(piece))])
        case .data(let piece, let totalSize, let payload):
            var out = Bencode.encode(
                ["msg_type": 1, "piece": .integer(Int64(piece)), "total_size": .integer(Int64(totalSize))])
            out.append(contentsOf: payload)
            return out
        }
    }

    /// Returns nil for a message type this version does not know: BEP 9 says to ignore those.
    public static func decode(_ payload: ByteBuffer) throws -> MetadataMessage? {
        try decode(bytes: payload.readableBytesView)
    }

    /// Returns nil for a message type this version does not know: BEP 9 says to ignore those.
    public static func decode(_ payload: [UInt8]) throws -> MetadataMessage? {
        try decode(bytes: payload)
    }

    private static func decode<Bytes: Collection<UInt8>>(bytes: Bytes) throws -> MetadataMessage? {
        let value: BValue, consumed: Int
        do {
            (value, consumed) = try Bencode.decodePrefix(bytes, options: ExtensionDictionaryReader.decodingOptions)
        } catch let error as BencodeError {
            throw ExtensionMessageError(message: messageName, problem: .notBencoded(error))
        }
        let reader = try ExtensionDictionaryReader(message: messageName, value: value)
        guard let type = try reader.integer("msg_type") else { throw reader.error(.missingKey("msg_type")) }
        // Metadata is at most a few MiB; a piece index beyond Int32 is nonsense, not a big torrent.
        let piece: Int = try reader.requiredInteger("piece", in: 0...Int(Int32.max))
        switch type {
        case 0:
            return .request(piece: piece)
        case 2:
            return .reject(piece: piece)
        case 1:
            let totalSize: Int = try reader.requiredInteger("total_size", in: 1...Int(Int32.max))
            // The raw piece bytes follow the dictionary.
            let data = Array(bytes.dropFirst(consumed))
            guard data.count <= pieceSize else {
                throw reader.error(.invalidValue(
                    key: "piece data", reason: "has \(data.count) bytes, expected at most \(pieceSize)"))
            }
            return .data(piece: piece, totalSize: totalSize, payload: data)
        default:
            return nil
        }
    }
}
