import Crypto
import NIOCore
import PeerWire
import Storage
import TorrentModel

/// Download and upload of piece data: requests, block arrival, writes, verification, serving requests.
extension TorrentSession {
    /// Largest block a peer may ask of us; bigger requests close the connection.
    static let maxRequestLength = 128 * 1024

    // MARK: - Requesting

    /// Tops up the peer's pipeline to its queue depth.
    func fillRequests(_ peer: PeerConnection) {
        guard let picker, let has = peer.has, peer.amInterested, !isStopping else { return }
        if peer.peerChoking && peer.allowedFast.isEmpty { return }
        let room = peer.queueDepth - peer.outstanding.count
        // Refill in batches (a quarter of the pipeline, at most 16 blocks): one write and one flush per
        // batch instead of one per block received.
        guard room > 0, peer.outstanding.isEmpty || room >= min(16, max(1, peer.queueDepth / 4)) else { return }
        // Under a download limit, only ask for what the bucket allows now; the tick retries.
        let budget = downloadLimiter.isUnlimited ? room : min(room, downloadLimiter.available(now: .now()) / PiecePicker.blockSize)
        guard budget > 0 else { return }
        let blocks = picker.pickBlocks(peer: peer.key, peerHas: has, count: budget,
                                       allowedFast: peer.allowedFast, peerIsChoking: peer.peerChoking)
        guard !blocks.isEmpty else {
            if peer.outstanding.isEmpty { updateInterest(peer) }
            return
        }
        var requests: [PeerMessage] = []
        requests.reserveCapacity(blocks.count)
        for block in blocks {
            let request = BlockRequest(block)
            peer.outstanding.insert(request)
            if !downloadLimiter.isUnlimited { _ = downloadLimiter.consume(Int(request.length), now: .now()) }
            requests.append(.request(request))
        }
        peer.send(batch: requests)
        peer.flush()
        peer.lastSentAt = .now()
    }

    // MARK: - Receiving

    func receivedBlock(piece: Int, begin: Int, block: ByteBuffer, from peer: PeerConnection, now: NIODeadline) {
        let request = BlockRequest(piece: UInt32(piece), begin: UInt32(begin), length: UInt32(block.readableBytes))
        guard peer.outstanding.remove(request) != nil, let picker, let writer else {
            // Cancelled or released (endgame duplicates, a choke crossing our requests): late, dropped.
            // Never asked for: junk, tolerated up to `PeerConduct.unrequestedAllowance`.
            peer.downloadRate.add(block.readableBytes, now: now)
            wastedBytes += Int64(block.readableBytes)
            if peer.cancelled.remove(request) == nil, let misbehaviour = peer.conduct.unrequestedBlock(block.readableBytes) {
                peerMisbehaved(peer, misbehaviour)
            }
            return
        }
        peer.conduct.useful(block.readableBytes)
        peer.lastBlockAt = now
        if let since = resumeStartedAt {
            resumeStartedAt = nil
            logger.notice("resumed in \((now - since).nanoseconds / 1_000_000) ms (first block after the tunnel came back)")
        }
        peer.downloadRate.add(block.readableBytes, now: now)
        downloadRate.add(block.readableBytes, now: now)
        let outcome = picker.blockReceived(peer: peer.key, piece: piece, begin: begin)
        for cancel in outcome.cancels {
            guard let other = peers[cancel.peer] else { continue }
            let duplicate = BlockRequest(cancel.block)
            if other.outstanding.remove(duplicate) != nil {
                other.send(.cancel(duplicate))
                other.rememberCancelled(duplicate)
            }
        }
        guard outcome.accepted else {
            fillRequests(peer)
            return
        }
        writer.enqueueWrite(piece: piece, begin: begin, data: block)
        diskBacklog += block.readableBytes
        if diskBacklog > Self.diskBacklogHigh && !readingPaused { setReadingPaused(true) }
        if outcome.pieceComplete { writer.enqueueFinish(piece: piece) }
        fillRequests(peer)
    }

    /// Stops or restarts reading from every peer for the disk's sake, and keeps the pause statistics.
    private func setReadingPaused(_ paused: Bool) {
        readingPaused = paused
        if paused {
            diskPauses += 1
            diskPausedSince = .now()
            logger.debug("disk backlog \(diskBacklog) bytes: pausing reads from peers")
        } else if let since = diskPausedSince {
            diskPausedTotal = diskPausedTotal + (.now() - since)
            diskPausedSince = nil
        }
        for peer in peers.values { peer.setReading(!paused) }
    }

    /// What the disk thread got done: backlog relief, piece verdicts, or a storage error.
    func diskReport(_ report: PieceWriter.Report) {
        diskBacklog -= report.bytesDone
        if readingPaused && diskBacklog < Self.diskBacklogLow { setReadingPaused(false) }
        if let (piece, message) = report.error {
            if !isStopping { fail("storage error on piece \(piece): \(message)") }
            return
        }
        for (piece, verdict) in report.verdicts {
            switch verdict {
            case .verified:
                pieceVerified(piece)
            case .failedHash:
                guard !isStopping else { continue }
                logger.info("piece \(piece) failed the hash check")
                let contributors = picker?.contributors(ofPiece: piece) ?? []
                picker?.pieceFailed(piece)
                countHashFailure(contributors: contributors, piece: piece)
                for peer in peers.values { fillRequests(peer) }
            }
        }
    }

