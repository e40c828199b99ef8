#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOCore
import Sockets

/// What a running Burrow client tells `burrow doctor` about itself: written every few seconds by the client,
/// read by the doctor. JSON, so it is also readable by people and scripts.
public struct RuntimeReport: Sendable, Equatable, Codable {
    /// Bumped when a field changes meaning; readers reject versions they do not know.
    public static let currentFormat = 1

    public var format: Int
    public var pid: Int32
    /// When the client started, and when this report was written (wall clock).
    public var started: Date
    public var updated: Date
    public var policy: ReportedPolicy
    public var tunnel: ReportedTunnel
    /// The address a peer (`yourip`) or tracker (`external ip`) last said it sees us at.
    public var lastExternalAddress: ReportedExternalAddress?
    /// The leak alarm's message once it fired (traffic is halted from then on).
    public var leakAlarm: String?
    public var killSwitch: ReportedKillSwitch

    public init(
        pid: Int32, started: Date, updated: Date, policy: ReportedPolicy, tunnel: ReportedTunnel,
        lastExternalAddress: ReportedExternalAddress? = nil, leakAlarm: String? = nil,
        killSwitch: ReportedKillSwitch = ReportedKillSwitch(count: 0)
    ) {
        self.format = Self.currentFormat
        self.pid = pid
        self.started = started
        self.updated = updated
        self.policy = policy
        self.tunnel = tunnel
        self.lastExternalAddress = lastExternalAddress
        self.leakAlarm = leakAlarm
        self.killSwitch = killSwitch
    }

    /// Builds a report straight from the client's live objects (the tunnel guard's availability and
    /// last kill), stamped with this process's id and the current time.
    public init(
        started: Date, policy: NetworkPolicy, availability: TunnelAvailability,
        lastExternalAddress: ReportedExternalAddress?, leakAlarm: String?, killCount: Int, lastKill: KillRecord?
    ) {
        self.init(
            pid: getpid(), started: started, updated: Date(), policy: ReportedPolicy(policy),
            tunnel: ReportedTunnel(availability), lastExternalAddress: lastExternalAddress, leakAlarm: leakAlarm,
            killSwitch: ReportedKillSwitch(count: killCount, last: lastKill))
    }

    // MARK: - Files

