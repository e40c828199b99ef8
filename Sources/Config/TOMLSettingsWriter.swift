#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import TOMLKit

/// Writes ``Settings`` back to their TOML file (what `session-set` calls): the file is replaced atomically
/// (a temporary file in the same folder, synced, renamed over the old one) and keeps its permissions and, when
/// the writer may set them, its owner; a new file is created 0600 (it may hold credentials later).
///
/// Keys Burrow does not model are kept as they were; every key of ``SettingKey`` is written from `settings`
/// (an unset key is removed). toml++ writes the document anew, so comments and the order of keys are not kept.
public enum TOMLSettingsWriter {
    public static func save(_ settings: Settings, to path: String) throws(SettingsError) {
        let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        let existing: String? = FileManager.default.fileExists(atPath: target)
            ? try TOMLSettingsReader.readText(path: target) : nil
        let text = try document(for: settings, over: existing, source: .file(path: path))
        do { try AtomicFile.replace(target, with: Array(text.utf8)) } catch {
            throw SettingsError(key: nil, source: .file(path: path), message: "cannot save: \(error)")
        }
    }

    /// The TOML text of `settings`, written over the document `existing` (nil: a new document).
    public static func document(for settings: Settings, over existing: String?,
                                source: SettingsSource) throws(SettingsError) -> String {
        let root = try existing.map { text throws(SettingsError) in try TOMLSettingsReader.document(text, source: source) }
            ?? TOMLTable()
        for key in SettingKey.allCases {
            let value = key.tomlValue(in: settings)
            var table = root[key.table]?.table
            if table == nil, value != nil {
                root[key.table] = TOMLTable()
                table = root[key.table]?.table
            }
            guard let table else { continue }
            if let value { table[key.name] = value } else { table.remove(at: key.name) }
            if table.isEmpty { root.remove(at: key.table) }
        }
        return root.convert(to: .toml, options: [.allowUnicodeStrings, .indentArrayElements]) + "\n"
    }
}

extension SettingKey {
    /// This key's value in `settings` as TOMLKit writes it, nil when unset.
    func tomlValue(in settings: Settings) -> (any TOMLValueConvertible)? {
        switch self {
        case .networkBind: return settings.network.bind.map { TOMLArray($0) }
        case .networkAllowUnbound: return settings.network.allowUnbound
        case .networkPort: return settings.network.port
        case .networkDNS: return settings.network.dns.map { TOMLArray($0.compactMap(\.ipAddress)) }
        case .firewallMatch: return settings.firewall.match?.argument
        case .storageStateDir: return settings.storage.stateDir
        }
    }
}

/// Replaces a file's contents all at once: readers see the old file or the new one, never a part.
enum AtomicFile {
    struct Failure: Error, CustomStringConvertible {
        var step: String
        var code: Int32
        var description: String { "\(step): \(String(cString: strerror(code)))" }
    }

    static func replace(_ path: String, with bytes: [UInt8]) throws(Failure) {
        let folder = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        var old = stat()
        let existed = stat(path, &old) == 0
        var template = Array("\(folder)/.\((path as NSString).lastPathComponent).XXXXXX".utf8CString)
        let descriptor = mkstemp(&template)
        guard descriptor >= 0 else { throw Failure(step: "create a temporary file in \(folder)", code: errno) }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var renamed = false
        defer {
            if !renamed { unlink(temporary) }
        }
        do {
            defer { close(descriptor) }
            var written = 0
            while written < bytes.count {
                let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw Failure(step: "write \(temporary)", code: errno)
                }
                written += count
            }
            // Same permissions (and owner, when allowed) as the file it replaces; a new file is private.
            if fchmod(descriptor, existed ? old.st_mode & 0o7777 : 0o600) != 0 {
                throw Failure(step: "set permissions of \(temporary)", code: errno)
            }
            if existed, old.st_uid != geteuid() || old.st_gid != getegid() {
                _ = fchown(descriptor, old.st_uid, old.st_gid)
            }
            if fsync(descriptor) != 0 { throw Failure(step: "sync \(temporary)", code: errno) }
        }
        guard rename(temporary, path) == 0 else { throw Failure(step: "rename over \(path)", code: errno) }
        renamed = true
        // The rename itself is durable once the folder is synced.
        let folderDescriptor = open(folder, O_RDONLY | O_DIRECTORY)
        if folderDescriptor >= 0 {
            _ = fsync(folderDescriptor)
            close(folderDescriptor)
        }
    }
}
