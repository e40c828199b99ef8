import Bencode
import Foundation
import Testing
import TorrentModel

/// The real `burrow` binary fed hostile names and a hostile tracker: nothing they say may reach the
/// terminal raw, and no line they write can pass for one of Burrow's own.
@Suite(.serialized) struct UntrustedTextOutputTests {
    /// Erases the line, returns to its start and prints a status line of its own.
    static let forgedName = "x\u{1B}[2K\rburrow: download complete\n"
    static let forgedNameShown = #"x\e[2K\rburrow: download complete\n"#
    static let hostileMessage = "bad\u{1B}]0;owned\u{7}\r\nburrow: complete\u{9B}31m\u{202E}gpj.exe"
    static let hostileMessageShown = #"bad\e]0;owned\u{7}\r\nburrow: complete\u{9b}31m\u{202e}gpj.exe"#

    static func hostileTorrent(tracker: String, in directory: ScratchDirectory) throws -> String {
        let bytes = try TorrentCreator.create(
            singleFile: forgedName, data: [UInt8](repeating: 9, count: 40_000), pieceLength: 16 * 1024,
            details: .init(announce: [[tracker]], comment: "comment\u{1B}[31m\u{202E}", createdBy: "maker\u{9B}\r"))
        let path = directory.path + "/hostile.torrent"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func expectNoRawControls(_ burrow: BurrowProcess, sourceLocation: SourceLocation = #_sourceLocation) {
        let stdout = rawControlCharacters(in: burrow.stdout), stderr = rawControlCharacters(in: burrow.stderr)
        #expect(stdout.isEmpty, "raw control characters on stdout: \(stdout)", sourceLocation: sourceLocation)
        #expect(stderr.isEmpty, "raw control characters on stderr: \(stderr)", sourceLocation: sourceLocation)
    }

    @Test func infoShowsAHostileTorrentEscaped() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let torrent = try Self.hostileTorrent(tracker: "http://127.0.0.1:1/announce", in: scratch)
        let burrow = try await BurrowProcess.run(["info", torrent])
        let stdout = String(decoding: burrow.stdout, as: UTF8.self)
        Self.expectNoRawControls(burrow)
        #expect(stdout.contains("name:        \(Self.forgedNameShown)\n"), "\(stdout)")
        #expect(stdout.contains("  [0] \(Self.forgedNameShown)  "), "\(stdout)")
        #expect(stdout.contains(#"comment:     comment\e[31m\u{202e}"#), "\(stdout)")
        #expect(stdout.contains(#"created by:  maker\u{9b}\r"#), "\(stdout)")
        // Burrow's own lines are intact: one per field, the file list indented below.
        #expect(stdout.split(separator: "\n").count == 10, "\(stdout)")
    }

