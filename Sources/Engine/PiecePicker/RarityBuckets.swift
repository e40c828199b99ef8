/// A set of pieces kept ordered by availability, so "rarest piece this peer has" is a short scan from the
/// front instead of a pass over every piece, and an availability change is O(1) (one swap).
///
/// Pieces with availability `a` occupy the contiguous bucket `pieces[bucketStart[a] ..< end(a)]`.
/// Availability itself is stored by the owner (`PiecePicker.availability`); callers pass the current
/// value in, and must report every change of a member's availability.
struct RarityBuckets {
    /// Invariants: `bucketStart` is non-decreasing, starts with 0, and every bucket holds exactly the
    /// members whose availability is the bucket's index; `position[p]` is p's index in `pieces`, or -1
    /// when p is not a member.
    private var pieces: [Int32] = []
    private var bucketStart: [Int] = [0]
    private var position: [Int32]

    init(pieceCount: Int) {
        position = [Int32](repeating: -1, count: pieceCount)
    }

    var count: Int { pieces.count }
    var isEmpty: Bool { pieces.isEmpty }
    /// Some member has availability of at least one (members are ordered by availability, bucket 0 first).
    var hasAvailableMember: Bool { end(ofBucket: 0) < pieces.count }

    func contains(_ piece: Int) -> Bool { position[piece] >= 0 }

    mutating func insert(_ piece: Int, availability: Int) {
        precondition(position[piece] < 0, "piece \(piece) is already a rarity-bucket member")
        ensureBuckets(through: availability)
        // Open a hole at the very end, then walk it down: each higher bucket hands its first element to
        // the hole (which is just past that bucket's end) and shrinks from the front.
        var hole = pieces.count
        pieces.append(Int32(piece))
        var bucket = bucketStart.count - 1
        while bucket > availability {
            let first = bucketStart[bucket]
            move(from: first, to: hole)
            bucketStart[bucket] = first + 1
            hole = first
            bucket -= 1
        }
        place(piece, at: hole)
    }

    mutating func remove(_ piece: Int, availability: Int) {
        precondition(position[piece] >= 0, "piece \(piece) is not a rarity-bucket member")
        // Move the piece to the last slot of its bucket, then let the hole bubble up to the array's end:
        // each higher bucket grows at the front into the hole and refills it with its own last element.
        var hole = Int(position[piece])
        assertMember(at: hole, ofBucket: availability)
        let lastOfBucket = end(ofBucket: availability) - 1
        move(from: lastOfBucket, to: hole)
        hole = lastOfBucket
        var bucket = availability + 1
        while bucket < bucketStart.count {
            bucketStart[bucket] -= 1
            let last = end(ofBucket: bucket) - 1
            move(from: last, to: hole)
            hole = last
            bucket += 1
        }
        precondition(hole == pieces.count - 1, "rarity buckets out of order")
        pieces.removeLast()
        position[piece] = -1
    }

    /// `piece`'s availability went from `old` to `old + 1`.
    mutating func availabilityIncreased(_ piece: Int, from old: Int) {
        ensureBuckets(through: old + 1)
        let index = Int(position[piece])
        assertMember(at: index, ofBucket: old)
        let lastOfBucket = bucketStart[old + 1] - 1
        swapAt(index, lastOfBucket)
        bucketStart[old + 1] -= 1
    }

    /// `piece`'s availability went from `old` to `old - 1`.
    mutating func availabilityDecreased(_ piece: Int, from old: Int) {
        precondition(old > 0, "availability cannot drop below zero")
        let index = Int(position[piece])
        assertMember(at: index, ofBucket: old)
        let firstOfBucket = bucketStart[old]
        swapAt(index, firstOfBucket)
        bucketStart[old] += 1
    }

    /// A member matching `isEligible` from the least available non-empty bucket that has one. Ties are broken
    /// by starting each bucket's scan at a random offset.
    func rarest(where isEligible: (Int) -> Bool, using random: inout SeededRandom) -> Int? {
        for bucket in bucketStart.indices {
            let range = bucketStart[bucket] ..< end(ofBucket: bucket)
            if let found = scan(range, isEligible, &random) { return found }
        }
        return nil
    }

    /// A member matching `isEligible`, ignoring availability: scan from a random position.
    func random(where isEligible: (Int) -> Bool, using random: inout SeededRandom) -> Int? {
        scan(0 ..< pieces.count, isEligible, &random)
    }

    /// All members, rarest first (tests and diagnostics).
    var membersRarestFirst: [Int] { pieces.map(Int.init) }

    /// Members not in the bucket of their availability, or whose recorded position is wrong (tests).
    func misplacedMembers(availability: (Int) -> Int) -> [Int] {
        var misplaced = [Int]()
        for bucket in bucketStart.indices {
            for index in bucketStart[bucket] ..< end(ofBucket: bucket) {
                let piece = Int(pieces[index])
                if availability(piece) != bucket || position[piece] != Int32(index) { misplaced.append(piece) }
            }
        }
        let members = position.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
        if members != pieces.count { misplaced.append(-1) }
        return misplaced
    }

    // MARK: - Private

    private func scan(_ range: Range<Int>, _ isEligible: (Int) -> Bool, _ random: inout SeededRandom) -> Int? {
        guard !range.isEmpty else { return nil }
        let start = range.lowerBound + Int.random(in: 0 ..< range.count, using: &random)
        for index in start ..< range.upperBound where isEligible(Int(pieces[index])) { return Int(pieces[index]) }
        for index in range.lowerBound ..< start where isEligible(Int(pieces[index])) { return Int(pieces[index]) }
        return nil
    }

    private func assertMember(at index: Int, ofBucket bucket: Int) {
        assert(index >= 0 && bucket < bucketStart.count
               && bucketStart[bucket] <= index && index < end(ofBucket: bucket),
               "caller passed an availability that does not match the piece's bucket")
    }

    private func end(ofBucket bucket: Int) -> Int {
        bucket + 1 < bucketStart.count ? bucketStart[bucket + 1] : pieces.count
    }

    private mutating func ensureBuckets(through availability: Int) {
        while bucketStart.count <= availability { bucketStart.append(pieces.count) }
    }

    private mutating func move(from source: Int, to destination: Int) {
        guard source != destination else { return }
        let piece = pieces[source]
        pieces[destination] = piece
        position[Int(piece)] = Int32(destination)
    }

    private mutating func place(_ piece: Int, at index: Int) {
        pieces[index] = Int32(piece)
        position[piece] = Int32(index)
    }

    private mutating func swapAt(_ a: Int, _ b: Int) {
        guard a != b else { return }
        pieces.swapAt(a, b)
        position[Int(pieces[a])] = Int32(a)
        position[Int(pieces[b])] = Int32(b)
    }
}
