import Foundation
import Testing

/// Only the `Sockets` module may create sockets or resolve names. This test reads every source file of
/// every other module and fails on any use of a socket-creating or resolving API.
@Suite struct SocketSeamTests {
    /// API names that open sockets or resolve names outside the seam.
    static let forbidden: [(name: String, pattern: String)] = [
        ("NIO bootstraps", #"\b(ClientBootstrap|ServerBootstrap|DatagramBootstrap|NIOPipeBootstrap|NIORawSocketBootstrap|NIOTS\w*Bootstrap)\b"#),
        ("system resolver", #"\b(getaddrinfo|gethostbyname\w*|getnameinfo|res_query|GetaddrinfoResolver|NIORandomizedDNSResolver)\b"#),
        ("Foundation networking", #"\b(URLSession|NSURLConnection|CFSocket\w*|CFStream\w*|NWConnection|NWListener|Host\.current)\b"#),
        ("other network libraries", #"^\s*(@testable\s+)?import\s+(Network|AsyncHTTPClient|FoundationNetworking)\b"#),
        ("raw socket calls", #"(?<![\w.])(socket|connect|bind|sendto|sendmsg|accept|accept4|socketpair)\s*\("#),
    ]

    static var sourcesDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources")
    }

    /// Violations in `text`, as "line N: description".
    static func violations(in text: String) -> [String] {
        var found: [String] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let code = String(line.split(separator: "//", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            for rule in forbidden {
                let regex = try! NSRegularExpression(pattern: rule.pattern, options: [.anchorsMatchLines])
                if regex.firstMatch(in: code, range: NSRange(code.startIndex..., in: code)) != nil {
                    found.append("line \(number + 1): \(rule.name): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        return found
    }

    @Test func noModuleOutsideSocketsOpensSockets() throws {
        let root = Self.sourcesDirectory
        let modules = try FileManager.default.contentsOfDirectory(atPath: root.path)
        #expect(modules.contains("Sockets"), "expected Sources/Sockets at \(root.path)")
        #expect(modules.count >= 5, "found too few modules under \(root.path): \(modules)")
        var scanned = 0
        var problems: [String] = []
        for module in modules where module != "Sockets" {
            let enumerator = FileManager.default.enumerator(atPath: root.appendingPathComponent(module).path)
            while let relative = enumerator?.nextObject() as? String {
                guard relative.hasSuffix(".swift") else { continue }
                let path = root.appendingPathComponent(module).appendingPathComponent(relative).path
                let text = try String(contentsOfFile: path, encoding: .utf8)
                scanned += 1
                problems += Self.violations(in: text).map { "\(module)/\(relative) \($0)" }
            }
        }
        #expect(scanned > 10, "scanned only \(scanned) files; is the Sources path right?")
        #expect(problems.isEmpty, "socket APIs used outside Sources/Sockets:\n\(problems.joined(separator: "\n"))")
    }

    /// The scanner itself must catch each kind of violation (so the test above can fail).
    @Test(arguments: [
        "let b = ClientBootstrap(group: g)",
        "let fd = socket(AF_INET, SOCK_STREAM, 0)",
        "_ = connect(fd, &addr, len)",
        "getaddrinfo(host, nil, &hints, &res)",
        "let s = URLSession.shared",
        "import AsyncHTTPClient",
        "let server = ServerBootstrap(group: g)",
    ])
    func scannerCatches(_ line: String) {
        #expect(!Self.violations(in: line).isEmpty)
    }

    @Test(arguments: [
        "sockets.connectTCP(to: address)",
        "bootstrapLike.bind(to: address)",
        "func dial(_ address: PeerAddress)",
        "// ClientBootstrap is only used in Sockets",
    ])
    func scannerAllows(_ line: String) {
        #expect(Self.violations(in: line).isEmpty)
    }
}
