import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import Sockets

/// Knobs of the HTTP(S) announcer. Defaults suit real trackers; tests shrink the timeouts.
public struct HTTPAnnouncerConfiguration: Sendable {
    /// The whole announce: resolving, connecting to each address, TLS, redirects and reading the body.
    public var timeout: Duration
    /// Per address, so that a black-holed first address leaves time for the next one.
    public var connectTimeout: Duration
    public var maxRedirects: Int
    /// A tracker response is a few KiB; anything past this is refused.
    public var maxBodyBytes: Int
    public var userAgent: String

    public init(
        timeout: Duration = .seconds(15), connectTimeout: Duration = .seconds(5), maxRedirects: Int = 3,
        maxBodyBytes: Int = 2 * 1024 * 1024, userAgent: String = "Burrow/0.1"
    ) {
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.maxRedirects = maxRedirects
        self.maxBodyBytes = maxBodyBytes
        self.userAgent = userAgent
    }
}

/// A complete HTTP response as the tracker sent it.
struct HTTPTrackerResponse: Sendable {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders
    var body: [UInt8]
}

/// A minimal HTTP/1.1 GET client whose every socket comes from the socket seam: one request per
/// connection (`Connection: close`), redirects followed, TLS added to the seam's channel for https.
struct HTTPTrackerClient: Sendable {
    let sockets: SocketFactory
    let configuration: HTTPAnnouncerConfiguration
    let logger: Logger

    func get(_ url: TrackerURL) async throws -> HTTPTrackerResponse {
        let deadline = NIODeadline.now() + TimeAmount(configuration.timeout)
        var current = url
        var redirects = 0
        while true {
            let response = try await fetch(current, deadline: deadline)
            guard Self.isRedirect(response.status), let location = response.headers.first(name: "location") else {
                return response
            }
            guard redirects < configuration.maxRedirects else {
                throw TrackerError.tooManyRedirects(limit: configuration.maxRedirects)
            }
            redirects += 1
            let next = try current.resolving(reference: location)
            guard next.scheme != .udp else {
                throw TrackerError.unsupportedURL(url: location, reason: "an HTTP redirect cannot lead to a udp tracker")
            }
            logger.debug("tracker redirected", metadata: ["from": "\(current)", "to": "\(next)"])
            current = next
        }
    }

    static func isRedirect(_ status: HTTPResponseStatus) -> Bool {
        [301, 302, 303, 307, 308].contains(status.code)
    }

    /// One request to one URL: the host's addresses are tried in turn (IPv4 first, as the seam orders
    /// them) until one accepts the connection.
    private func fetch(_ url: TrackerURL, deadline: NIODeadline) async throws -> HTTPTrackerResponse {
        let addresses: [SocketAddress]
        do {
            addresses = try await sockets.resolve(host: url.host, port: url.port)
                .value(before: deadline, orThrow: .timeout("resolving \(url.host) took longer than \(configuration.timeout.shortText)"))
        } catch {
            throw TrackerError.wrapping(error)
        }
        var refusals = [String]()
        for address in addresses {
            try Task.checkCancellation()
            do {
                return try await exchange(url, with: address, deadline: deadline)
            } catch let refused as ConnectRefused {
                refusals.append(refused.description)
                logger.debug("tracker address unreachable", metadata: ["address": "\(address)", "error": "\(refused)"])
            }
        }
        throw TrackerError.connectionFailed("\(url.hostHeader): " + refusals.joined(separator: "; "))
    }

    /// Connecting to one address failed; the caller moves on to the next address.
    private struct ConnectRefused: Error, CustomStringConvertible {
        var description: String
    }

