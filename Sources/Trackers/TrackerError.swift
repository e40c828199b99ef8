/// Why an announce did not produce a usable answer. Every case says what was wrong in words a user can act on.
public enum TrackerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The tracker refused the announce: HTTP `failure reason`, or a UDP error action (3) with its message.
    case failure(reason: String)
    /// The tracker answered, but not with something we can use; the text names the problem
    /// (e.g. "peers: length 7 is not a multiple of 6").
    case malformedResponse(String)
    /// An HTTP status other than 2xx, with no bencoded failure reason in the body.
    case httpStatus(code: Int, reason: String)
    /// Nothing usable arrived in time; the text says what we were waiting for.
    case timeout(String)
    /// The announce URL cannot be used: bad syntax, or a scheme we do not speak.
    case unsupportedURL(url: String, reason: String)
    /// Name resolution, connecting, TLS or the socket itself failed.
    case connectionFailed(String)
    /// More HTTP redirects than we follow.
    case tooManyRedirects(limit: Int)
    /// The HTTP body grew past the cap; a tracker response is never legitimately this large.
    case responseTooLarge(limitBytes: Int)

    public var description: String {
        switch self {
        case .failure(let reason): return "tracker refused the announce: \(reason)"
        case .malformedResponse(let what): return "malformed tracker response: \(what)"
        case .httpStatus(let code, let reason): return "tracker answered HTTP \(code) \(reason)"
        case .timeout(let what): return "tracker timed out: \(what)"
        case .unsupportedURL(let url, let reason): return "unusable tracker URL \"\(url)\": \(reason)"
        case .connectionFailed(let reason): return "could not reach tracker: \(reason)"
        case .tooManyRedirects(let limit): return "tracker redirected more than \(limit) times"
        case .responseTooLarge(let limit): return "tracker response is larger than \(limit) bytes"
        }
    }

    /// Maps anything thrown below us (seam, NIO, TLS) to a tracker error; cancellation passes through untouched.
    static func wrapping(_ error: any Error) -> any Error {
        if error is TrackerError || error is CancellationError { return error }
        return TrackerError.connectionFailed(String(describing: error))
    }
}
