/// Where a setting came from: a layer of ``Settings``.
public enum SettingsSource: Sendable, Equatable, CustomStringConvertible {
    case file(path: String)
    case environment(variable: String)
    case flag(String)

    public var description: String {
        switch self {
        case .file(let path): return path
        case .environment(let variable): return "environment variable \(variable)"
        case .flag(let flag): return flag
        }
    }
}

/// A settings problem, naming the key (`network.port`), where it came from and, for the file, the 1-based line
/// when it is known (see ``TOMLSettingsReader`` for when it is).
///
///     /etc/burrow/burrow.toml:4: network.port: must be an integer 1-65535, got 70000
///     environment variable BURROW_NETWORK_PORT: network.port: must be an integer 1-65535, got "x"
public struct SettingsError: Error, Equatable, CustomStringConvertible {
    /// The dotted key, nil for problems of the whole file (unreadable, not TOML).
    public var key: String?
    public var source: SettingsSource
    public var line: Int?
    public var message: String

    public init(key: String?, source: SettingsSource, line: Int? = nil, message: String) {
        self.key = key
        self.source = source
        self.line = line
        self.message = message
    }

    public var description: String {
        let place = "\(source)" + (line.map { ":\($0)" } ?? "")
        // A flag already names its key.
        if case .flag = source { return place + ": " + message }
        return place + ": " + (key.map { "\($0): " } ?? "") + message
    }
}
