import Foundation

/// A fresh folder under the temporary directory, removed after `body`.
func withTemporaryFolder<T>(_ body: (String) throws -> T) throws -> T {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("burrow-config-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    return try body(folder)
}

/// The error's text, or a failure naming what was returned instead.
func errorText(_ body: () throws -> Any) -> String {
    do {
        let value = try body()
        return "no error; got \(value)"
    } catch {
        return "\(error)"
    }
}
