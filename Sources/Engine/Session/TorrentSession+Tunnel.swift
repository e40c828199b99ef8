#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore
import TorrentModel

/// Why a torrent is paused: the tunnel it may use is gone.
struct TunnelWait: CustomStringConvertible {
    let interface: String
    let reason: String
    let since: Date

    var description: String {
        "\(interface) down since \(Self.localClock(since)) (\(reason))"
    }

    /// "HH:mm:ss" in local time, with localtime_r: a DateFormatter would load ICU's locale and time-zone
    /// data (over a megabyte of resident memory) for one status line.
    static func localClock(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var fields = tm()
        localtime_r(&seconds, &fields)
        func twoDigits(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(twoDigits(fields.tm_hour)):\(twoDigits(fields.tm_min)):\(twoDigits(fields.tm_sec))"
    }
}

/// Reactions to the tunnel guard: pause when the tunnel goes, forget what was learned through it,
/// rotate identity when the swarm would see a new address, and resume as soon as a tunnel is back.
extension TorrentSession {
    /// The guard already aborted every socket on `interface`; this drops the state learned through it.
    /// With `allDown`, nothing is usable: the torrent waits.
    func tunnelLost(interface: String, reason: String, allDown: Bool) {
        eventLoop.preconditionInEventLoop()
        candidates.forgetLearned(via: allDown ? nil : interface)
        connecting.removeAll()
        guard allDown else {
            connectToCandidates()
            return
        }
        if tunnelWait == nil { tunnelWait = TunnelWait(interface: interface, reason: reason, since: Date()) }
        resumeStartedAt = nil
        // A fresh peer id for the next tunnel: the swarm cannot link the sessions before and after the
        // outage, and peers still holding our silently dead connections do not refuse us as a duplicate.
        peerID = PeerID.random()
        announceTask?.cancel()
        announceTask = nil
        announceGeneration += 1
        // No closing here: the kill switch already retired every socket on the tunnel (closing one
        // ourselves could make the kernel send an RST that is no longer pinned to the tunnel).
        logger.notice("tunnel down: \(interface) (\(reason)); waiting for tunnel")
    }

    /// A bound interface is usable. `rotateIdentity` when the address the swarm sees us at changed.
    func tunnelAvailable(rotateIdentity: Bool) {
        eventLoop.preconditionInEventLoop()
        if rotateIdentity {
            // The old peer id would let the swarm link the old and the new address.
            peerID = PeerID.random()
            candidates.forgetLearned(via: nil)
            for peer in peers.values { peer.close() }
            nextAnnounceEvent = .started
            logger.notice("external address changed: new peer id, announcing afresh")
        }
        guard tunnelWait != nil || rotateIdentity else { return }
        let wasWaiting = tunnelWait != nil
        tunnelWait = nil
        if wasWaiting {
            resumeStartedAt = .now()
            logger.notice("tunnel up: resuming")
            // The tracker's peers may have been forgotten with the old path: ask again now.
            nextAnnounceEvent = nextAnnounceEvent == .none ? .started : nextAnnounceEvent
        }
        announcing = false
        scheduleAnnounce(after: .zero)
        connectToCandidates()
    }

    /// A peer or tracker told us the address it sees us at; the client checks it against clear interfaces.
    func externalAddressReported(_ ip: [UInt8], by reporter: String) {
        onExternalAddress?(ip, reporter)
    }
}
