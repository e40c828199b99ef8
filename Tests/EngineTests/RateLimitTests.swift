import Testing
import NIOCore
@testable import Engine

private let start = NIODeadline.uptimeNanoseconds(5_000_000_000)
private func after(_ amount: TimeAmount) -> NIODeadline { start + amount }

/// Peers each moving `blockBytes` at a time through one shared bucket, each booking its next block only once
/// the previous one may go (how the engine uses the bucket). Returns the bytes each peer moved within
/// `[from, until)` of simulated time.
private func simulate(_ bucket: inout TokenBucket, peers: Int, blockBytes: Int = 16_384,
                      from: TimeAmount = .zero, until: TimeAmount,
                      rateChange: (at: TimeAmount, to: Int?)? = nil) -> [Int] {
    var readyAt = [NIODeadline](repeating: start, count: peers)
    var moved = [Int](repeating: 0, count: peers)
    var changed = false
    while true {
        let peer = readyAt.indices.min { readyAt[$0] < readyAt[$1] }!
        let now = readyAt[peer]
        if let change = rateChange, !changed, now >= after(change.at) {
            bucket.setRate(change.to, now: after(change.at))
            changed = true
        }
        guard now < after(until) else { break }
        let sendAt = now + bucket.consume(blockBytes, now: now)
        if sendAt >= after(from) && sendAt < after(until) { moved[peer] += blockBytes }
        readyAt[peer] = sendAt
    }
    return moved
}

@Suite("TokenBucket")
struct RateLimitTests {

    @Test func nilOrZeroRateIsUnlimited() throws {
        for rate in [nil, 0] as [Int?] {
            var bucket = TokenBucket(bytesPerSecond: rate)
            #expect(bucket.isUnlimited)
            for step in 0 ..< 100 {
                #expect(bucket.consume(1 << 30, now: after(.milliseconds(Int64(step)))) == .zero)
            }
        }
    }

    @Test func negativeSettingsAreProgrammingErrors() async {
        await #expect(processExitsWith: .failure) { _ = TokenBucket(bytesPerSecond: -5) }
        await #expect(processExitsWith: .failure) {
            var bucket = TokenBucket(bytesPerSecond: 1_000)
            bucket.setRate(1_000, burst: -1, now: .uptimeNanoseconds(0))
        }
    }

    @Test func availableBytesReflectTheBalance() {
        var bucket = TokenBucket(bytesPerSecond: 10_000, burst: 20_000)
        #expect(bucket.available(now: start) == 20_000, "a new bucket starts full")
        _ = bucket.consume(30_000, now: start)
        #expect(bucket.available(now: after(.milliseconds(500))) == 0, "still 5,000 bytes in debt")
        #expect(bucket.available(now: after(.seconds(2))) == 10_000)
        #expect(TokenBucket(bytesPerSecond: nil).available(now: start) == .max)
    }

    @Test func singlePeerIsHeldToTheRate() throws {
        var bucket = TokenBucket(bytesPerSecond: 100_000)
        let moved = simulate(&bucket, peers: 1, until: .seconds(60))
        let rate = Double(moved[0]) / 60
        #expect(abs(rate - 100_000) / 100_000 < 0.02, "measured \(rate) B/s")
    }

    @Test func sharedBucketHoldsTheTotalAndSplitsItFairly() throws {
        var bucket = TokenBucket(bytesPerSecond: 1_000_000)
        let moved = simulate(&bucket, peers: 5, until: .seconds(30))
        let total = Double(moved.reduce(0, +)) / 30
        #expect(abs(total - 1_000_000) / 1_000_000 < 0.02, "measured \(total) B/s")
        for bytes in moved {
            let share = Double(bytes) / Double(moved.reduce(0, +))
            #expect(abs(share - 0.2) < 0.01, "peer share \(share) of the shared rate")
        }
    }

    @Test func oddBlockSizesStillAverageToTheRate() throws {
        var bucket = TokenBucket(bytesPerSecond: 33_333, burst: 1_000)
        let moved = simulate(&bucket, peers: 3, blockBytes: 7_001, until: .seconds(120))
        let rate = Double(moved.reduce(0, +)) / 120
        #expect(abs(rate - 33_333) / 33_333 < 0.02, "measured \(rate) B/s")
    }

    @Test func idleTimeBuildsUpAtMostOneBurst() throws {
        var bucket = TokenBucket(bytesPerSecond: 10_000, burst: 20_000)
        #expect(bucket.consume(20_000, now: start) == .zero)
        #expect(bucket.consume(10_000, now: start) == .seconds(1))
        // Ten idle seconds refill only the burst.
        let later = after(.seconds(11))
        #expect(bucket.consume(20_000, now: later) == .zero)
        #expect(bucket.consume(5_000, now: later) == .milliseconds(500))
    }

    @Test func delayQueryBooksNothing() throws {
        var bucket = TokenBucket(bytesPerSecond: 1_000, burst: 1_000)
        #expect(bucket.delay(for: 3_000, now: start) == .seconds(2))
        #expect(bucket.delay(for: 3_000, now: start) == .seconds(2))
        #expect(bucket.consume(1_000, now: start) == .zero)
        #expect(bucket.delay(for: 500, now: after(.milliseconds(250))) == .milliseconds(250))
    }

    @Test func rateChangesAtRuntime() throws {
        var bucket = TokenBucket(bytesPerSecond: 100_000)
        let moved = simulate(&bucket, peers: 2, from: .seconds(31), until: .seconds(91),
                                 rateChange: (at: .seconds(30), to: 400_000))
        let rate = Double(moved.reduce(0, +)) / 60
        #expect(abs(rate - 400_000) / 400_000 < 0.02, "measured \(rate) B/s after raising the limit")
        #expect(bucket.bytesPerSecond == 400_000)

        bucket.setRate(0, now: after(.seconds(100)))
        #expect(bucket.isUnlimited)
        #expect(bucket.consume(1 << 30, now: after(.seconds(100))) == .zero)
        // Limiting again starts from a full burst, not from old debt.
        bucket.setRate(50_000, burst: 50_000, now: after(.seconds(101)))
        #expect(bucket.consume(50_000, now: after(.seconds(101))) == .zero)
        #expect(bucket.consume(50_000, now: after(.seconds(101))) == .seconds(1))
    }

    @Test func loweringTheRateSlowsLaterBookings() throws {
        var bucket = TokenBucket(bytesPerSecond: 400_000)
        let moved = simulate(&bucket, peers: 3, from: .seconds(31), until: .seconds(91),
                                 rateChange: (at: .seconds(30), to: 50_000))
        let rate = Double(moved.reduce(0, +)) / 60
        #expect(abs(rate - 50_000) / 50_000 < 0.02, "measured \(rate) B/s after lowering the limit")
    }
}
