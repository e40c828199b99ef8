import Foundation
import TOMLKit

/// Reads ``Settings`` from a TOML document with TOMLKit (toml++ underneath): full TOML 1.0, then Burrow's
/// strictness on top: unknown tables and keys, wrong types and bad values are errors naming the key.
///
/// Lines: a TOML syntax error carries toml++'s line and column. Errors about parsed values (unknown key, wrong
/// type, bad value) have no position from the library: toml++ records each node's source region, but TOMLKit
/// 0.6.0 does not bridge it. For those, ``TOMLKeyLines`` finds the key's line in the text and the error names it
/// when the match is unambiguous; otherwise the error names the key and file without a line.
///
/// Cost: TOMLKit 0.6.0 never frees a parsed document (`TOMLTable` has no deinit), so each read or save keeps a
/// few KB; fine at start-up and for occasional saves, not for a hot path.
public enum TOMLSettingsReader {
    /// Reads and parses `path`. A missing file is an error here; callers decide whether that matters.
    public static func read(path: String) throws(SettingsError) -> Settings {
        try parse(try readText(path: path), source: .file(path: path))
    }

    public static func parse(_ text: String, source: SettingsSource) throws(SettingsError) -> Settings {
        try apply(document(text, source: source), text: text, source: source)
    }

    static func readText(path: String) throws(SettingsError) -> String {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw SettingsError(key: nil, source: .file(path: path),
                                message: "cannot read the file: \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw SettingsError(key: nil, source: .file(path: path), message: "the file is not UTF-8 text")
        }
        return text
    }

    static func document(_ text: String, source: SettingsSource) throws(SettingsError) -> TOMLTable {
        do {
            return try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            let begin = error.source.begin
            throw SettingsError(key: nil, source: source, line: begin.line > 0 ? begin.line : nil,
                                message: "not valid TOML: \(error.description) (column \(begin.column))")
        } catch {
            throw SettingsError(key: nil, source: source, message: "not valid TOML: \(error)")
        }
    }

    private static func apply(_ document: TOMLTable, text: String, source: SettingsSource) throws(SettingsError) -> Settings {
        let lines = TOMLKeyLines(text: text)
        let knownTables = SettingKey.tables.map { "[\($0)]" }.joined(separator: ", ")
        var settings = Settings()
        for (tableName, node) in document {
            guard SettingKey.tables.contains(tableName) else {
                let what = node.type == .table ? "unknown table [\(tableName)]" : "unknown key outside any table"
                throw SettingsError(key: tableName, source: source, line: lines.line(table: tableName, key: nil),
                                    message: "\(what) (known tables: \(knownTables))")
            }
            guard let table = node.table else {
                throw SettingsError(key: tableName, source: source, line: lines.line(table: tableName, key: nil),
                                    message: "must be a table ([\(tableName)]), got \(SettingValue(node).kindDescription)")
            }
            let known = SettingKey.keys(in: tableName)
            for (name, value) in table {
                let dotted = "\(tableName).\(name)"
                let line = lines.line(table: tableName, key: name)
                guard let key = known.first(where: { $0.name == name }) else {
                    throw SettingsError(key: dotted, source: source, line: line, message:
                        "unknown key (known in [\(tableName)]: \(known.map(\.name).joined(separator: ", ")))")
                }
                if let problem = key.apply(SettingValue(value), to: &settings) {
                    throw SettingsError(key: dotted, source: source, line: line, message: problem)
                }
            }
        }
        if let (key, problem) = SettingKey.contradiction(in: settings) {
            throw SettingsError(key: key.rawValue, source: source, line: lines.line(table: key.table, key: key.name),
                                message: problem)
        }
        return settings
    }
}

extension SettingValue {
    init(_ value: any TOMLValueConvertible) {
        switch value.type {
        case .string: self = value.string.map(SettingValue.string) ?? .other(typeName: "string")
        case .int: self = value.int.map(SettingValue.integer) ?? .other(typeName: "integer")
        case .bool: self = value.bool.map(SettingValue.boolean) ?? .other(typeName: "boolean")
        case .array: self = .array(value.array.map { $0.map(SettingValue.init) } ?? [])
        default: self = .other(typeName: value.type.description)
        }
    }
}

/// The line of a key in TOML text, found by reading the text because TOMLKit keeps no positions for parsed
/// values. Understands `[table]` headers followed by `key = …`, and `table.key = …` / `table = {…}` outside any
/// table; answers only when exactly one line matches, so a line it names is the key's line.
struct TOMLKeyLines {
    private var entries: [(table: String?, key: String, line: Int)] = []
    private var headers: [(table: String, line: Int)] = []

    init(text: String) {
        var table: String?
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") && !line.hasPrefix("[[") {
                guard let close = line.firstIndex(of: "]") else { continue }
                let name = Self.bare(line[line.index(after: line.startIndex)..<close])
                headers.append((name, index + 1))
                table = name
            } else if line.hasPrefix("[[") {
                table = nil
            } else if let equals = line.firstIndex(of: "="), !line.hasPrefix("#") {
                entries.append((table, Self.bare(line[..<equals]), index + 1))
            }
        }
    }

    /// `key` nil: the line that opens `table` (its header, or its first dotted key outside any table).
    func line(table: String, key: String?) -> Int? {
        let found: [Int]
        if let key {
            found = entries.filter { ($0.table == table && $0.key == key) || ($0.table == nil && $0.key == "\(table).\(key)") }
                .map(\.line)
        } else {
            let header = headers.filter { $0.table == table }.map(\.line)
            found = header.isEmpty
                ? Array(entries.filter { $0.table == nil && ($0.key == table || $0.key.hasPrefix("\(table).")) }.map(\.line).prefix(1))
                : header
        }
        return found.count == 1 ? found[0] : nil
    }

    /// A key or table name without quotes and spaces around dots: `"network" . port` → `network.port`.
    private static func bare(_ text: Substring) -> String {
        text.split(separator: ".").map {
            $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
        }.joined(separator: ".")
    }
}
