/// Extension names (BEP 10 `m` dictionary keys) and the message ids we ask peers to use when they send
/// them to us. Peers pick their own ids for what we send them; those come from their handshake's `m`.
public enum LocalExtensionIDs {
    public static let utMetadataName = "ut_metadata"
    public static let utPexName = "ut_pex"

    /// BEP 9 metadata exchange.
    public static let utMetadata: UInt8 = 1
    /// BEP 11 peer exchange.
    public static let utPex: UInt8 = 2

    /// The `m` dictionary of our extension handshake.
    public static let all: [String: UInt8] = [utMetadataName: utMetadata, utPexName: utPex]

    /// Which local extension an incoming `extended` message id refers to; nil for unknown ids.
    public static func name(of id: UInt8) -> String? {
        all.first { $0.value == id }?.key
    }
}
