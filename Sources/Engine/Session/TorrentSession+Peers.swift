import NIOCore
import PeerWire
import Sockets
import TorrentModel

/// Peer lifecycle: dialling, handshakes, the BEP 3 / BEP 6 message flow, disconnection and bans.
extension TorrentSession {
    static let maxConnectsInFlight = 16
    static let banAfterHashFailures = 3
    static let hashFailureBan = TimeAmount.hours(2)
    /// How long a TCP connect may take before the address counts as unreachable.
    static let connectTimeout = TimeAmount.seconds(8)

    func connectToCandidates() {
        guard !isStopping, !isFinishedForGood, tunnelWait == nil else { return }
        let slots = min(options.maxPeers - peers.count - connecting.count, Self.maxConnectsInFlight - connecting.count,
                        connectionBudget.freeOutgoingSlots)
        let busy = Set(peers.values.map(\.address)).union(connecting)
        let now = NIODeadline.now()
        for address in candidates.takeReady(limit: slots, now: now, busy: busy) {
            guard let slot = connectionBudget.reserve(.outgoing) else {
                candidates.notDialled(address, now: now)
                continue
            }
            logger.trace("dialling \(address)")
            dial(address, slot: slot)
        }
    }

    /// True when we will never download again and are not seeding: no reason to dial anyone.
    var isFinishedForGood: Bool {
        if case .complete = state { return true }
        if case .failed = state { return true }
        return false
    }

    /// Connects to `address` holding `slot`; the slot is released when the socket closes (or never opens).
    func dial(_ address: PeerAddress, slot: ConnectionSlot) {
        guard let socketAddress = address.socketAddress else {
            slot.release()
            return
        }
        connecting.insert(address)
        let session = self
        let handshakeTimeout = connectionBudget.handshakeTimeout
        sockets.connectTCP(to: socketAddress, on: eventLoop, timeout: Self.connectTimeout) { channel in
            PeerPipeline.install(on: channel, route: .outgoing(session, address), slot: slot, handshakeTimeout: handshakeTimeout)
        }.whenComplete { result in
            switch result {
            case .success(let channel):
                self.logger.trace("connected to \(address)")
                // The connection stays in `connecting` until the handshake arrives or the channel closes
                // (the peer hung up, or stayed silent past the handshake timeout).
                channel.closeFuture.whenComplete { _ in
                    if self.connecting.remove(address) != nil {
                        self.candidates.failed(address, .closedBeforeHandshake, now: .now(), resuming: self.resumeStartedAt != nil)
                        self.connectToCandidates()
                    }
                }
            case .failure(let error):
                self.logger.trace("connect to \(address) failed: \(error)")
                slot.release()
                self.connecting.remove(address)
                self.candidates.failed(address, .unreachable, now: .now(), resuming: self.resumeStartedAt != nil)
                // The slot is free for a fresh candidate (not from here: a connect can fail synchronously).
                self.eventLoop.execute { self.connectToCandidates() }
            }
        }
    }

    /// Whether `address` is refused right now (a timed ban). On the event loop.
    func isBanned(_ address: PeerAddress) -> Bool {
        candidates.isBanned(address.ip, now: .now())
    }

    /// A handshake arrived on a channel. Returns the new connection, or nil to refuse it.
    func peerHandshaked(_ handshake: Handshake, channel: any Channel, address: PeerAddress,
                        direction: PeerConnection.Direction) -> PeerConnection? {
        eventLoop.preconditionInEventLoop()
        if direction == .outgoing { connecting.remove(address) }
        guard !isStopping, !isFinishedForGood else { return nil }
        guard handshake.infoHash == infoHash else { return nil }
        guard handshake.peerID != peerID else {
            logger.debug("dropping connection to ourselves at \(address)")
            return nil
        }
        if let ban = candidates.bans.ban(on: address.ip, now: .now()) {
            logger.debug("refusing banned peer \(address) (\(direction)): \(ban.reason)")
            return nil
        }
        if peers.values.contains(where: { $0.handshake?.peerID == handshake.peerID }) { return nil }
        if direction == .incoming && peers.count >= options.maxPeers { return nil }
        logger.debug("peer \(address) (\(direction)) joined: \(handshake.peerID)")
        let peer = PeerConnection(key: nextPeerKey, channel: channel, address: address, direction: direction, now: .now())
        nextPeerKey += 1
        peer.handshake = handshake
        peers[peer.key] = peer
        if readingPaused { peer.setReading(false) }
        // An incoming peer's source port is ephemeral: it becomes a candidate only once its extension
        // handshake names the port it listens on (see `receivedExtensionHandshake`).

        if peer.supportsExtensions { sendExtensionHandshake(to: peer) }
        sendOurPieces(to: peer)
        if let info { peer.has = Bitfield(count: info.pieceCount) }
        return peer
    }

