import Foundation
import NIOCore
import NIOEmbedded
import PeerWire
import Testing

/// Throughput of encoding 16 KiB piece messages. 64 MiB by default so the suite stays quick;
/// set PEERWIRE_BENCHMARK_MIB (e.g. 1024) for the full measurement. Results are printed.
@Suite struct EncodingBenchmarkTests {
    static let mebibytes = ProcessInfo.processInfo.environment["PEERWIRE_BENCHMARK_MIB"].flatMap(Int.init) ?? 64
    static let blockSize = 16 * 1024

    static func report(_ name: String, bytes: Int, elapsed: Duration) -> Double {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let rate = Double(bytes) / 1_000_000 / seconds
        print("PeerWire benchmark: \(name): \(bytes / (1 << 20)) MiB in \(String(format: "%.3f", seconds)) s = \(String(format: "%.0f", rate)) MB/s")
        return rate
    }

    @Test func copyingEncoderThroughput() throws {
        let block = ByteBuffer(repeating: 0xA5, count: Self.blockSize)
        let count = Self.mebibytes * (1 << 20) / Self.blockSize
        let encoder = PeerWireEncoder()
        var out = ByteBuffer()
        out.reserveCapacity(Self.blockSize + 13)
        var written = 0
        let elapsed = try ContinuousClock().measure {
            for index in 0..<count {
                out.clear()
                let frame = PeerWireFrame.message(.piece(piece: UInt32(index), begin: 0, block: block))
                try encoder.encode(data: frame, out: &out)
                written += out.readableBytes
            }
        }
        #expect(written == count * (Self.blockSize + 13))
        #expect(Self.report("MessageToByteEncoder (copies block)", bytes: written, elapsed: elapsed) > 0)
    }

    @Test func zeroCopyHandlerThroughput() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(PeerWireEncodingHandler())
        let block = ByteBuffer(repeating: 0xA5, count: Self.blockSize)
        let count = Self.mebibytes * (1 << 20) / Self.blockSize
        var written = 0
        let elapsed = try ContinuousClock().measure {
            for index in 0..<count {
                try channel.writeOutbound(PeerWireFrame.message(.piece(piece: UInt32(index), begin: 0, block: block)))
                while let buffer = try channel.readOutbound(as: ByteBuffer.self) { written += buffer.readableBytes }
            }
        }
        #expect(written == count * (Self.blockSize + 13))
        #expect(Self.report("PeerWireEncodingHandler (header + block, EmbeddedChannel)", bytes: written, elapsed: elapsed) > 0)
        #expect(try channel.finish().isClean)
    }
}
