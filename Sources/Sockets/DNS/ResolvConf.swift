#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore

/// The `nameserver` lines of resolv.conf(5), as DNS server addresses (port 53).
public struct ResolvConf: Sendable, Equatable {
    public let nameservers: [SocketAddress]
    /// Lines that looked like nameserver entries but could not be used, with the reason.
    public let ignored: [String]

    /// Parses resolv.conf text. Comments (`#`, `;`) and other options are skipped; unusable nameserver
    /// entries are listed in `ignored` rather than failing the whole file, as the C library does.
    public static func parse(_ text: String) -> ResolvConf {
        var servers: [SocketAddress] = []
        var ignored: [String] = []
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.prefix { $0 != "#" && $0 != ";" }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard fields.first == "nameserver" else { continue }
            guard fields.count >= 2 else {
                ignored.append("line \(number + 1): nameserver without an address")
                continue
            }
            let text = String(fields[1])
            if text.contains("%") {
                ignored.append("line \(number + 1): nameserver \(text) has a scope; scoped addresses are not supported")
                continue
            }
            guard let address = try? SocketAddress(ipAddress: text, port: 53) else {
                ignored.append("line \(number + 1): nameserver \"\(text)\" is not an IPv4 or IPv6 address")
                continue
            }
            if !servers.contains(address) { servers.append(address) }
        }
        return ResolvConf(nameservers: servers, ignored: ignored)
    }

    public static func load(path: String = "/etc/resolv.conf") throws -> ResolvConf {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ResolvConfError(path: path, reason: "cannot be read: \(error.localizedDescription)")
        }
        return parse(text)
    }
}

public struct ResolvConfError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path) \(reason)" }
}
