import NIOCore
import PeerWire
import TorrentModel

/// BEP 10 extension protocol: handshake (with `yourip`), ut_metadata (BEP 9) both ways, ut_pex (BEP 11).
extension TorrentSession {
    static let clientName = "Burrow 0.1"

    /// Our `reqq`: requests of a peer's we queue; more at once are rejected and a violation.
    static let advertisedRequestQueue = 500
    /// Extension messages larger than this are junk: handshakes, PEX and metadata pieces are all smaller.
    static let maxExtensionMessageLength = PeerWireDecoder.defaultMaxMessageLength
    /// Metadata pieces asked of one peer at a time, and how long it may take to answer one.
    static let metadataRequestsPerPeer = 4
    static let metadataRequestTimeout = TimeAmount.seconds(20)

    func sendExtensionHandshake(to peer: PeerConnection) {
        var handshake = ExtensionHandshake()
        handshake.m = ["ut_metadata": LocalExtensionIDs.utMetadata]
        if !isPrivate { handshake.m["ut_pex"] = LocalExtensionIDs.utPex }
        handshake.client = Self.clientName
        handshake.port = listenPort
        handshake.requestQueueLength = Self.advertisedRequestQueue
        handshake.yourIP = peer.address.ip   // what we see them as (BEP 10 `yourip`)
        if let info { handshake.metadataSize = info.rawBytes.count }
        peer.send(.extended(id: 0, payload: ByteBuffer(bytes: handshake.encode())))
        peer.sentExtensionHandshake = true
    }

    func handleExtended(id: UInt8, payload: ByteBuffer, from peer: PeerConnection) {
        guard payload.readableBytes <= Self.maxExtensionMessageLength else {
            peerMisbehaved(peer, .violation("extension message \(id) of \(payload.readableBytes) bytes"))
            return
        }
        switch id {
        case 0:
            receivedExtensionHandshake(payload, from: peer)
        case LocalExtensionIDs.utMetadata:
            receivedMetadataMessage(payload, from: peer)
        case LocalExtensionIDs.utPex:
            receivedPex(payload, from: peer)
        default:
            // An extension we never advertised: ignored, but it cost bandwidth.
            peerWasted(peer, bytes: payload.readableBytes)
        }
    }

    func receivedExtensionHandshake(_ payload: ByteBuffer, from peer: PeerConnection) {
        let handshake: ExtensionHandshake
        do {
            handshake = try ExtensionHandshake.decode(payload)
        } catch {
            peerMisbehaved(peer, .brokenStream("bad extension handshake: \(error)"))
            return
        }
        // Only the extensions we support are remembered: the peer's `m` may list thousands of names.
        for name in LocalExtensionIDs.all.keys {
            guard let id = handshake.m[name] else { continue }
            peer.extensionIDs[name] = id == 0 ? nil : id
        }
        if let port = handshake.port { peer.listenPort = port }
        if let client = handshake.client {
            peer.clientName = String(decoding: client.utf8.prefix(PeerConnection.maxClientNameLength), as: UTF8.self)
        }
        if let reqq = handshake.requestQueueLength, reqq > 0 { peer.requestQueueLimit = min(reqq, 2000) }
        if let size = handshake.metadataSize, info == nil {
            do {
                try metadataFetch.claim(peer: peer.key, size: size)
                peer.metadataSize = size
            } catch {
                // Not a size any torrent we would take can have: never ask this peer for metadata.
                peerMisbehaved(peer, .violation("\(error)"))
            }
        }
        if let yourIP = handshake.yourIP {
            externalAddressReported(yourIP, by: "peer \(peer.address)")
        }
        if peer.direction == .incoming, let reachable = peer.reachableAddress {
            candidates.add(reachable, source: .incoming, learnedVia: sockets.interface(of: peer.channel), now: .now())
        }
        if info == nil { requestMetadataFromAll() }
    }

    // MARK: - ut_metadata

    func requestMetadataFromAll() {
        for peer in peers.values { requestMetadata(from: peer) }
    }

    func requestMetadata(from peer: PeerConnection) {
        guard info == nil, let remoteID = peer.extensionIDs["ut_metadata"] else { return }
        // Ask each peer for a few pieces nobody else is fetching, so several peers share the work;
        // once everything is reserved, a duplicate request covers a slow peer.
        let now = NIODeadline.now()
        while peer.metadataRequestsInFlight.count < Self.metadataRequestsPerPeer,
              let piece = metadataFetch.reservePiece(for: peer.key, allowingDuplicate: peer.metadataRequestsInFlight.isEmpty) {
            guard peer.metadataRequestsInFlight[piece] == nil else {
                metadataFetch.release(piece: piece, of: peer.key)
                break
            }
            peer.metadataRequestsInFlight[piece] = now
            peer.send(.extended(id: remoteID, payload: ByteBuffer(bytes: MetadataMessage.request(piece: piece).encode())))
        }
    }

    /// The peer will not (or cannot) give us metadata: hand back its pieces and stop asking it.
    func stopAskingForMetadata(_ peer: PeerConnection) {
        for piece in peer.metadataRequestsInFlight.keys { metadataFetch.release(piece: piece, of: peer.key) }
        peer.metadataRequestsInFlight.removeAll()
        metadataFetch.forget(peer: peer.key)
        if info == nil { requestMetadataFromAll() }
    }

    /// Every tick while fetching metadata: a peer sitting on a metadata request too long is not asked again.
    func expireMetadataRequests(now: NIODeadline) {
        guard info == nil else { return }
        for peer in peers.values where peer.metadataRequestsInFlight.values.contains(where: { now - $0 > Self.metadataRequestTimeout }) {
            logger.debug("peer \(peer.address) did not answer a metadata request in time")
            stopAskingForMetadata(peer)
        }
    }

