/// Reads the environment layer of ``Settings``: `BURROW_<TABLE>_<KEY>` (``SettingKey/environmentVariable``),
/// lists comma-separated (`BURROW_NETWORK_BIND=wg0,tun*`), booleans `true`/`false`.
///
/// A variable under a known table's prefix that names no key (`BURROW_NETWORK_PROT`) is an error, as an unknown
/// key in the file is; other `BURROW_*` variables (tools and tests use some) are not settings and are ignored.
public enum EnvironmentSettingsReader {
    public static func read(_ environment: [String: String]) throws(SettingsError) -> Settings {
        var settings = Settings()
        var sources: [SettingKey: String] = [:]
        for (variable, text) in environment.sorted(by: { $0.key < $1.key }) where variable.hasPrefix("BURROW_") {
            if let key = SettingKey.allCases.first(where: { $0.environmentVariable == variable }) {
                if let problem = key.apply(.text(text), to: &settings) {
                    throw SettingsError(key: key.rawValue, source: .environment(variable: variable), message: problem)
                }
                sources[key] = variable
            } else if let table = SettingKey.tables.first(where: { variable.hasPrefix("BURROW_\($0.uppercased())_") }) {
                let name = variable.dropFirst("BURROW_\(table)_".count).lowercased()
                let known = SettingKey.keys(in: table).map(\.environmentVariable).joined(separator: ", ")
                throw SettingsError(key: "\(table).\(name)", source: .environment(variable: variable),
                                    message: "unknown setting (known: \(known))")
            }
        }
        if let (key, problem) = SettingKey.contradiction(in: settings) {
            throw SettingsError(key: key.rawValue,
                                source: .environment(variable: sources[key] ?? key.environmentVariable), message: problem)
        }
        return settings
    }
}
