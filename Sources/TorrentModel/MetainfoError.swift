import Bencode

/// Why a .torrent file or info dictionary was refused. Every case names the offending field with
/// its full path, e.g. `info.files[3].path`, so the message points straight at the problem.
public enum MetainfoError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The bytes are not valid bencode; the error's path names the field it was found in.
    case malformedBencode(BencodeError)
    case missingField(String)
    case wrongType(field: String, expected: String, found: String)
    /// The field is present and well typed but its value is unacceptable.
    case invalidValue(field: String, reason: String)

    /// The field path the error is about; nil for malformed bencode outside any field.
    public var field: String? {
        switch self {
        case .malformedBencode(let error): return error.path.isEmpty ? nil : error.path.description
        case .missingField(let field), .wrongType(let field, _, _), .invalidValue(let field, _): return field
        }
    }

    public var description: String {
        switch self {
        case .malformedBencode(let error):
            return error.path.isEmpty ? "malformed bencode: \(error.reason)" : "\(error.path): malformed bencode: \(error.reason)"
        case .missingField(let field): return "\(field): required field is missing"
        case .wrongType(let field, let expected, let found): return "\(field): expected \(expected), found \(found)"
        case .invalidValue(let field, let reason): return "\(field): \(reason)"
        }
    }
}

/// Typed access to one dictionary of the metainfo, turning absences and type mismatches into
/// `MetainfoError`s that carry the field's full path.
struct MetainfoFields {
    let entries: [BKey: BValue]
    /// Path of this dictionary ("" for the top level, "info", "info.files[2]").
    let path: String

    init(_ value: BValue, path: String) throws {
        guard case .dictionary(let entries) = value else {
            throw MetainfoError.wrongType(field: path, expected: "dictionary", found: value.kindName)
        }
        self.entries = entries
        self.path = path
    }

    func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    subscript(key: String) -> BValue? { entries[BKey(key)] }

    func required(_ key: String) throws -> BValue {
        guard let value = self[key] else { throw MetainfoError.missingField(fieldPath(key)) }
        return value
    }

    func requiredInteger(_ key: String) throws -> Int64 {
        try integer(try required(key), key: key)
    }

    func optionalInteger(_ key: String) throws -> Int64? {
        try self[key].map { try integer($0, key: key) }
    }

    func requiredBytes(_ key: String) throws -> [UInt8] {
        try bytes(try required(key), key: key)
    }

    func optionalBytes(_ key: String) throws -> [UInt8]? {
        try self[key].map { try bytes($0, key: key) }
    }

    func requiredList(_ key: String) throws -> [BValue] {
        let value = try required(key)
        guard case .list(let items) = value else {
            throw MetainfoError.wrongType(field: fieldPath(key), expected: "list", found: value.kindName)
        }
        return items
    }

    private func integer(_ value: BValue, key: String) throws -> Int64 {
        guard case .integer(let v) = value else {
            throw MetainfoError.wrongType(field: fieldPath(key), expected: "integer", found: value.kindName)
        }
        return v
    }

    private func bytes(_ value: BValue, key: String) throws -> [UInt8] {
        guard case .bytes(let v) = value else {
            throw MetainfoError.wrongType(field: fieldPath(key), expected: "byte string", found: value.kindName)
        }
        return v
    }
}

extension MetainfoError {
    /// Wraps a decoder failure of input that sits at `path` of a .torrent (so its fields are named in
    /// full); other errors pass through unchanged.
    static func wrappingBencode<T>(at path: BencodePath = BencodePath(), _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as BencodeError { throw MetainfoError.malformedBencode(error.nested(under: path)) }
    }
}