    func receivedMetadataMessage(_ payload: ByteBuffer, from peer: PeerConnection) {
        let decoded: MetadataMessage?
        do {
            decoded = try MetadataMessage.decode(payload)
        } catch {
            peerMisbehaved(peer, .violation("bad ut_metadata message: \(error)"))
            return
        }
        guard let message = decoded else { return }  // An unknown msg_type: BEP 9 says ignore.
        switch message {
        case .request(let piece):
            serveMetadata(piece: piece, to: peer)
        case .reject(let piece):
            guard peer.metadataRequestsInFlight[piece] != nil else { return }
            stopAskingForMetadata(peer)  // Don't ask this peer again.
        case .data(let piece, let totalSize, let bytes):
            guard peer.metadataRequestsInFlight.removeValue(forKey: piece) != nil else {
                // Not asked for (or already timed out): costs bandwidth, adds nothing.
                peerWasted(peer, bytes: payload.readableBytes)
                return
            }
            metadataFetch.release(piece: piece, of: peer.key)
            guard info == nil else { return }
            if metadataSenders.count < PeerBans.capacity { metadataSenders[peer.key] = peer.address.ip }
            let event: MetadataFetch.Event
            do {
                event = try metadataFetch.received(piece: piece, totalSize: totalSize, bytes: bytes, from: peer.key)
            } catch {
                peerMisbehaved(peer, .badMetadata("\(error)"))
                return
            }
            switch event {
            case .needMore:
                requestMetadata(from: peer)
            case .failed(let liars):
                metadataFailures += 1
                metadataLog.log(logger, .warning, key: "mismatch",
                                "metadata from \(liars.isEmpty ? "several peers" : "a peer") did not match the info hash; retrying")
                banMetadataLiars(liars)
                requestMetadataFromAll()
            case .complete(let infoBytes, let liars):
                banMetadataLiars(liars)
                metadataArrived(infoBytes)
            }
        }
    }

    /// Cuts off and bans the peers proven to have sent bad metadata, also those that left meanwhile.
    private func banMetadataLiars(_ keys: Set<Int>) {
        let misbehaviour = Misbehaviour.badMetadata("sent metadata that failed the info hash")
        for key in keys {
            if let liar = peers[key] {
                peerMisbehaved(liar, misbehaviour)
            } else if let ip = metadataSenders[key] {
                candidates.ban(ip: ip, for: Misbehaviour.banDuration, reason: misbehaviour.description, now: .now())
            }
        }
    }

    func metadataArrived(_ infoBytes: [UInt8]) {
        let info: TorrentInfo
        do {
            info = try TorrentInfo.parse(infoBytes: infoBytes)
        } catch {
            // The bytes hash to the info hash: this is the torrent, and it is broken.
            fail("the torrent's metadata is invalid: \(error)")
            return
        }
        logger.info("metadata received: \(info.name), \(info.pieceCount) pieces")
        self.info = info
        self.displayName = info.name
        metadataSenders = [:]
        for peer in peers.values { peer.metadataRequestsInFlight.removeAll() }
        prepareStorage(for: info).whenSuccess {
            for peer in self.peers.values {
                self.updateInterest(peer)
                self.fillRequests(peer)
            }
        }
    }

    /// ut_metadata requests a peer may make per metadata piece over a connection: fetching it once or
    /// twice is normal; asking for it again and again only wastes our upload.
    static let metadataServesPerPiece = 4

    func serveMetadata(piece: Int, to peer: PeerConnection) {
        guard let remoteID = peer.extensionIDs["ut_metadata"] else { return }
        guard let info else {
            peer.send(.extended(id: remoteID, payload: ByteBuffer(bytes: MetadataMessage.reject(piece: piece).encode())))
            return
        }
        let raw = info.rawBytes
        let pieceSize = MetadataMessage.pieceSize
        let start = piece * pieceSize
        guard piece >= 0, start < raw.count else {
            peer.send(.extended(id: remoteID, payload: ByteBuffer(bytes: MetadataMessage.reject(piece: piece).encode())))
            return
        }
        let budget = Self.metadataServesPerPiece * ((raw.count + pieceSize - 1) / pieceSize)
        guard peer.metadataRequestsServed < budget else {
            peerMisbehaved(peer, .violation("asked for metadata pieces more than \(budget) times"))
            return
        }
        peer.metadataRequestsServed += 1
        let chunk = Array(raw[start..<min(start + pieceSize, raw.count)])
        let message = MetadataMessage.data(piece: piece, totalSize: raw.count, payload: chunk)
        peer.send(.extended(id: remoteID, payload: ByteBuffer(bytes: message.encode())))
    }

    // MARK: - ut_pex

    func receivedPex(_ payload: ByteBuffer, from peer: PeerConnection) {
        guard !isPrivate else { return }
        guard let message = try? PexMessage.decode(Array(payload.readableBytesView)) else {
            peerMisbehaved(peer, .violation("bad ut_pex message"))
            return
        }
        // Each peer may hand us at most `maxPexAddresses` addresses over a connection.
        let room = PeerConnection.maxPexAddresses - peer.pexAddressesTaken
        guard room > 0 else {
            peerWasted(peer, bytes: payload.readableBytes)
            return
        }
        let now = NIODeadline.now()
        let via = sockets.interface(of: peer.channel)
        let taken = (message.added + message.added6).prefix(min(200, room))
        peer.pexAddressesTaken += taken.count
        for address in taken {
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
