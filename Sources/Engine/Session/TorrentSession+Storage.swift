#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore
import Storage
import TorrentModel

/// Opening the files, trusting resume data or rechecking, and saving resume data.
extension TorrentSession {
    /// Sets up storage, picker and the have-bitfield for `info`. Resume data (kept only with a state
    /// directory) is checked cheaply (`ResumeStore`'s identities, `ResumeSpotCheck`'s sample) before it
    /// counts; a full recheck runs when it is missing, does not match, fails the spot check, or
    /// `--recheck` was asked for. Refuses the torrent if its payload and the state directory overlap.
    func prepareStorage(for info: TorrentInfo) -> EventLoopFuture<Void> {
        eventLoop.preconditionInEventLoop()
        let wanted = fileWanted(info)
        let storage: FileStorage
        do {
            storage = try FileStorage(info: info, root: options.outputDirectory, threadPool: threadPool, fileWanted: wanted,
                                      maximumOpenFiles: connectionBudget.descriptors.storage)
        } catch {
            fail("cannot open the output files: \(error)")
            return eventLoop.makeFailedFuture(error)
        }
        let wrapped = options.storageMiddleware?(storage) ?? storage
        self.storage = wrapped
        writer = PieceWriter(storage: wrapped, info: info, threadPool: threadPool, eventLoop: eventLoop) { [weak self] report in
            self?.diskReport(report)
        }
        let resume = options.stateDirectory.map {
            ResumeStore(directory: StateDirectory.resumeFolder(in: $0), payloadRoot: options.outputDirectory, info: info)
        }
        self.resume = resume

        let haveFuture = loadResumeData(resume, info: info).flatMap { loaded -> EventLoopFuture<Bitfield> in
            switch loaded {
            case let .resumed(claim)?:
                return self.spotCheck(claim, info: info, storage: storage)
            case let .unavailable(reason)?:
                self.logger.info("no usable resume data: \(reason)")
                return self.recheckIfAnyFileExists(info, storage: storage)
            case nil:
                return self.recheckIfAnyFileExists(info, storage: storage)
            }
        }
        return haveFuture.flatMap { have in
            self.installPieces(info: info, have: have)
            guard let resume else { return self.eventLoop.makeSucceededVoidFuture() }
            return resume.reset(have: have, threadPool: self.threadPool, on: self.eventLoop).recover { error in
                self.logger.warning("could not write resume data: \(error)")
            }
        }.flatMapError { error in
            if let conflict = error as? StateConflict {
                self.fail(conflict.description)
            } else {
                self.fail("checking existing data failed: \(error)")
            }
            return self.eventLoop.makeFailedFuture(error)
        }
    }

    /// The payload and the state directory must not overlap, or the torrent's files could be Burrow's own.
    private struct StateConflict: Error, CustomStringConvertible {
        let description: String
    }

    /// On the thread pool: makes sure the state directory exists and lies outside the payload, then reads
    /// the resume data (nil: none kept, or a recheck was asked for).
    private func loadResumeData(_ resume: ResumeStore?, info: TorrentInfo) -> EventLoopFuture<ResumeLoadResult?> {
        guard let resume, let stateDirectory = options.stateDirectory else { return eventLoop.makeSucceededFuture(nil) }
        let output = options.outputDirectory, forceRecheck = options.forceRecheck, logger = logger
        let payloadName = info.files.first?.path.first ?? info.name
        return threadPool.runIfActive(eventLoop: eventLoop) { () throws -> ResumeLoadResult? in
            try StateDirectory.create(stateDirectory)
            if let conflict = try StateDirectory.conflict(state: stateDirectory, output: output, payloadName: payloadName) {
                throw StateConflict(description: "refusing this torrent: \(conflict); choose another --state-dir or --output")
            }
            guard !forceRecheck else { return nil }
            do {
                return try resume.loadResult()
            } catch {
                logger.notice("resume data not usable (\(error)); rechecking")
                return nil
            }
        }
    }

