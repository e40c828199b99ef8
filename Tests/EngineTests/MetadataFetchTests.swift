import Crypto
import NIOCore
import PeerWire
import Testing
import TorrentModel
@testable import Engine

/// `MetadataFetch`: sizes peers claim and blame for metadata that fails the info hash (BEP 9 under attack).
@Suite struct MetadataFetchTests {
    /// A 40,000-byte "info dictionary": three metadata pieces.
    static let truth = (0..<40_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
    static let infoHash = InfoHash(bytes: Array(Insecure.SHA1.hash(data: truth)))!

    static func piece(_ index: Int, of bytes: [UInt8]) -> [UInt8] {
        Array(bytes[(index * 16384)..<min((index + 1) * 16384, bytes.count)])
    }

    /// Feeds every piece `peer` is handed until the fetch says something other than needMore.
    static func serve(_ fetch: inout MetadataFetch, peer: Int, bytes: [UInt8]) throws -> MetadataFetch.Event {
        while let piece = fetch.reservePiece(for: peer, allowingDuplicate: false) {
            let event = try fetch.received(piece: piece, totalSize: bytes.count, bytes: Self.piece(piece, of: bytes), from: peer)
            if event != .needMore { return event }
        }
        return .needMore
    }

    @Test func aWrongSizeClaimedFirstDoesNotPinTheFetch() throws {
        var fetch = MetadataFetch(infoHash: Self.infoHash)
        try fetch.claim(peer: 1, size: 999_999)   // the liar, first
        try fetch.claim(peer: 2, size: Self.truth.count)
        #expect(fetch.assembledSizes == [999_999, Self.truth.count])
        // The liar never answers; the honest peer alone completes.
        let asked = fetch.reservePiece(for: 1, allowingDuplicate: false)
        #expect(asked == 0)
        #expect(try Self.serve(&fetch, peer: 2, bytes: Self.truth) == .complete(Self.truth, liars: []))
    }

    @Test func invalidSizesAreRefused() {
        var fetch = MetadataFetch(infoHash: Self.infoHash)
        #expect(throws: MetadataAssemblerError.invalidSize(0, maximum: MetadataAssembler.maximumSize)) {
            try fetch.claim(peer: 1, size: 0)
        }
        #expect(throws: MetadataAssemblerError.self) { try fetch.claim(peer: 1, size: MetadataAssembler.maximumSize + 1) }
        #expect(fetch.claims.isEmpty)
    }

    @Test func aLoneLiarIsProvenAtOnce() throws {
        var fetch = MetadataFetch(infoHash: Self.infoHash)
        try fetch.claim(peer: 1, size: Self.truth.count)
        let bogus = [UInt8](repeating: 0xEE, count: Self.truth.count)
        #expect(try Self.serve(&fetch, peer: 1, bytes: bogus) == .failed(liars: [1]))
    }

    @Test func aMixedFailureIsResolvedOnePeerAtATime() throws {
        var fetch = MetadataFetch(infoHash: Self.infoHash)
        try fetch.claim(peer: 1, size: Self.truth.count)   // liar
        try fetch.claim(peer: 2, size: Self.truth.count)   // honest
        var bogus = Self.truth
        bogus[100] ^= 0xFF
        // Shared mode: peer 1 gets piece 0, peer 2 pieces 1 and 2.
        let reserved = fetch.reservePiece(for: 1, allowingDuplicate: false)
        let first = try #require(reserved)
        #expect(try fetch.received(piece: first, totalSize: bogus.count, bytes: Self.piece(first, of: bogus), from: 1) == .needMore)
        #expect(try Self.serve(&fetch, peer: 2, bytes: Self.truth) == .failed(liars: []))
        // Now one peer at a time, the lowest first: the liar fails alone and is named.
        let notNow = fetch.reservePiece(for: 2, allowingDuplicate: false)
        #expect(notNow == nil)
        #expect(try Self.serve(&fetch, peer: 1, bytes: bogus) == .failed(liars: [1]))
        fetch.forget(peer: 1)   // banned
        // The honest peer completes, and the first attempt's bad piece names the liar again.
        #expect(try Self.serve(&fetch, peer: 2, bytes: Self.truth) == .complete(Self.truth, liars: [1]))
    }

    @Test func anHonestSoleSourceClearsItselfAndNamesTheOthers() throws {
        var fetch = MetadataFetch(infoHash: Self.infoHash)
        try fetch.claim(peer: 1, size: Self.truth.count)   // honest, asked first
        try fetch.claim(peer: 2, size: Self.truth.count)   // liar
        var bogus = Self.truth
        bogus[20_000] ^= 0xFF
        let reserved = fetch.reservePiece(for: 1, allowingDuplicate: false)
        let first = try #require(reserved)
        #expect(try fetch.received(piece: first, totalSize: Self.truth.count, bytes: Self.piece(first, of: Self.truth), from: 1) == .needMore)
        #expect(try Self.serve(&fetch, peer: 2, bytes: bogus) == .failed(liars: []))
        #expect(try Self.serve(&fetch, peer: 1, bytes: Self.truth) == .complete(Self.truth, liars: [2]))
    }

    @Test func dataForAWrongSizeNamesItsSendersOnceTheTruthIsKnown() throws {
        var fetch = MetadataFetch(infoHash: Self.infoHash)
        try fetch.claim(peer: 1, size: 20_000)
        try fetch.claim(peer: 2, size: Self.truth.count)
        let wrong = [UInt8](repeating: 1, count: 20_000)
        let reserved = fetch.reservePiece(for: 1, allowingDuplicate: false)
        let piece = try #require(reserved)
        #expect(try fetch.received(piece: piece, totalSize: 20_000, bytes: Self.piece(piece, of: wrong), from: 1) == .needMore)
        #expect(throws: MetadataAssemblerError.totalSizeMismatch(announced: 20_000, expected: Self.truth.count)) {
            try fetch.received(piece: 0, totalSize: 20_000, bytes: [], from: 2)
        }
        #expect(try Self.serve(&fetch, peer: 2, bytes: Self.truth) == .complete(Self.truth, liars: [1]))
    }

    @Test func sizesAreBoundedAndFreedWhenTheirClaimersGo() throws {
        var fetch = MetadataFetch(infoHash: Self.infoHash)
        for peer in 1...5 { try fetch.claim(peer: peer, size: 1000 * peer) }
        #expect(fetch.assembledSizes.count == MetadataFetch.maxAssemblies)
        let left = Set([1000, 2000, 3000, 4000, 5000]).subtracting(fetch.assembledSizes)
        // Peers whose size is not assembled wait; when an assembled size's only claimer goes, one starts.
        let waiting = try #require(left.first.map { $0 / 1000 })
        let notNow = fetch.reservePiece(for: waiting, allowingDuplicate: false)
        #expect(notNow == nil)
        for size in fetch.assembledSizes { fetch.forget(peer: size / 1000) }
        #expect(fetch.assembledSizes == left)
    }
}
