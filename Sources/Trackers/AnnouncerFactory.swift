import Logging
import Sockets

/// Settings for every announcer a factory or `TrackerTiers` makes.
public struct AnnouncerConfiguration: Sendable {
    public var http: HTTPAnnouncerConfiguration
    public var udp: UDPAnnouncerConfiguration

    public init(http: HTTPAnnouncerConfiguration = .init(), udp: UDPAnnouncerConfiguration = .init()) {
        self.http = http
        self.udp = udp
    }
}

/// Picks the announcer for a URL's scheme.
public enum AnnouncerFactory {
    /// Throws `TrackerError.unsupportedURL` for malformed URLs and schemes other than http, https and udp.
    public static func make(
        url: String, sockets: SocketFactory, logger: Logger, configuration: AnnouncerConfiguration = .init()
    ) throws -> any Announcer {
        switch try TrackerURL(parsing: url).scheme {
        case .http, .https:
            return try HTTPAnnouncer(url: url, sockets: sockets, logger: logger, configuration: configuration.http)
        case .udp:
            return try UDPAnnouncer(url: url, sockets: sockets, logger: logger, configuration: configuration.udp)
        }
    }
}