    @Test func infoShowsAHostileMagnetEscapedAndWarnsAboutUnusablePeers() async throws {
        let hash = String(repeating: "ab", count: 20)
        let magnet = "magnet:?xt=urn:btih:\(hash)&dn=x%1B%5B2K%0Dburrow%3A%20download%20complete%0A"
            + "&tr=http%3A%2F%2Ftracker.example%2Fannounce%1B%5B8m&x.pe=10.0.0.1%3A6881"
            + "&x.pe=evil%1B%5B2K.example%3A6881&x.pe=10.0.0.2&x.pe=10.0.0.3%3A0"
        let burrow = try await BurrowProcess.run(["info", magnet])
        let stdout = String(decoding: burrow.stdout, as: UTF8.self), stderr = String(decoding: burrow.stderr, as: UTF8.self)
        Self.expectNoRawControls(burrow)
        #expect(stdout.contains("name:        \(Self.forgedNameShown)\n"), "\(stdout)")
        #expect(stdout.contains(#"  http://tracker.example/announce\e[8m"#), "\(stdout)")
        #expect(stdout.contains("peers:       10.0.0.1:6881\n"), "\(stdout)")
        #expect(stderr == """
            warning: ignoring magnet peer x.pe="evil\\e[2K.example:6881": expected ip:port or [ipv6]:port
            warning: ignoring magnet peer x.pe="10.0.0.2": expected ip:port or [ipv6]:port
            warning: ignoring magnet peer x.pe="10.0.0.3:0": expected ip:port or [ipv6]:port

            """, "\(stderr)")
    }

    /// Downloads the hostile torrent from a tracker answering `body` until the progress line quotes the
    /// tracker and the log has said `logged`; then interrupts Burrow and returns it.
    func download(trackerBody: [UInt8], logged: String, onTerminal: Bool = false) async throws -> BurrowProcess {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let tracker = try await FakeTracker(body: trackerBody)
        let torrent = try Self.hostileTorrent(tracker: tracker.url, in: scratch)
        let burrow = try BurrowProcess([
            "download", torrent, "--output", scratch.path + "/out", "--state-dir", scratch.path + "/state", "--allow-unbound",
            "--port", "\(Int.random(in: 30000...40000))"], stdoutIsTerminal: onTerminal)
        let shown = try await burrow.wait(upTo: .seconds(30)) { stdout, stderr in
            stdout.contains("tracker: ") && stderr.contains(logged)
        }
        try await burrow.stop()
        try await tracker.close()
        let output = "stdout: \(String(decoding: burrow.stdout, as: UTF8.self))\nstderr: \(String(decoding: burrow.stderr, as: UTF8.self))"
        #expect(shown, "no progress line quoting the tracker, or no log line with \(logged.debugDescription)\n\(output)")
        #expect(tracker.announces > 0)
        return burrow
    }

    @Test func downloadShowsAHostileTrackerFailureEscaped() async throws {
        let body = Bencode.encode(["failure reason": .string(Self.hostileMessage)])
        let burrow = try await download(trackerBody: body, logged: "announce failed")
        Self.expectNoRawControls(burrow)
        let stdout = String(decoding: burrow.stdout, as: UTF8.self), stderr = String(decoding: burrow.stderr, as: UTF8.self)
        #expect(stdout.contains("\(Self.forgedNameShown)  "), "\(stdout)")
        #expect(stdout.contains("tracker refused the announce: \(Self.hostileMessageShown)"), "\(stdout)")
        #expect(stderr.contains("tracker refused the announce: \(Self.hostileMessageShown)"), "\(stderr)")
        // Every line is Burrow's own: a progress line naming the torrent, or a log line.
        for line in stdout.split(separator: "\n") {
            #expect(line.hasPrefix(Self.forgedNameShown) || line.hasPrefix("stopped by SIGINT"), "\(line)")
        }
    }

    @Test func downloadShowsAHostileTrackerWarningEscaped() async throws {
        let body = Bencode.encode([
            "interval": 1800, "peers": .bytes([]), "warning message": .string(Self.hostileMessage),
        ])
        let burrow = try await download(trackerBody: body, logged: "tracker warning")
        Self.expectNoRawControls(burrow)
        let stdout = String(decoding: burrow.stdout, as: UTF8.self), stderr = String(decoding: burrow.stderr, as: UTF8.self)
        #expect(stdout.contains("tracker: \(Self.hostileMessageShown)"), "\(stdout)")
        #expect(stderr.contains("warning=\(Self.hostileMessageShown)"), "\(stderr)")
    }

    @Test func theLiveProgressLineOnATerminalCarriesOnlyBurrowsOwnControlSequences() async throws {
        let body = Bencode.encode(["failure reason": .string(Self.hostileMessage)])
        let burrow = try await download(trackerBody: body, logged: "announce failed", onTerminal: true)
        let redraw = "\r\u{1B}[2K"
        let stdout = String(decoding: burrow.stdout, as: UTF8.self)
        // Each redraw starts with Burrow's own "return, erase line"; the final message follows a newline.
        let frames = stdout.components(separatedBy: redraw).dropFirst()
        #expect(stdout.hasPrefix(redraw), "\(stdout.debugDescription)")
        #expect(frames.count >= 1)
        for frame in frames {
            #expect(frame.hasPrefix("\(Self.forgedNameShown)  [------------------------]  0.0%"), "\(frame.debugDescription)")
        }
        #expect(frames.contains { $0.contains("tracker refused the announce: \(Self.hostileMessageShown)") }, "\(stdout.debugDescription)")
        let withoutRedraws = Array(stdout.replacingOccurrences(of: redraw, with: "").utf8)
        #expect(rawControlCharacters(in: withoutRedraws).isEmpty, "\(rawControlCharacters(in: withoutRedraws))")
        #expect(stdout.hasSuffix("\nstopped by SIGINT; progress is saved\n"), "\(stdout.debugDescription)")
        #expect(rawControlCharacters(in: burrow.stderr).isEmpty)
    }
}