    /// Our bitfield (or have-all / have-none with the Fast extension).
    func sendOurPieces(to peer: PeerConnection) {
        guard let have else {
            if peer.supportsFast { peer.send(.haveNone) }
            return
        }
        if peer.supportsFast && have.isComplete {
            peer.send(.haveAll)
        } else if peer.supportsFast && have.isEmpty {
            peer.send(.haveNone)
        } else if !have.isEmpty {
            peer.send(.bitfield(have.bytes))
        }
    }

    func peerDisconnected(_ peer: PeerConnection) {
        guard peers.removeValue(forKey: peer.key) != nil else { return }
        logger.debug("peer \(peer.address) left")
        releaseRequests(of: peer)
        if info == nil { stopAskingForMetadata(peer) }
        if let has = peer.has, let picker { picker.peerLost(bitfield: has, wasSeed: peer.countedAsSeed) }
        choker.remove(peer.key)
        candidates.disconnected(peer.reachableAddress ?? peer.address, now: .now(), resuming: resumeStartedAt != nil)
        if !isStopping {
            connectToCandidates()
            // Its unchoke slot is free now.
            if !peer.amChoking { rechoke(now: .now()) }
        }
    }

    /// An error on the peer's channel: input that breaks the wire protocol is misbehaviour; a reset or
    /// other socket error is just the end of the connection.
    func peerFailed(_ peer: PeerConnection, error: any Error) {
        if error is PeerWireError {
            peerMisbehaved(peer, .brokenStream("\(error)"))
        } else {
            logger.debug("peer \(peer.address): \(error)")
        }
    }

    /// A broken stream (undecodable input, a second handshake): see `peerMisbehaved(_:_:)`.
    func peerMisbehaved(_ peer: PeerConnection, reason: String) {
        peerMisbehaved(peer, .brokenStream(reason))
    }

    /// Applies what `misbehaviour` costs: a strike against the address (banned at
    /// `Misbehaviour.strikesBeforeBan`) or a ban at once, and the connection closed unless it survives
    /// a strike. Logged at notice level, at most one line per kind every 30 s.
    func peerMisbehaved(_ peer: PeerConnection, _ misbehaviour: Misbehaviour) {
        guard !peer.cutOff, peers[peer.key] === peer else { return }
        let now = NIODeadline.now()
        var ban = misbehaviour.bansAtOnce
        if !ban {
            let strikes = candidates.recordViolation(by: peer.address.ip, now: now)
            ban = strikes >= Misbehaviour.strikesBeforeBan
            if !ban && !misbehaviour.closesConnection {
                logger.debug("peer \(peer.address): \(misbehaviour) (strike \(strikes) of \(Misbehaviour.strikesBeforeBan))")
                return
            }
        }
        peer.cutOff = true
        misbehaviourDisconnects += 1
        if ban {
            candidates.ban(ip: peer.address.ip, for: Misbehaviour.banDuration, reason: misbehaviour.description, now: now)
        }
        let minutes = Misbehaviour.banDuration.nanoseconds / 60_000_000_000
        misbehaviourLog.log(logger, .notice, key: misbehaviour.kind,
                            "cut off peer \(peer.address): \(misbehaviour)\(ban ? "; banned for \(minutes) min" : "")", now: now)
        peer.close()
    }

    /// `bytes` from `peer` that carried nothing new; past `PeerConduct`'s allowance it is cut off.
    func peerWasted(_ peer: PeerConnection, bytes: Int) {
        wastedBytes += Int64(bytes)
        if let misbehaviour = peer.conduct.wasted(bytes) { peerMisbehaved(peer, misbehaviour) }
    }

    func peerBecameWritable(_ peer: PeerConnection) { serveUploads(peer) }

