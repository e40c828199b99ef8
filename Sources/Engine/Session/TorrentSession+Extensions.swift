import NIOCore
import PeerWire
import TorrentModel

/// BEP 10 extension protocol: handshake (with `yourip`), ut_metadata (BEP 9) both ways, ut_pex (BEP 11).
extension TorrentSession {
    static let clientName = "Burrow 0.1"

    func sendExtensionHandshake(to peer: PeerConnection) {
        var handshake = ExtensionHandshake()
        handshake.m = ["ut_metadata": LocalExtensionIDs.utMetadata]
        if !isPrivate { handshake.m["ut_pex"] = LocalExtensionIDs.utPex }
        handshake.client = Self.clientName
        handshake.port = listenPort
        handshake.requestQueueLength = 500
        handshake.yourIP = peer.address.ip   // what we see them as (BEP 10 `yourip`)
        if let info { handshake.metadataSize = info.rawBytes.count }
        peer.send(.extended(id: 0, payload: ByteBuffer(bytes: handshake.encode())))
        peer.sentExtensionHandshake = true
    }

    func handleExtended(id: UInt8, payload: ByteBuffer, from peer: PeerConnection) {
        switch id {
        case 0:
            receivedExtensionHandshake(payload, from: peer)
        case LocalExtensionIDs.utMetadata:
            receivedMetadataMessage(payload, from: peer)
        case LocalExtensionIDs.utPex:
            receivedPex(payload, from: peer)
        default:
            break  // An extension we never advertised: ignore.
        }
    }

    func receivedExtensionHandshake(_ payload: ByteBuffer, from peer: PeerConnection) {
        let handshake: ExtensionHandshake
        do {
            handshake = try ExtensionHandshake.decode(payload)
        } catch {
            peerMisbehaved(peer, reason: "bad extension handshake: \(error)")
            return
        }
        for (name, id) in handshake.m {
            if id == 0 { peer.extensionIDs[name] = nil } else { peer.extensionIDs[name] = id }
        }
        if let port = handshake.port { peer.listenPort = port }
        if let client = handshake.client { peer.clientName = client }
        if let reqq = handshake.requestQueueLength, reqq > 0 { peer.requestQueueLimit = min(reqq, 2000) }
        if let size = handshake.metadataSize { peer.metadataSize = size }
        if let yourIP = handshake.yourIP {
            externalAddressReported(yourIP, by: "peer \(peer.address)")
        }
        if peer.direction == .incoming, let reachable = peer.reachableAddress {
            candidates.add(reachable, source: .incoming, learnedVia: sockets.interface(of: peer.channel), now: .now())
        }
        if info == nil { requestMetadata(from: peer) }
    }

    // MARK: - ut_metadata

    func requestMetadata(from peer: PeerConnection) {
        guard info == nil, let remoteID = peer.extensionIDs["ut_metadata"], let size = peer.metadataSize else { return }
        if metadataAssembler == nil {
            do {
                metadataAssembler = try MetadataAssembler(infoHash: infoHash, totalSize: size)
            } catch {
                peerMisbehaved(peer, reason: "metadata size \(size): \(error)")
                return
            }
        }
        guard metadataAssembler?.totalSize == size else { return }
        // Ask each peer for a few pieces nobody else is fetching, so several peers share the work;
        // once everything is reserved, a duplicate request covers a slow peer.
        while peer.metadataRequestsInFlight.count < 4,
              let piece = metadataAssembler?.reservePiece(allowingDuplicate: peer.metadataRequestsInFlight.isEmpty),
              !peer.metadataRequestsInFlight.contains(piece) {
            peer.metadataRequestsInFlight.insert(piece)
            peer.send(.extended(id: remoteID, payload: ByteBuffer(bytes: MetadataMessage.request(piece: piece).encode())))
        }
    }

