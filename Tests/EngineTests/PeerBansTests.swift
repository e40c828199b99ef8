import Logging
import NIOCore
import Testing
@testable import Engine

@Suite struct PeerBansTests {
    let ip: [UInt8] = [10, 0, 0, 1]

    @Test func bansExpire() {
        var bans = PeerBans()
        let now = NIODeadline.uptimeNanoseconds(1_000_000_000)
        bans.ban(ip, for: .minutes(30), reason: "junk", now: now)
        #expect(bans.isBanned(ip, now: now + .minutes(29)))
        #expect(bans.ban(on: ip, now: now)?.reason == "junk")
        #expect(!bans.isBanned(ip, now: now + .minutes(30)))
        #expect(bans.activeCount(now: now) == 1)
        #expect(bans.activeCount(now: now + .minutes(31)) == 0)
    }

    @Test func aShorterBanDoesNotCutALongerOneShort() {
        var bans = PeerBans()
        let now = NIODeadline.uptimeNanoseconds(1_000_000_000)
        bans.ban(ip, for: .hours(2), reason: "hash failures", now: now)
        bans.ban(ip, for: .minutes(30), reason: "junk", now: now)
        #expect(bans.isBanned(ip, now: now + .minutes(90)))
    }

    @Test func violationsAddUpAcrossConnectionsAndAreForgottenLater() {
        var bans = PeerBans()
        let now = NIODeadline.uptimeNanoseconds(1_000_000_000)
        #expect(bans.recordViolation(by: ip, now: now) == 1)
        #expect(bans.recordViolation(by: ip, now: now + .minutes(1)) == 2)
        #expect(bans.recordViolation(by: ip, now: now + .minutes(2) + PeerBans.violationMemory) == 1)
    }

    @Test func aFloodOfAddressesStaysWithinCapacity() {
        var bans = PeerBans()
        let now = NIODeadline.uptimeNanoseconds(1_000_000_000)
        for i in 0..<(PeerBans.capacity * 3) {
            let address: [UInt8] = [10, UInt8(i >> 16 & 255), UInt8(i >> 8 & 255), UInt8(i & 255)]
            bans.ban(address, for: .minutes(30), reason: "junk", now: now + .seconds(Int64(i)))
            _ = bans.recordViolation(by: address, now: now)
        }
        #expect(bans.recordCount.bans == PeerBans.capacity)
        #expect(bans.recordCount.violations <= PeerBans.capacity)
    }
}

@Suite struct RateLimitedLogTests {
    @Test func oneLinePerKeyPerIntervalWithTheCountHeldBack() {
        var log = RateLimitedLog(interval: .seconds(30))
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        #expect(log.admit(key: "junk", "cut off A", now: start) == "cut off A")
        #expect(log.admit(key: "junk", "cut off B", now: start + .seconds(1)) == nil)
        #expect(log.admit(key: "junk", "cut off C", now: start + .seconds(2)) == nil)
        // Another reason is not held back by the first.
        #expect(log.admit(key: "metadata", "bad metadata", now: start + .seconds(3)) == "bad metadata")
        #expect(log.admit(key: "junk", "cut off D", now: start + .seconds(31))
            == "cut off D (2 more like it held back since the last)")
    }

    @Test func keysAreBounded() {
        var log = RateLimitedLog()
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        for i in 0..<(RateLimitedLog.maxKeys * 2) {
            #expect(log.admit(key: "k\(i)", "line", now: start + .seconds(Int64(i))) != nil)
        }
        // The earliest keys were forgotten, so they log again at once.
        #expect(log.admit(key: "k0", "line", now: start + .seconds(200)) == "line")
    }
}

@Suite struct EarlyAvailabilityTests {
    @Test func havesBeforeTheMetadataAreOneBoundedBitfield() {
        var early = EarlyAvailability()
        let limit = EarlyAvailability.bound(forMetadataSize: 40_000)
        #expect(limit == 2000)
        var accepted = 0
        for _ in 0..<10 { for index in 0..<2000 where early.have(index, limit: limit) { accepted += 1 } }
        #expect(accepted == 20_000)
        #expect(early.bits.count == 250)
        let beyond = early.have(2000, limit: limit)
        #expect(!beyond)
        let tooLong = early.bitfield([UInt8](repeating: 0xFF, count: 251), limit: limit)
        #expect(!tooLong)
        #expect(early.resolve(pieceCount: 2000)?.isComplete == true)
        // Announced pieces beyond the real piece count make the whole thing invalid.
        #expect(early.resolve(pieceCount: 1000) == nil)
    }

    @Test func aBitfieldAndHavesMerge() {
        var early = EarlyAvailability()
        let merged = early.bitfield([0b1000_0000, 0], limit: 100) && early.have(9, limit: 100)
        #expect(merged)
        #expect(early.resolve(pieceCount: 12)?.setIndices == [0, 9])
        #expect(early.resolve(pieceCount: 9) == nil)
    }
}
