import ArgumentParser
import Config
import Diagnostics
import Dispatch
import Engine
import Firewall
import Foundation
import Logging
import NIOCore
import Sockets
import Storage
import TorrentModel

struct Download: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download a torrent or magnet, verifying every piece; optionally keep seeding.")

    @Argument(help: "A .torrent file or a magnet URI.")
    var source: String

    @Option(name: .shortAndLong, help: "Folder to download into (the torrent's files go below it).")
    var output: String = "."

    @Option(help: ArgumentHelp("Folder for Burrow's own state: resume data goes to DIR/resume (default \(StateDirectory.defaultPath() ?? "$HOME/.local/state/burrow")). Must not lie inside a torrent's files.",
                               valueName: "DIR"))
    var stateDir: String?

    @OptionGroup var network: NetworkOptions

    @Flag(help: "Keep seeding after the download completes (until interrupted or the ratio is reached).")
    var seed = false

    @Option(help: "Stop seeding at this upload/size ratio.")
    var seedRatio: Double?

    @Flag(help: "Verify all existing data instead of trusting resume data.")
    var recheck = false

    @Option(help: "Only these files (indices from `burrow info`), comma-separated.")
    var only: String?

    @Option(help: "Download these files first (indices), comma-separated.")
    var first: String?

    @Option(help: "Download rate limit in KiB/s.")
    var maxDownload: Int?

    @Option(help: "Upload rate limit in KiB/s.")
    var maxUpload: Int?

    @Option(help: "Extra peer to contact (ip:port); repeatable.")
    var peer: [String] = []

    @Option(help: "Maximum connected peers.")
    var maxPeers: Int = 80

    @Option(help: "Log level: critical, error, warning, notice, info, debug, trace.")
    var logLevel: Logger.Level = .notice

    func validate() throws {
        if let seedRatio, seedRatio <= 0 { throw ValidationError("--seed-ratio must be positive") }
        if let maxDownload, maxDownload <= 0 { throw ValidationError("--max-download must be positive") }
        if let maxUpload, maxUpload <= 0 { throw ValidationError("--max-upload must be positive") }
        // Refuse early (before any thread or socket exists) when no network choice was made anywhere.
        _ = try resolveSettings()
        for text in peer where PeerAddress(parsing: text) == nil {
            throw ValidationError("--peer \(text): expected ip:port or [ipv6]:port")
        }
    }

    /// File, environment and flags merged; `--state-dir` is this command's own flag layer for
    /// `storage.state_dir` (the network flags come from `NetworkOptions`).
    func resolveSettings(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ResolvedNetwork {
        var flags = Settings()
        do {
            if let stateDir { try flags.set(.storageStateDir, text: stateDir, from: .flag("--state-dir")) }
        } catch {
            throw ValidationError("\(error)")
        }
        return try network.resolve(commandFlags: flags, environment: environment)
    }

    func run() async throws {
        let isTerminal = isatty(STDOUT_FILENO) == 1
        let level = logLevel
        LoggingSystem.bootstrap { label in EscapingLogHandler.standardError(label: label, level: level) }
        let logger = Logger(label: "burrow")

        let loaded: TorrentSource
        do { loaded = try TorrentSourceLoader.load(source) { logger.warning("\($0)") } } catch {
            throw ValidationError("\(error)")
        }
        let settings: ResolvedNetwork
        do { settings = try resolveSettings() } catch { throw ValidationError("\(error)") }
        let policy = settings.policy
        for name in policy.physicalLookingPatterns {
            logger.warning("--bind \(name) looks like a physical adapter, not a VPN tunnel: traffic through it is not hidden")
        }
        if policy == .unbound {
            logger.warning("running UNBOUND (--allow-unbound): traffic may use any interface and reveal your address")
        }

        var priorities: [Int: FilePriority] = [:]
        if case .metainfo(let metainfo) = loaded {
            let fileCount = metainfo.info.files.count
            if let only {
                let chosen = try parseIndices(only, option: "--only", fileCount: fileCount)
                for index in 0..<fileCount where !chosen.contains(index) { priorities[index] = .skip }
            }
            if let first {
                for index in try parseIndices(first, option: "--first", fileCount: fileCount) { priorities[index] = .high }
            }
        } else if only != nil || first != nil {
            throw ValidationError("--only/--first need a .torrent (file indices are unknown for a magnet until its metadata arrives)")
        }
        var extraPeers = peer.compactMap(PeerAddress.init(parsing:))
        if case .magnet(let magnet) = loaded { extraPeers += magnet.peers.compactMap(PeerAddress.init(parsing:)) }

        guard let state = settings.settings.storage.stateDir ?? StateDirectory.defaultPath() else {
            throw ValidationError("""
                no state directory: HOME is not set; pass --state-dir DIR, set state_dir under [storage] in the \
                configuration file, or \(SettingKey.storageStateDir.environmentVariable)=DIR
                """)
        }
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let options = SessionOptions(
            outputDirectory: output, stateDirectory: state, seed: seed, seedRatioLimit: seedRatio, forceRecheck: recheck,
            filePriorities: priorities, maxPeers: maxPeers,
            downloadRateLimit: maxDownload.map { $0 * 1024 }, uploadRateLimit: maxUpload.map { $0 * 1024 },
            extraPeers: extraPeers)

        // SO_MARK needs CAP_NET_ADMIN; as root every socket carries the mark the firewall layer matches.
        let mark: UInt32? = geteuid() == 0 ? SocketMark.burrow : nil
        var configuration = ClientConfiguration(networkPolicy: policy, listenPort: settings.port,
                                                dnsServers: settings.dnsServers, socketMark: mark)
        configuration.runtimeReportPath = RuntimeReport.defaultPath()
        // Second wall: with CAP_NET_ADMIN, the nftables table that drops Burrow's packets anywhere but the
        // tunnel. Left in place at exit, so that it still protects after a crash.
        if case .bound = policy {
            _ = FirewallController.applyIfPermitted(policy: policy, match: settings.firewallMatch ?? .burrowMark, logger: logger)
        }
        let client = BurrowClient(configuration: configuration, logger: logger)
        let reporter = ProgressReporter(isTerminal: isTerminal, unbound: policy == .unbound)
        let outcome: Outcome
        do {
            try await client.start()
            let handle = try await client.add(loaded, options: options)
            outcome = await supervise(handle, reporter: reporter)
        } catch {
            await client.shutdown()
            throw CLIError("\(error)")
        }
        await client.shutdown()
        switch outcome {
        case .completed:
            reporter.finish("complete: every selected file is verified")
        case .interrupted(let signal):
            reporter.finish("stopped by \(signal == SIGINT ? "SIGINT" : "SIGTERM"); progress is saved")
            if !seed { throw ExitCode(128 + signal) }
        case .failed(let message):
            reporter.finish("failed: \(message)")
            throw ExitCode.failure
        }
    }

    private func parseIndices(_ text: String, option: String, fileCount: Int) throws -> Set<Int> {
        var result = Set<Int>()
        for part in text.split(separator: ",") {
            guard let index = Int(part.trimmingCharacters(in: .whitespaces)), (0..<fileCount).contains(index) else {
                throw ValidationError("\(option): \"\(part)\" is not a file index 0-\(fileCount - 1)")
            }
            result.insert(index)
        }
        return result
    }

    enum Outcome: Sendable {
        case completed
        case interrupted(Int32)
        case failed(String)
    }

    /// Prints progress every second until the torrent completes (without --seed), fails, or a signal arrives.
    private func supervise(_ handle: TorrentHandle, reporter: ProgressReporter) async -> Outcome {
        let watcher = SignalWatcher(signals: [SIGINT, SIGTERM])
        defer { withExtendedLifetime(watcher) {} }
        let signals = watcher.signals
        let keepSeeding = seed
        return await withTaskGroup(of: Outcome?.self) { group in
            group.addTask {
                do {
                    try await handle.waitUntilComplete()
                    if keepSeeding {
                        // Seed until interrupted, or until the ratio limit ends seeding.
                        while true {
                            try await Task.sleep(for: .seconds(1))
                            let status = try await handle.status()
                            if status.state == .complete { return .completed }
                        }
                    }
                    return .completed
                } catch is CancellationError {
                    return nil
                } catch {
                    let status = try? await handle.status()
                    if case .failed(let message)? = status?.state { return .failed(message) }
                    return .failed("\(error)")
                }
            }
            group.addTask {
                for await signal in signals { return .interrupted(signal) }
                return nil
            }
            group.addTask {
                while !Task.isCancelled {
                    if let status = try? await handle.status() { reporter.show(status) }
                    try? await Task.sleep(for: .seconds(1))
                }
                return nil
            }
            var outcome: Outcome = .failed("no outcome")
            for await result in group {
                if let result {
                    outcome = result
                    break
                }
            }
            group.cancelAll()
            if let status = try? await handle.status() { reporter.show(status) }
            // The completion child waits on the session, which cancellation cannot interrupt: stopping the
            // session ends that wait (and saves progress) so the group can finish.
            if case .interrupted = outcome { try? await handle.stop() }
            return outcome
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
