/// A block of a piece, as named by `request`, `cancel` and `reject request` messages.
public struct BlockRequest: Hashable, Sendable, CustomStringConvertible {
    public var piece: UInt32
    /// Byte offset of the block inside the piece.
    public var begin: UInt32
    public var length: UInt32

    public init(piece: UInt32, begin: UInt32, length: UInt32) {
        self.piece = piece
        self.begin = begin
        self.length = length
    }

    public var description: String { "piece \(piece) [\(begin), +\(length))" }
}
