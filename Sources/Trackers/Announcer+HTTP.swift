import Logging
import Sockets

/// An HTTP or HTTPS tracker (BEP 3, with BEP 7 `peers6`, BEP 23 compact peers and BEP 24 `external ip`).
/// Stateless: the tracker id to echo comes in with each request.
public struct HTTPAnnouncer: Announcer {
    public let url: String
    private let announceURL: TrackerURL
    private let client: HTTPTrackerClient
    private let logger: Logger

    public init(
        url: String, sockets: SocketFactory, logger: Logger, configuration: HTTPAnnouncerConfiguration = .init()
    ) throws(TrackerError) {
        let parsed = try TrackerURL(parsing: url)
        guard parsed.scheme == .http || parsed.scheme == .https else {
            throw .unsupportedURL(url: url, reason: "not an http or https URL")
        }
        self.url = url
        self.announceURL = parsed
        var logger = logger
        logger[metadataKey: "tracker"] = "\(url)"
        self.logger = logger
        self.client = HTTPTrackerClient(sockets: sockets, configuration: configuration, logger: logger)
    }

    public func announce(_ request: AnnounceRequest) async throws -> AnnounceResponse {
        let target = HTTPAnnounceQuery.url(for: request, announceURL: announceURL)
        logger.debug("announcing", metadata: ["event": "\(request.event.rawValue)"])
        let reply = try await client.get(target)
        guard (200..<300).contains(reply.status.code) else {
            // Some trackers pair an error status with a proper bencoded reason; that reason is the better message.
            if let body = try? HTTPAnnounceResponseParser.decodeDictionary(reply.body), let reason = body["failure reason"]?.bytes {
                throw TrackerError.failure(reason: String(decoding: reason, as: UTF8.self))
            }
            throw TrackerError.httpStatus(code: Int(reply.status.code), reason: reply.status.reasonPhrase)
        }
        let response = try HTTPAnnounceResponseParser.parse(reply.body)
        logger.debug("tracker answered", metadata: ["peers": "\(response.peers.count)", "interval": "\(response.interval)"])
        return response
    }
}