    func pieceVerified(_ piece: Int) {
        guard have?[piece] == false else { return }
        have![piece] = true
        verifiedThisSession += 1
        picker?.pieceVerified(piece)
        // The journal entry is what makes this piece survive a kill. It is one small append, done
        // right here so that nothing counts the piece as had before the journal does.
        do {
            try resume?.recordVerified(piece: piece)
        } catch {
            logger.warning("could not record piece \(piece) in the resume journal: \(error)")
        }
        // Stopping: the piece is kept (above), but the peers and the finish are going away.
        guard !isStopping else { return }
        for peer in peers.values {
            // Seeds need no have-messages; everyone else learns what they can ask us for.
            if !peer.isSeed { peer.send(.have(piece: UInt32(piece))) }
            if peer.amInterested { updateInterest(peer) }
        }
        if picker?.isComplete == true { downloadFinished() }
    }

    func downloadFinished() {
        guard let have else { return }
        switch state {
        case .seeding, .complete: return
        default: break
        }
        logger.info("download complete: \(have.cardinality)/\(have.count) pieces")
        if diskPauses > 0 {
            logger.info("reads waited for the disk \(diskPauses) times, \(diskPausedTotal.nanoseconds / 1_000_000) ms in all")
        }
        let wantSeeding = options.seed && have.isComplete && !seedRatioReached
        state = wantSeeding ? .seeding : .complete
        // BEP 3: "completed" is sent when a download finishes, not when a seed starts with the data.
        if have.isComplete && verifiedThisSession > 0 { scheduleAnnounce(after: .zero, event: .completed) }
        let synced = storage?.sync(on: eventLoop) ?? eventLoop.makeSucceededVoidFuture()
        synced.flatMap { self.saveResume() }.whenComplete { _ in
            if !wantSeeding {
                for peer in self.peers.values { peer.close() }
            } else {
                // Seeds have nothing to give us now.
                for peer in self.peers.values where peer.isSeed { peer.close() }
            }
            self.completion.succeed(())
        }
    }

    var seedRatioReached: Bool {
        guard let limit = options.seedRatioLimit, let info else { return false }
        return Double(uploadRate.total) >= limit * Double(info.totalLength)
    }

    func checkSeedRatio() {
        guard state == .seeding, seedRatioReached else { return }
        logger.info("seed ratio \(options.seedRatioLimit ?? 0) reached; stopping")
        state = .complete
        for peer in peers.values { peer.close() }
    }

    // MARK: - Uploading

    func receivedRequest(_ request: BlockRequest, from peer: PeerConnection) {
        guard let info, let have else { return }
        let piece = Int(request.piece)
        guard piece < info.pieceCount, request.length > 0, Int(request.length) <= Self.maxRequestLength,
              Int(request.begin) + Int(request.length) <= info.length(ofPiece: piece) else {
            peerMisbehaved(peer, .violation("invalid request \(request)"))
            return
        }
        guard !peer.amChoking, have[piece] else {
            if peer.supportsFast { peer.send(.rejectRequest(request)) }
            return
        }
        guard peer.uploadQueue.count < Self.advertisedRequestQueue else {
            if peer.supportsFast { peer.send(.rejectRequest(request)) }
            peerMisbehaved(peer, .violation("more than \(Self.advertisedRequestQueue) requests at once (our reqq)"))
            return
        }
        peer.uploadQueue.append(request)
        serveUploads(peer)
    }

    /// Reads and sends queued blocks while the socket accepts data and the upload limit allows.
    func serveUploads(_ peer: PeerConnection) {
        guard !peer.servingUpload, !peer.uploadQueue.isEmpty, peer.channel.isWritable, let storage else { return }
        let request = peer.uploadQueue.removeFirst()
        let now = NIODeadline.now()
        let delay = uploadLimiter.consume(Int(request.length), now: now)
        peer.servingUpload = true
        let read: EventLoopFuture<ByteBuffer> = delay > .zero
            ? eventLoop.scheduleTask(in: delay) {}.futureResult.flatMap {
                storage.readBlock(piece: Int(request.piece), begin: Int(request.begin), length: Int(request.length), on: self.eventLoop)
            }
            : storage.readBlock(piece: Int(request.piece), begin: Int(request.begin), length: Int(request.length), on: eventLoop)
        let key = peer.key
        read.whenComplete { result in
            // Look the peer up again: it may have gone while the block was read.
            guard let peer = self.peers[key] else { return }
            peer.servingUpload = false
            guard !peer.amChoking else { return }
            switch result {
            case .success(let block):
                peer.send(.piece(piece: request.piece, begin: request.begin, block: block))
                peer.lastSentAt = .now()
                peer.uploadRate.add(block.readableBytes, now: .now())
                self.uploadRate.add(block.readableBytes, now: .now())
                self.serveUploads(peer)
            case .failure(let error):
                self.logger.error("reading piece \(request.piece) for upload failed: \(error)")
                peer.close()
            }
        }
    }
}

extension BlockRequest {
    init(_ block: PickedBlock) {
        self.init(piece: UInt32(block.piece), begin: UInt32(block.begin), length: UInt32(block.length))
    }
}

extension PickedBlock {
    init(_ request: BlockRequest) {
        self.init(piece: Int(request.piece), begin: Int(request.begin), length: Int(request.length))
    }
}
