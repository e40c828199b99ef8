/// One bit per piece, most significant bit of byte 0 is piece 0 (BEP 3 wire order).
public struct Bitfield: Equatable, Sendable {
    public let count: Int
    public private(set) var bytes: [UInt8]
    /// Number of set bits, kept current so progress is O(1).
    public private(set) var cardinality: Int

    public init(count: Int, allSet: Bool = false) {
        self.count = count
        self.bytes = [UInt8](repeating: allSet ? 0xff : 0, count: (count + 7) / 8)
        self.cardinality = allSet ? count : 0
        if allSet { clearSpareBits() }
    }

    /// Wire form: rejects a wrong length or set spare bits past `count` (BEP 3 says drop the peer).
    public init?(count: Int, wireBytes: [UInt8]) {
        try? self.init(count: count, validatingWireBytes: wireBytes)
    }

    /// Wire form, saying what is wrong with a refused one.
    public init(count: Int, validatingWireBytes wireBytes: [UInt8]) throws(BitfieldError) {
        let expectedBytes = (count + 7) / 8
        guard wireBytes.count == expectedBytes else {
            throw .wrongLength(bytes: wireBytes.count, expectedBytes: expectedBytes, pieces: count)
        }
        if count % 8 != 0, let last = wireBytes.last, last & (0xff >> UInt8(count % 8)) != 0 {
            throw .spareBitsSet(lastByte: last, pieces: count)
        }
        self.count = count
        self.bytes = wireBytes
        self.cardinality = wireBytes.reduce(0) { $0 + $1.nonzeroBitCount }
    }

    public subscript(index: Int) -> Bool {
        get { bytes[index >> 3] & (0x80 >> UInt8(index & 7)) != 0 }
        set {
            let mask: UInt8 = 0x80 >> UInt8(index & 7)
            let old = bytes[index >> 3] & mask != 0
            guard old != newValue else { return }
            if newValue { bytes[index >> 3] |= mask; cardinality += 1 } else { bytes[index >> 3] &= ~mask; cardinality -= 1 }
        }
    }

    public var isComplete: Bool { cardinality == count }
    public var isEmpty: Bool { cardinality == 0 }

    public mutating func setAll() {
        for i in bytes.indices { bytes[i] = 0xff }
        clearSpareBits()
        cardinality = count
    }

    /// Indices of set bits, ascending.
    public var setIndices: [Int] {
        var out = [Int]()
        out.reserveCapacity(cardinality)
        for (byteIndex, byte) in bytes.enumerated() where byte != 0 {
            for bit in 0..<8 where byte & (0x80 >> UInt8(bit)) != 0 { out.append(byteIndex * 8 + bit) }
        }
        return out
    }

    private mutating func clearSpareBits() {
        guard count % 8 != 0, !bytes.isEmpty else { return }
        bytes[bytes.count - 1] &= ~(0xff >> UInt8(count % 8))
    }
}

/// Why a peer's bitfield was refused.
public enum BitfieldError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `pieces` pieces take `expectedBytes` bytes on the wire; the peer sent `bytes`.
    case wrongLength(bytes: Int, expectedBytes: Int, pieces: Int)
    /// The length is right, but bits past the last piece are set in the final byte.
    case spareBitsSet(lastByte: UInt8, pieces: Int)

    public var description: String {
        switch self {
        case .wrongLength(let bytes, let expectedBytes, let pieces):
            return "bitfield of \(bytes) bytes for \(pieces) pieces, which take \(expectedBytes)"
        case .spareBitsSet(let lastByte, let pieces):
            let spare = 8 - pieces % 8
            return "bitfield sets some of the \(spare) spare bits after piece \(pieces - 1) (last byte 0x"
                + String(lastByte, radix: 16) + ")"
        }
    }
}