    /// Gives the peer's outstanding requests back to the picker so others can take them. Their blocks may
    /// still arrive (they cross our choke or snub): remembered in `cancelled`, they are late, not junk.
    func releaseRequests(of peer: PeerConnection) {
        picker?.peerGone(peer: peer.key)
        for request in peer.outstanding { peer.rememberCancelled(request) }
        peer.outstanding.removeAll()
    }

    // MARK: - Messages

    func handle(_ message: PeerMessage, from peer: PeerConnection) {
        let now = NIODeadline.now()
        peer.lastMessageAt = now
        switch message {
        case .keepAlive:
            break
        case .choke:
            peer.peerChoking = true
            // Without the Fast extension a choke implicitly rejects everything in flight.
            if !peer.supportsFast { releaseRequests(of: peer) }
        case .unchoke:
            peer.peerChoking = false
            fillRequests(peer)
        case .interested:
            peer.peerInterested = true
            if peer.amChoking { unchokeIfSlotFree(peer) }
        case .notInterested:
            peer.peerInterested = false
        case .have(let index):
            receivedHave(Int(index), from: peer)
        case .bitfield(let bytes):
            receivedBitfield(bytes, from: peer)
        case .haveAll:
            receivedHaveAll(from: peer)
        case .haveNone:
            break
        case .request(let request):
            receivedRequest(request, from: peer)
        case .cancel(let request):
            peer.uploadQueue.removeAll { $0 == request }
        case .piece(let index, let begin, let block):
            receivedBlock(piece: Int(index), begin: Int(begin), block: block, from: peer, now: now)
        case .rejectRequest(let request):
            guard peer.supportsFast else {
                peerMisbehaved(peer, .violation("reject without the Fast extension"))
                return
            }
            if peer.cancelled.remove(request) != nil { return }  // The answer to our cancel.
            // A reject for something not in flight is stale (it crossed a choke): nothing to undo.
            guard peer.outstanding.remove(request) != nil else { return }
            picker?.requestRejected(peer: peer.key, block: PickedBlock(request))
            fillRequests(peer)
        case .allowedFast(let index):
            guard let info, Int(index) < info.pieceCount, peer.allowedFast.count < PeerConnection.maxAllowedFast else {
                peerWasted(peer, bytes: 5)
                return
            }
            peer.allowedFast.insert(Int(index))
            fillRequests(peer)
        case .suggestPiece:
            break
        case .port:
            break  // DHT port: the DHT is a later milestone.
        case .extended(let id, let payload):
            handleExtended(id: id, payload: payload, from: peer)
        }
    }

    func receivedHave(_ index: Int, from peer: PeerConnection) {
        guard let info, let picker else {
            let limit = EarlyAvailability.bound(forMetadataSize: peer.metadataSize)
            if !peer.early.have(index, limit: limit) {
                peerMisbehaved(peer, .violation("have for piece \(index), beyond the \(limit) pieces its metadata size allows"))
            }
            return
        }
        guard index < info.pieceCount else {
            peerMisbehaved(peer, .violation("have for piece \(index) of \(info.pieceCount)"))
            return
        }
        if peer.has == nil { peer.has = Bitfield(count: info.pieceCount) }
        guard peer.has![index] == false else {
            peerWasted(peer, bytes: 9)  // it told us already
            return
        }
        peer.has![index] = true
        if !peer.countedAsSeed { picker.peerHas(piece: index) }
        if peer.isSeed && have?.isComplete == true { peer.close(); return }
        updateInterest(peer)
        fillRequests(peer)
    }

    func receivedBitfield(_ bytes: [UInt8], from peer: PeerConnection) {
        guard let info, let picker else {
            let limit = EarlyAvailability.bound(forMetadataSize: peer.metadataSize)
            if !peer.early.bitfield(bytes, limit: limit) {
                peerMisbehaved(peer, .brokenStream("bitfield of \(bytes.count) bytes, beyond the \(limit) pieces its metadata size allows"))
            }
            return
        }
        let field: Bitfield
        do { field = try Bitfield(count: info.pieceCount, validatingWireBytes: bytes) } catch {
            peerMisbehaved(peer, .brokenStream("\(error)"))
            return
        }
        if let old = peer.has, !old.isEmpty { picker.peerLost(bitfield: old, wasSeed: peer.countedAsSeed) }
        peer.has = field
        peer.countedAsSeed = field.isComplete
        if field.isComplete { picker.peerHasAll() } else { picker.peerHasBitfield(field) }
        if field.isComplete && have?.isComplete == true { peer.close(); return }
        updateInterest(peer)
        fillRequests(peer)
    }