    private func exchange(_ url: TrackerURL, with address: SocketAddress, deadline: NIODeadline) async throws -> HTTPTrackerResponse {
        let remaining = deadline - .now()
        guard remaining > .zero else {
            throw TrackerError.timeout("no answer from \(url.hostHeader) within \(configuration.timeout.shortText)")
        }
        let tls: NIOSSLContext? = url.scheme == .https ? try TLSClientContext.shared() : nil
        // SNI carries names only; for a numeric host NIOSSL checks the certificate against the peer's IP.
        let serverName = url.hostIsIPLiteral ? nil : url.host
        let head = requestHead(for: url)
        let bodyLimit = configuration.maxBodyBytes
        let loop = sockets.group.next()
        let response = loop.makePromise(of: HTTPTrackerResponse.self)

        let connected = sockets.connectTCP(
            to: address, on: loop, timeout: min(TimeAmount(configuration.connectTimeout), remaining)
        ) { channel in
            channel.eventLoop.makeCompletedFuture {
                let pipeline = channel.pipeline.syncOperations
                if let tls { try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName)) }
                try pipeline.addHTTPClientHandlers()
                try pipeline.addHandler(HTTPResponseCollector(request: head, bodyLimit: bodyLimit, promise: response))
            }
        }
        connected.whenComplete { result in
            switch result {
            case .failure(let error):
                response.fail(ConnectRefused(description: "\(address): \(error)"))
            case .success(let channel):
                // Exactly one request per connection: whatever ends the exchange also ends the socket.
                response.futureResult.whenComplete { _ in channel.close(promise: nil) }
            }
        }
        let timeout = TrackerError.timeout("no complete HTTP response from \(url.hostHeader) within \(configuration.timeout.shortText)")
        do {
            return try await response.futureResult.value(before: deadline, orThrow: timeout)
        } catch {
            // The wait may have ended first (timeout, cancellation): make sure the socket goes too.
            response.fail(error)
            throw error
        }
    }

    private func requestHead(for url: TrackerURL) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: url.hostHeader)
        headers.add(name: "User-Agent", value: configuration.userAgent)
        headers.add(name: "Accept-Encoding", value: "identity")
        headers.add(name: "Connection", value: "close")
        return HTTPRequestHead(version: .http1_1, method: .GET, uri: url.requestTarget, headers: headers)
    }
}

/// One client TLS context for the process: building it loads the system trust roots, which is slow.
enum TLSClientContext {
    private static let context: Result<NIOSSLContext, any Error> = Result {
        try NIOSSLContext(configuration: .makeClientConfiguration())
    }

    static func shared() throws -> NIOSSLContext {
        do {
            return try context.get()
        } catch {
            throw TrackerError.connectionFailed("TLS is unavailable: \(error)")
        }
    }
}

/// Sends one GET when the connection comes up and gathers the response. Invariant: `promise` is
/// completed at most once in effect (later completions are ignored by NIO); `finished` stops reading after it.
final class HTTPResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let request: HTTPRequestHead
    private let bodyLimit: Int
    private let promise: EventLoopPromise<HTTPTrackerResponse>
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []
    private var finished = false

    init(request: HTTPRequestHead, bodyLimit: Int, promise: EventLoopPromise<HTTPTrackerResponse>) {
        self.request = request
        self.bodyLimit = bodyLimit
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(request)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        switch unwrapInboundIn(data) {
        case .head(let responseHead):
            head = responseHead
        case .body(let buffer):
            guard body.count + buffer.readableBytes <= bodyLimit else {
                finish(context: context, with: .failure(TrackerError.responseTooLarge(limitBytes: bodyLimit)))
                return
            }
            body.append(contentsOf: buffer.readableBytesView)
        case .end:
            guard let head else {
                finish(context: context, with: .failure(TrackerError.malformedResponse("HTTP response without a status line")))
                return
            }
            finish(context: context, with: .success(HTTPTrackerResponse(status: head.status, headers: head.headers, body: body)))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let trackerError: TrackerError
        if let parserError = error as? HTTPParserError {
            trackerError = .malformedResponse("not a valid HTTP response (\(parserError))")
        } else if let tlsError = error as? NIOSSLError {
            trackerError = .connectionFailed("TLS: \(tlsError)")
        } else {
            trackerError = .connectionFailed(String(describing: error))
        }
        finish(context: context, with: .failure(trackerError))
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context: context, with: .failure(TrackerError.connectionFailed("the tracker closed the connection before the response was complete")))
        context.fireChannelInactive()
    }

    private func finish(context: ChannelHandlerContext, with result: Result<HTTPTrackerResponse, any Error>) {
        guard !finished else { return }
        finished = true
        promise.completeWith(result)
        context.close(promise: nil)
    }
}
