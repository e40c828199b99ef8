/// A small, fast, seedable generator (SplitMix64) so the picker and choker are reproducible in tests.
/// Not cryptographic: it only breaks ties and spreads piece choice across the swarm.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    /// The seed is scrambled first, so neighbouring seeds (1, 2, 3…) give unrelated streams.
    init(seed: UInt64) { state = Self.mix(seed ^ 0x6A09_E667_F3BC_C909) }

    /// Seeded from the system generator: different on every run.
    init() { state = UInt64.random(in: .min ... .max) }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