    func receivedHaveAll(from peer: PeerConnection) {
        guard let info, let picker else {
            peer.early.setHaveAll()
            return
        }
        if let old = peer.has, !old.isEmpty { picker.peerLost(bitfield: old, wasSeed: peer.countedAsSeed) }
        peer.has = Bitfield(count: info.pieceCount, allSet: true)
        peer.countedAsSeed = true
        picker.peerHasAll()
        if have?.isComplete == true { peer.close(); return }
        updateInterest(peer)
        fillRequests(peer)
    }

    /// Applies have-messages that arrived before we knew the piece count (magnet downloads).
    func applyEarlyAvailability(_ peer: PeerConnection) {
        guard let info else { return }
        peer.has = Bitfield(count: info.pieceCount)
        let early = peer.early
        peer.early = EarlyAvailability()
        guard !early.isEmpty else { return }
        guard let field = early.resolve(pieceCount: info.pieceCount) else {
            peerMisbehaved(peer, .brokenStream("announced pieces beyond the torrent's \(info.pieceCount) before the metadata arrived"))
            return
        }
        if field.isComplete { receivedHaveAll(from: peer) } else { receivedBitfield(field.bytes, from: peer) }
    }

    func updateInterest(_ peer: PeerConnection) {
        guard let picker, let has = peer.has else { return }
        let interested = picker.isInteresting(peerHas: has)
        guard interested != peer.amInterested else { return }
        peer.amInterested = interested
        peer.send(interested ? .interested : .notInterested)
    }

    // MARK: - Choking

    static let uploadSlots = 4

    func unchokeIfSlotFree(_ peer: PeerConnection) {
        let unchoked = peers.values.filter { !$0.amChoking }.count
        guard unchoked < Self.uploadSlots + 1 else { return }
        setChoked(peer, false)
    }

    func setChoked(_ peer: PeerConnection, _ choked: Bool) {
        guard peer.amChoking != choked else { return }
        peer.amChoking = choked
        peer.send(choked ? .choke : .unchoke)
        if choked {
            // BEP 6: with the Fast extension every pending request is explicitly rejected.
            if peer.supportsFast { for request in peer.uploadQueue { peer.send(.rejectRequest(request), flush: false) } }
            peer.uploadQueue.removeAll()
            peer.flush()
        }
    }

    func rechoke(now: NIODeadline) {
        let seeding = have?.isComplete ?? false
        let candidates = peers.values.map { peer in
            ChokeCandidate(id: peer.key, isInterested: peer.peerInterested,
                           downloadRateFromPeer: peer.downloadRate.rate(now: now),
                           uploadRateToPeer: peer.uploadRate.rate(now: now))
        }
        let unchoke = choker.rechoke(candidates: candidates, seeding: seeding, now: now)
        for peer in peers.values { setChoked(peer, !unchoke.contains(peer.key)) }
    }

    // MARK: - Bans

    func countHashFailure(contributors: Set<Int>, piece: Int) {
        hashFailures += 1
        for key in contributors {
            guard let peer = peers[key] else { continue }
            if failuresByIP.count >= PeerBans.capacity { failuresByIP.removeAll() }
            let failures = (failuresByIP[peer.address.ip] ?? 0) + 1
            failuresByIP[peer.address.ip] = failures
            // A peer alone responsible for a bad piece twice, or involved three times, is banned.
            if failures >= Self.banAfterHashFailures || (contributors.count == 1 && failures >= 2) {
                logger.warning("banning \(peer.address) for \(Self.hashFailureBan.nanoseconds / 3_600_000_000_000) h: \(failures) pieces failed the hash check")
                candidates.ban(ip: peer.address.ip, for: Self.hashFailureBan, reason: "\(failures) pieces failed the hash check", now: .now())
                failuresByIP[peer.address.ip] = nil
                misbehaviourDisconnects += 1
                peer.cutOff = true
                peer.close()
            }
        }
    }
}
