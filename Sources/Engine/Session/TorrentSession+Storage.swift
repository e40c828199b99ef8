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
    /// Sets up storage, picker and the have-bitfield for `info`; runs a recheck when resume data is
    /// missing, does not match, or `--recheck` was asked for.
    func prepareStorage(for info: TorrentInfo) -> EventLoopFuture<Void> {
        eventLoop.preconditionInEventLoop()
        let wanted = fileWanted(info)
        let storage: FileStorage
        do {
            storage = try FileStorage(info: info, root: options.outputDirectory, threadPool: threadPool, fileWanted: wanted)
        } catch {
            fail("cannot open the output files: \(error)")
            return eventLoop.makeFailedFuture(error)
        }
        let wrapped = options.storageMiddleware?(storage) ?? storage
        self.storage = wrapped
        writer = PieceWriter(storage: wrapped, info: info, threadPool: threadPool, eventLoop: eventLoop) { [weak self] report in
            self?.diskReport(report)
        }
        let resume = ResumeStore(root: options.outputDirectory, info: info)
        self.resume = resume

        var trusted: Bitfield?
        if !options.forceRecheck {
            do {
                trusted = try resume.load()
            } catch {
                logger.notice("resume data not usable (\(error)); rechecking")
            }
        }
        let haveFuture: EventLoopFuture<Bitfield>
        if let trusted {
            haveFuture = eventLoop.makeSucceededFuture(trusted)
        } else if anyFileExists(info) || options.forceRecheck {
            state = .checking(done: 0, of: info.pieceCount)
            haveFuture = Recheck.recheck(storage: storage, info: info, on: eventLoop) { done in
                self.eventLoop.execute {
                    // Progress reports can trail the end of the check: never step back from a later state.
                    if case .checking = self.state { self.state = .checking(done: done, of: info.pieceCount) }
                }
            }
        } else {
            haveFuture = eventLoop.makeSucceededFuture(Bitfield(count: info.pieceCount))
        }
        return haveFuture.flatMap { have in
            self.installPieces(info: info, have: have)
            return resume.reset(have: have, threadPool: self.threadPool, on: self.eventLoop).recover { error in
                self.logger.warning("could not write resume data: \(error)")
            }
        }.flatMapError { error in
            self.fail("checking existing data failed: \(error)")
            return self.eventLoop.makeFailedFuture(error)
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