    func receivedMetadataMessage(_ payload: ByteBuffer, from peer: PeerConnection) {
        let decoded: MetadataMessage?
        do {
            decoded = try MetadataMessage.decode(payload)
        } catch {
            peerMisbehaved(peer, reason: "bad ut_metadata message: \(error)")
            return
        }
        guard let message = decoded else { return }  // An unknown msg_type: BEP 9 says ignore.
        switch message {
        case .request(let piece):
            serveMetadata(piece: piece, to: peer)
        case .reject(let piece):
            if peer.metadataRequestsInFlight.remove(piece) != nil { metadataAssembler?.releasePiece(piece) }
            peer.metadataSize = nil  // Don't ask this peer again.
            for other in peers.values where other !== peer { requestMetadata(from: other) }
        case .data(let piece, let totalSize, let bytes):
            if peer.metadataRequestsInFlight.remove(piece) != nil { metadataAssembler?.releasePiece(piece) }
            guard info == nil, var assembler = metadataAssembler, totalSize == assembler.totalSize else { return }
            let outcome: MetadataAssembler.Outcome
            do {
                outcome = try assembler.add(piece: piece, data: bytes)
            } catch {
                metadataAssembler = assembler
                peerMisbehaved(peer, reason: "metadata piece \(piece): \(error)")
                return
            }
            metadataAssembler = assembler
            switch outcome {
            case .needMore:
                requestMetadata(from: peer)
            case .hashMismatch:
                logger.warning("metadata from peers did not match the info hash; retrying")
                for other in peers.values { requestMetadata(from: other) }
            case .complete(let infoBytes):
                metadataArrived(infoBytes)
            }
        }
    }

    func metadataArrived(_ infoBytes: [UInt8]) {
        let info: TorrentInfo
        do {
            info = try TorrentInfo.parse(infoBytes: infoBytes)
        } catch {
            fail("the torrent's metadata is invalid: \(error)")
            return
        }
        guard info.infoHash == infoHash else {
            metadataAssembler = nil
            return
        }
        logger.info("metadata received: \(info.name), \(info.pieceCount) pieces")
        self.info = info
        self.displayName = info.name
        metadataAssembler = nil
        for peer in peers.values { peer.metadataRequestsInFlight.removeAll() }
        metadataAssembler = nil
        prepareStorage(for: info).whenSuccess {
            for peer in self.peers.values {
                self.updateInterest(peer)
                self.fillRequests(peer)
            }
        }
    }

    func serveMetadata(piece: Int, to peer: PeerConnection) {
        guard let remoteID = peer.extensionIDs["ut_metadata"] else { return }
        guard let info else { return }
        let raw = info.rawBytes
        let pieceSize = 16 * 1024
        let start = piece * pieceSize
        guard piece >= 0, start < raw.count else {
            peer.send(.extended(id: remoteID, payload: ByteBuffer(bytes: MetadataMessage.reject(piece: piece).encode())))
            return
        }
        let chunk = Array(raw[start..<min(start + pieceSize, raw.count)])
        let message = MetadataMessage.data(piece: piece, totalSize: raw.count, payload: chunk)
        peer.send(.extended(id: remoteID, payload: ByteBuffer(bytes: message.encode())))
    }

    // MARK: - ut_pex

    func receivedPex(_ payload: ByteBuffer, from peer: PeerConnection) {
        guard !isPrivate else { return }
        guard let message = try? PexMessage.decode(Array(payload.readableBytesView)) else {
            peerMisbehaved(peer, reason: "bad ut_pex message")
            return
        }
        let now = NIODeadline.now()
        let via = sockets.interface(of: peer.channel)
        for address in (message.added + message.added6).prefix(200) {
            candidates.add(address, source: .pex, learnedVia: via, now: now)
        }
        connectToCandidates()
    }

    /// Every minute: tell PEX-capable peers who joined and left since last time.
    func sendPex() {
        let current = Set(peers.values.compactMap(\.reachableAddress))
        for peer in peers.values {
            guard let remoteID = peer.extensionIDs["ut_pex"] else { continue }
            let added = Array(current.subtracting(peer.lastPexSentPeers).subtracting([peer.address]).prefix(50))
            let dropped = Array(peer.lastPexSentPeers.subtracting(current).prefix(50))
            guard !added.isEmpty || !dropped.isEmpty else { continue }
            var message = PexMessage()
            message.added = added.filter { !$0.isIPv6 }
            message.added6 = added.filter(\.isIPv6)
            message.addedFlags = [UInt8](repeating: 0, count: message.added.count)
            message.added6Flags = [UInt8](repeating: 0, count: message.added6.count)
            message.dropped = dropped.filter { !$0.isIPv6 }
            message.dropped6 = dropped.filter(\.isIPv6)
            peer.send(.extended(id: remoteID, payload: ByteBuffer(bytes: message.encode())))
            peer.lastPexSentPeers.formUnion(added)
            peer.lastPexSentPeers.subtract(dropped)
        }
    }
}