    /// Hashes the suspect pieces and a random sample of the claim; a failed sample means a full recheck.
    private func spotCheck(_ claim: ResumeClaim, info: TorrentInfo, storage: FileStorage) -> EventLoopFuture<Bitfield> {
        if !claim.dropped.isEmpty {
            logger.info("resume data: \(claim.dropped.count) pieces dropped (their files are missing or too short)")
        }
        if !claim.changedFiles.isEmpty {
            let names = claim.changedFiles.prefix(5).joined(separator: ", ") + (claim.changedFiles.count > 5 ? ", …" : "")
            logger.notice("resume data: \(claim.changedFiles.count) files changed since they were recorded (\(names)); hashing their \(claim.suspect.count) pieces again")
        }
        return ResumeSpotCheck.run(claim, storage: storage, info: info, parallelism: storage.parallelism, on: eventLoop)
            .flatMap { outcome in
                switch outcome {
                case let .trusted(have, hashed, suspectsFailed):
                    self.logger.info("resume data: \(have.cardinality) pieces trusted after hashing \(hashed) (\(suspectsFailed) failed)")
                    return self.eventLoop.makeSucceededFuture(have)
                case let .distrusted(reason):
                    self.logger.notice("resume data not trusted: \(reason); rechecking everything")
                    return self.fullRecheck(info, storage: storage)
                }
            }
    }

    private func recheckIfAnyFileExists(_ info: TorrentInfo, storage: FileStorage) -> EventLoopFuture<Bitfield> {
        guard anyFileExists(info) || options.forceRecheck else {
            return eventLoop.makeSucceededFuture(Bitfield(count: info.pieceCount))
        }
        return fullRecheck(info, storage: storage)
    }

    private func fullRecheck(_ info: TorrentInfo, storage: FileStorage) -> EventLoopFuture<Bitfield> {
        state = .checking(done: 0, of: info.pieceCount)
        return Recheck.recheck(storage: storage, info: info, on: eventLoop) { done in
            self.eventLoop.execute {
                // Progress reports can trail the end of the check: never step back from a later state.
                if case .checking = self.state { self.state = .checking(done: done, of: info.pieceCount) }
            }
        }
    }

    private func installPieces(info: TorrentInfo, have: Bitfield) {
        self.have = have
        let picker = PiecePicker(pieceCount: info.pieceCount, pieceLength: info.pieceLength,
                                 totalLength: info.totalLength, have: have)
        // Lowest first, so that a piece shared with a wanted file ends up wanted.
        picker.setPriority(.skip, forPieces: 0..<info.pieceCount)
        for (index, _) in info.files.enumerated() {
            let priority = options.filePriorities[index] ?? .normal
            if priority == .normal { picker.setPriority(.normal, forPieces: info.pieces(overlappingFile: index)) }
        }
        for (index, _) in info.files.enumerated() where options.filePriorities[index] == .high {
            picker.setPriority(.high, forPieces: info.pieces(overlappingFile: index))
        }
        self.picker = picker
        // Wanted means what the picker fetches; the verified share is derived from its remaining bytes.
        wantedBytes = (0..<info.pieceCount).reduce(0) { total, piece in
            picker.priority(ofPiece: piece) == .skip ? total : total + Int64(info.length(ofPiece: piece))
        }
        state = .downloading
        logger.info("\(have.cardinality)/\(info.pieceCount) pieces already verified")
        for peer in peers.values { applyEarlyAvailability(peer); sendOurPiecesAfterMetadata(to: peer) }
        if picker.isComplete { downloadFinished() }
    }

    private func sendOurPiecesAfterMetadata(to peer: PeerConnection) {
        guard let have, !have.isEmpty else { return }
        for piece in have.setIndices { peer.send(.have(piece: UInt32(piece)), flush: false) }
        peer.flush()
    }

    func fileWanted(_ info: TorrentInfo) -> [Bool] {
        info.files.indices.map { (options.filePriorities[$0] ?? .normal) != .skip }
    }

    private func anyFileExists(_ info: TorrentInfo) -> Bool {
        info.files.contains { file in
            !file.isPadding && FileManager.default.fileExists(atPath: options.outputDirectory + "/" + file.relativePath)
        }
    }

    /// Writes a fresh resume snapshot (the journal already holds every verified piece).
    func saveResume() -> EventLoopFuture<Void> {
        guard let resume, let have else { return eventLoop.makeSucceededVoidFuture() }
        return resume.compact(have: have, threadPool: threadPool, on: eventLoop)
    }
}
