import NIOCore
import TorrentModel

/// Hashes what resume data cannot vouch for before its claim counts: the `suspect` pieces (their files
/// changed since they were recorded) and a random sample of the others.
///
/// Why a sample: file identities (see `ResumeStore`) catch a replaced, rolled back or touched-after-
/// completion file for free, but not an in-place edit of a file that was still downloading, nor a
/// snapshot planted with identities copied from `stat`. Hashing `sampleSize` random claimed pieces costs
/// a few piece reads; if claimed data is wrong wholesale (zero-filled files, another version of the
/// payload) the sample fails and the whole claim is dropped for a full recheck. A failing suspect piece
/// is just not had (the rest of the claim is unaffected: its files did not change).
public enum ResumeSpotCheck {
    public static let sampleSize = 8

    public enum Outcome: Equatable, Sendable {
        /// `have` = trusted pieces plus the suspects that verified; `hashed` pieces were read to know.
        case trusted(have: Bitfield, hashed: Int, suspectsFailed: Int)
        /// A sampled piece the resume data claimed fails its hash: trust nothing, recheck everything.
        case distrusted(reason: String)
    }

    public static func run<Generator: RandomNumberGenerator>(
        _ claim: ResumeClaim, storage: any PieceStorage, info: TorrentInfo, parallelism: Int,
        sampleSize: Int = ResumeSpotCheck.sampleSize, using generator: inout Generator, on eventLoop: EventLoop
    ) -> EventLoopFuture<Outcome> {
        let sample = randomSample(of: claim.trusted.setIndices, count: sampleSize, using: &generator)
        let pieces = claim.suspect + sample
        return Recheck.verify(pieces: pieces, storage: storage, info: info, parallelism: parallelism, on: eventLoop)
            .map { valid in
                if let bad = sample.first(where: { !valid[$0] }) {
                    return .distrusted(reason: "piece \(bad), which the resume data claims, fails its hash")
                }
                var have = claim.trusted
                var failed = 0
                for piece in claim.suspect {
                    if valid[piece] { have[piece] = true } else { failed += 1 }
                }
                return .trusted(have: have, hashed: pieces.count, suspectsFailed: failed)
            }
    }

    public static func run(_ claim: ResumeClaim, storage: any PieceStorage, info: TorrentInfo, parallelism: Int,
                           on eventLoop: EventLoop) -> EventLoopFuture<Outcome> {
        var generator = SystemRandomNumberGenerator()
        return run(claim, storage: storage, info: info, parallelism: parallelism, using: &generator, on: eventLoop)
    }

    /// Up to `count` distinct elements, uniformly (partial Fisher–Yates over a copy).
    static func randomSample<Generator: RandomNumberGenerator>(of candidates: [Int], count: Int,
                                                               using generator: inout Generator) -> [Int] {
        var pool = candidates
        let taken = min(count, pool.count)
        for index in 0..<taken {
            pool.swapAt(index, Int.random(in: index..<pool.count, using: &generator))
        }
        return Array(pool.prefix(taken))
    }
}
