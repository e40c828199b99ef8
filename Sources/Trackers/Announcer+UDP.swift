import Logging
import NIOCore
import Sockets

/// Knobs of the UDP announcer (BEP 15).
public struct UDPAnnouncerConfiguration: Sendable {
    /// The first wait for a reply; each retransmit doubles it (BEP 15: 15 · 2^n seconds).
    public var retransmitBase: Duration
    /// The largest n in 15 · 2^n. BEP 15 goes up to 8 (over an hour in total), far too long to hold up
    /// a tier; with 1, a silent tracker is given up after 15 + 30 = 45 s per address, so the tier moves
    /// on within about a minute.
    public var maxRetransmitExponent: Int
    /// How long a connection id is reused. BEP 15 lets clients keep one for a minute.
    public var connectionIDLifetime: Duration
    public var resolveTimeout: Duration

    public init(
        retransmitBase: Duration = .seconds(15), maxRetransmitExponent: Int = 1,
        connectionIDLifetime: Duration = .seconds(60), resolveTimeout: Duration = .seconds(15)
    ) {
        self.retransmitBase = retransmitBase
        self.maxRetransmitExponent = max(0, maxRetransmitExponent)
        self.connectionIDLifetime = connectionIDLifetime
        self.resolveTimeout = resolveTimeout
    }
}

/// A UDP tracker (BEP 15): connect for a connection id, then announce with it, retransmitting with
/// exponential back-off. An actor because it caches connection ids between announces.
public actor UDPAnnouncer: Announcer {
    public nonisolated let url: String
    private let trackerURL: TrackerURL
    private let sockets: SocketFactory
    private let configuration: UDPAnnouncerConfiguration
    private let logger: Logger

    private struct ConnectionID {
        var value: UInt64
        var obtainedAt: ContinuousClock.Instant
    }
    /// Connection ids per tracker address (the tracker ties an id to the address it saw us from).
    /// Invariant: an entry older than `connectionIDLifetime` is never used, only replaced.
    private var connectionIDs: [SocketAddress: ConnectionID] = [:]

    public init(
        url: String, sockets: SocketFactory, logger: Logger, configuration: UDPAnnouncerConfiguration = .init()
    ) throws(TrackerError) {
        let parsed = try TrackerURL(parsing: url)
        guard parsed.scheme == .udp else { throw .unsupportedURL(url: url, reason: "not a udp URL") }
        self.url = url
        self.trackerURL = parsed
        self.sockets = sockets
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "tracker"] = "\(url)"
        self.logger = logger
    }

    public func announce(_ request: AnnounceRequest) async throws -> AnnounceResponse {
        let addresses: [SocketAddress]
        do {
            let deadline = NIODeadline.now() + TimeAmount(configuration.resolveTimeout)
            addresses = try await sockets.resolve(host: trackerURL.host, port: trackerURL.port)
                .value(before: deadline, orThrow: .timeout("resolving \(trackerURL.host) took longer than \(configuration.resolveTimeout.shortText)"))
        } catch {
            throw TrackerError.wrapping(error)
        }
        var failures = [(address: SocketAddress, error: TrackerError)]()
        for address in addresses {
            do {
                return try await announce(request, to: address)
            } catch let error as TrackerError {
                switch error {
                case .timeout, .connectionFailed:
                    // Unreachable at this address; another address of the same host may work.
                    failures.append((address, error))
                    logger.debug("tracker address failed", metadata: ["address": "\(address)", "error": "\(error)"])
                default:
                    throw error  // The tracker answered; its verdict stands.
                }
            }
        }
        if failures.count == 1 { throw failures[0].error }
        throw TrackerError.connectionFailed(failures.map { "\($0.address): \($0.error)" }.joined(separator: "; "))
    }

    private func announce(_ request: AnnounceRequest, to address: SocketAddress) async throws -> AnnounceResponse {
        let socket = try await openSocket(to: address)
        defer { socket.close() }
        let overIPv6 = address.protocol == .inet6

        if let cached = connectionIDs[address], ContinuousClock.now - cached.obtainedAt < configuration.connectionIDLifetime {
            // A reused id may have been forgotten by the tracker (restart, shorter lifetime), and some
            // trackers silently drop packets with unknown ids. So a reused id gets one try; on an error
            // or silence we reconnect and run the full schedule.
            do {
                if let datagram = try await exchange(
                    on: socket, attempts: 1, what: "announce",
                    packet: { UDPTrackerProtocol.announceRequest(connectionID: cached.value, transactionID: $0, request: request) })
                {
                    return try UDPTrackerProtocol.parseAnnounceResponse(datagram, ipv6: overIPv6)
                }
            } catch TrackerError.failure(let reason) {
                logger.debug("tracker refused a reused connection id; reconnecting", metadata: ["reason": "\(reason)"])
            }
            connectionIDs[address] = nil
        }

        let connectionID = try await obtainConnectionID(on: socket, address: address)
        guard let datagram = try await exchange(
            on: socket, attempts: configuration.maxRetransmitExponent + 1, what: "announce",
            packet: { UDPTrackerProtocol.announceRequest(connectionID: connectionID, transactionID: $0, request: request) })
        else {
            throw noReply(to: "announce", from: address)
        }
        return try UDPTrackerProtocol.parseAnnounceResponse(datagram, ipv6: overIPv6)
    }

    private func obtainConnectionID(on socket: UDPTrackerSocket, address: SocketAddress) async throws -> UInt64 {
        guard let datagram = try await exchange(
            on: socket, attempts: configuration.maxRetransmitExponent + 1, what: "connect",
            packet: { UDPTrackerProtocol.connectRequest(transactionID: $0) })
        else {
            throw noReply(to: "connect", from: address)
        }
        let value = try UDPTrackerProtocol.parseConnectResponse(datagram)
        connectionIDs[address] = ConnectionID(value: value, obtainedAt: .now)
        logger.trace("got a connection id", metadata: ["address": "\(address)"])
        return value
    }

    /// Sends a request built for a fresh random transaction id, retransmitting after 15 · 2^n (scaled by
    /// the configured base) for n = 0 ..< attempts. Returns the reply, or nil when all waits ran out.
    private func exchange(
        on socket: UDPTrackerSocket, attempts: Int, what: String, packet build: (UInt32) -> [UInt8]
    ) async throws -> [UInt8]? {
        let transactionID = UInt32.random(in: .min ... .max)
        let packet = build(transactionID)
        for attempt in 0..<attempts {
            let wait = TimeAmount(configuration.retransmitBase * (1 << attempt))
            if let reply = try await socket.send(packet, expecting: transactionID, within: wait) { return reply }
            logger.debug("no reply from tracker", metadata: ["request": "\(what)", "attempt": "\(attempt + 1)"])
        }
        return nil
    }

    private func noReply(to what: String, from address: SocketAddress) -> TrackerError {
        let attempts = configuration.maxRetransmitExponent + 1
        let total = (0..<attempts).reduce(Duration.zero) { $0 + configuration.retransmitBase * (1 << $1) }
        return .timeout("no reply to \(what) from \(address) after \(attempts) tries over \(total.shortText)")
    }

    private func openSocket(to address: SocketAddress) async throws -> UDPTrackerSocket {
        do {
            return try await UDPTrackerSocket.open(to: address, sockets: sockets, logger: logger)
        } catch {
            throw TrackerError.wrapping(error)
        }
    }
}