    /// Where the client writes and the doctor reads: `/run/burrow/status.json` as root, else
    /// `$XDG_RUNTIME_DIR/burrow/status.json`, else `/tmp/burrow-<uid>/status.json`.
    public static func defaultPath(
        userID: uid_t = geteuid(), environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String {
        if userID == 0 { return "/run/burrow/status.json" }
        if let runtime = environment["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") {
            return (runtime.hasSuffix("/") ? String(runtime.dropLast()) : runtime) + "/burrow/status.json"
        }
        return "/tmp/burrow-\(userID)/status.json"
    }

    /// Writes atomically (temporary file, then rename): a reader sees the old report or the new one, never
    /// half of one. Creates the directory (0700 outside /run) and refuses one owned by another user, since
    /// under /tmp anyone could have made it first.
    public func write(to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        do {
            try Self.prepareDirectory(directory)
            try Self.encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch let error as RuntimeReportError {
            throw error
        } catch {
            throw RuntimeReportError(path: path, reason: "cannot be written: \(error.localizedDescription)")
        }
    }

    /// Reads a report. Throws `RuntimeReportError` with `isMissing` when there is no file.
    public static func read(from path: String) throws -> RuntimeReport {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let missing = !FileManager.default.fileExists(atPath: path)
            throw RuntimeReportError(
                path: path, reason: missing ? "does not exist" : "cannot be read: \(error.localizedDescription)",
                isMissing: missing)
        }
        let report: RuntimeReport
        do {
            report = try decoder.decode(RuntimeReport.self, from: data)
        } catch {
            throw RuntimeReportError(path: path, reason: "is not a Burrow runtime report: \(Self.describe(error))")
        }
        guard report.format == currentFormat else {
            throw RuntimeReportError(
                path: path, reason: "has format \(report.format); this burrow reads format \(currentFormat)")
        }
        return report
    }

    /// Deletes the report at `path` if this process wrote it (at shutdown, so the doctor says "not running";
    /// another burrow's report is left alone). Returns whether a file was removed.
    @discardableResult
    public static func remove(at path: String, writtenBy pid: Int32 = getpid()) -> Bool {
        guard let report = try? read(from: path), report.pid == pid else { return false }
        return (try? FileManager.default.removeItem(atPath: path)) != nil
    }

    // Dates are ISO 8601 in UTC with whole seconds ("2023-11-14T22:13:20Z", what `.iso8601` writes), done
    // with gmtime_r/timegm: Foundation's `.iso8601` strategy goes through Calendar and TimeZone.current, which
    // open ICU's time-zone data, about 1.6 MiB of resident memory in a client that writes this report.
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(iso8601(date))
        }
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = date(iso8601: text) else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "expected an ISO 8601 UTC date such as 2023-11-14T22:13:20Z, got \(text)")
            }
            return date
        }
        return decoder
    }()

    /// `date` as "YYYY-MM-DDTHH:MM:SSZ" (UTC, fraction of a second dropped).
    static func iso8601(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var fields = tm()
        gmtime_r(&seconds, &fields)
        func digits(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(digits(fields.tm_year + 1900, 4))-\(digits(fields.tm_mon + 1, 2))-\(digits(fields.tm_mday, 2))"
            + "T\(digits(fields.tm_hour, 2)):\(digits(fields.tm_min, 2)):\(digits(fields.tm_sec, 2))Z"
    }

    /// Parses "YYYY-MM-DDTHH:MM:SSZ"; nil for anything else.
    static func date(iso8601 text: String) -> Date? {
        let bytes = Array(text.utf8)
        let separators: [Int: UInt8] = [4: UInt8(ascii: "-"), 7: UInt8(ascii: "-"), 10: UInt8(ascii: "T"),
                                        13: UInt8(ascii: ":"), 16: UInt8(ascii: ":"), 19: UInt8(ascii: "Z")]
        guard bytes.count == 20 else { return nil }
        for (index, byte) in bytes.enumerated() {
            if let separator = separators[index] {
                guard byte == separator else { return nil }
            } else if !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                return nil
            }
        }
        func number(_ range: Range<Int>) -> Int32 {
            bytes[range].reduce(Int32(0)) { $0 * 10 + Int32($1 - UInt8(ascii: "0")) }
        }
        var fields = tm()
        fields.tm_year = number(0..<4) - 1900
        fields.tm_mon = number(5..<7) - 1
        fields.tm_mday = number(8..<10)
        fields.tm_hour = number(11..<13)
        fields.tm_min = number(14..<16)
        fields.tm_sec = number(17..<19)
        guard (0...11).contains(fields.tm_mon), (1...31).contains(fields.tm_mday), fields.tm_hour < 24,
              fields.tm_min < 60, fields.tm_sec < 61 else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&fields)))
    }

    static func prepareDirectory(_ directory: String) throws {
        var info = stat()
        if lstat(directory, &info) != 0 {
            let permissions = directory.hasPrefix("/run/") ? 0o755 : 0o700
            do {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true,
                    attributes: [.posixPermissions: permissions])
            } catch {
                throw RuntimeReportError(path: directory, reason: "cannot be created: \(error.localizedDescription)")
            }
            guard lstat(directory, &info) == 0 else {
                throw RuntimeReportError(path: directory, reason: "vanished right after being created")
            }
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            throw RuntimeReportError(path: directory, reason: "is not a directory (or is a symbolic link)")
        }
        guard info.st_uid == geteuid() else {
            throw RuntimeReportError(
                path: directory, reason: "belongs to uid \(info.st_uid), not to this user (uid \(geteuid()))")
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, _)?: return "missing field \"\(key.stringValue)\""
        case .typeMismatch(_, let context)?, .valueNotFound(_, let context)?:
            return "bad field \"\(context.codingPath.map(\.stringValue).joined(separator: "."))\""
        case .dataCorrupted(let context)?:
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "not valid JSON" : "bad field \"\(path)\": \(context.debugDescription)"
        default: return "\(error)"
        }
    }
}

