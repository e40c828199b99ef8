import Engine
import Foundation
import SafeText

/// A live progress bar on a terminal; one plain line per second otherwise (logs, CI, pipes).
final class ProgressReporter: Sendable {
    private let isTerminal: Bool
    private let unbound: Bool

    init(isTerminal: Bool, unbound: Bool) {
        self.isTerminal = isTerminal
        self.unbound = unbound
    }

    func show(_ status: TorrentStatus) {
        let line = render(status)
        // Unbuffered writes: a pipe reader (a log, a test harness) sees each line as it happens.
        write(isTerminal ? "\r\u{1B}[2K" + line : line + "\n")
    }

    /// `message` is one line; it may quote untrusted text (a failure naming a tracker), so it is escaped.
    func finish(_ message: String) {
        write((isTerminal ? "\n" : "") + message.escapingControlCharacters + "\n")
    }

    private func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// One line, with every control character escaped: it quotes the torrent's name, tracker messages and
    /// failures, and only `show` may add the control sequences that redraw the line.
    func render(_ s: TorrentStatus) -> String {
        let percent = String(format1: s.fractionDone * 100) + "%"
        var parts: [String] = []
        if let waiting = s.waitingForTunnel { parts.append("waiting for tunnel: \(waiting)") }
        switch s.state {
        case .fetchingMetadata: parts.append("fetching metadata")
        case .checking(let done, let total): parts.append("checking \(done)/\(total)")
        case .downloading: parts.append(percent)
        case .seeding: parts.append("seeding")
        case .complete: parts.append("complete")
        case .stopped: parts.append("stopped")
        case .failed(let message): parts.append("FAILED: \(message)")
        }
        if isTerminal, s.state == .downloading {
            let width = 24
            let filled = min(width, Int(s.fractionDone * Double(width)))
            parts.insert("[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]", at: 0)
        }
        parts.append("\(ByteFormat.size(s.verifiedBytes))/\(ByteFormat.size(s.wantedBytes))")
        parts.append("down \(ByteFormat.rate(s.downloadRate))")
        parts.append("up \(ByteFormat.rate(s.uploadRate))")
        parts.append("peers \(s.connectedPeers) (\(s.connectedSeeds) seeds, \(s.knownPeers) known)")
        if s.state == .downloading { parts.append("eta \(ByteFormat.duration(s.eta))") }
        if s.hashFailures > 0 { parts.append("hash failures \(s.hashFailures)") }
        if s.bannedPeers > 0 || s.peersCutOff > 0 { parts.append("cut off \(s.peersCutOff) (\(s.bannedPeers) banned)") }
        if let message = s.trackerMessage { parts.append("tracker: \(message)") }
        if unbound { parts.append("UNBOUND: not protected by a tunnel") }
        return ("\(s.name)  " + parts.joined(separator: "  ")).escapingControlCharacters
    }
}
