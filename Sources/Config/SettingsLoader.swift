import Foundation

/// The three layers read and merged: file, then environment, then flags (see ``Settings``).
public struct LoadedSettings: Sendable, Equatable {
    /// The merged settings.
    public var settings: Settings
    /// The file that was read, nil when none was (no `--config` and no file at the default path).
    public var filePath: String?
}

public enum SettingsLoader {
    public static let defaultPath = "/etc/burrow/burrow.toml"

    /// `explicitPath` (`--config`) must exist; without it the default path is read when it exists.
    /// `flags` is the command line's layer, built with ``Settings/set(_:text:from:)``.
    public static func load(explicitPath: String?, defaultPath: String = defaultPath,
                            environment: [String: String] = ProcessInfo.processInfo.environment,
                            flags: Settings = Settings()) throws(SettingsError) -> LoadedSettings {
        let path = explicitPath ?? (FileManager.default.fileExists(atPath: defaultPath) ? defaultPath : nil)
        let file = try path.map { path throws(SettingsError) in try TOMLSettingsReader.read(path: path) } ?? Settings()
        let fromEnvironment = try EnvironmentSettingsReader.read(environment)
        return LoadedSettings(settings: file.overlaid(by: fromEnvironment).overlaid(by: flags), filePath: path)
    }
}

extension Settings {
    /// Sets `key` from text (a flag's value: lists comma-separated, booleans `true`/`false`), checked by the
    /// same parser as the file and the environment.
    public mutating func set(_ key: SettingKey, text: String, from source: SettingsSource) throws(SettingsError) {
        if let problem = key.apply(.text(text), to: &self) {
            throw SettingsError(key: key.rawValue, source: source, message: problem)
        }
    }
}