/// The network policy, in a form that survives JSON.
public struct ReportedPolicy: Sendable, Equatable, Codable {
    /// Empty when unbound.
    public var interfaces: [String]
    public var unbound: Bool

    public init(_ policy: NetworkPolicy) {
        switch policy {
        case .unbound:
            interfaces = []
            unbound = true
        case .bound(let patterns):
            interfaces = patterns
            unbound = false
        }
    }

    public var networkPolicy: NetworkPolicy {
        unbound ? .unbound : .bound(interfacePatterns: interfaces)
    }
}

/// The tunnel as the client's guard last saw it.
public struct ReportedTunnel: Sendable, Equatable, Codable {
    public var available: Bool
    /// The usable tunnel interfaces and their addresses (empty when unavailable).
    public var interfaces: [ReportedInterface]
    /// Why the tunnel is unavailable; nil when available.
    public var unavailableReason: String?

    public init(available: Bool, interfaces: [ReportedInterface], unavailableReason: String? = nil) {
        self.available = available
        self.interfaces = interfaces
        self.unavailableReason = unavailableReason
    }

    public init(_ availability: TunnelAvailability) {
        switch availability {
        case .available(let usable, _):
            self.init(available: true, interfaces: usable.map {
                ReportedInterface(name: $0.name, addresses: $0.addresses.compactMap(\.ipAddress))
            })
        case .unavailable(let lost, let reason, _):
            self.init(available: false, interfaces: [], unavailableReason: "\(lost): \(reason)")
        }
    }
}

public struct ReportedInterface: Sendable, Equatable, Codable {
    public var name: String
    public var addresses: [String]

    public init(name: String, addresses: [String]) {
        self.name = name
        self.addresses = addresses
    }
}

public struct ReportedExternalAddress: Sendable, Equatable, Codable {
    /// The address as text ("198.51.100.7", "2001:db8::7").
    public var address: String
    /// Who said so ("tracker udp://tracker.example:6969", "peer 10.0.0.9:51413").
    public var reporter: String
    public var at: Date

    public init(address: String, reporter: String, at: Date) {
        self.address = address
        self.reporter = reporter
        self.at = at
    }
}

public struct ReportedKillSwitch: Sendable, Equatable, Codable {
    /// How many times the kill switch closed sockets since the client started.
    public var count: Int
    public var lastInterface: String?
    public var lastReason: String?
    /// Kernel event to last close issued, for the most recent firing.
    public var lastLatencyMicroseconds: Double?

    public init(count: Int, lastInterface: String? = nil, lastReason: String? = nil, lastLatencyMicroseconds: Double? = nil) {
        self.count = count
        self.lastInterface = lastInterface
        self.lastReason = lastReason
        self.lastLatencyMicroseconds = lastLatencyMicroseconds
    }

    public init(count: Int, last: KillRecord?) {
        self.init(count: count, lastInterface: last?.interface, lastReason: last?.reason,
                  lastLatencyMicroseconds: last?.latencyMicroseconds)
    }
}

/// A runtime report could not be written or read; names the file and what was wrong.
public struct RuntimeReportError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String
    /// The file simply does not exist (the client is not running).
    public let isMissing: Bool

    public init(path: String, reason: String, isMissing: Bool = false) {
        self.path = path
        self.reason = reason
        self.isMissing = isMissing
    }

    public var description: String { "runtime report \(path) \(reason)" }
}
