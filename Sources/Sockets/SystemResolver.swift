#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// getaddrinfo(3), run on the seam's thread pool. Only the socket seam calls it.
/// NOTE: the system resolver picks its own route; the tunnel guard replaces it with a bound DNS stub.
enum SystemResolver {
    static func resolve(host: String, port: Int) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if os(Linux)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let first = result else {
            throw SocketSeamError.resolutionFailed(host: host, reason: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(first) }
        var v4: [SocketAddress] = [], v6: [SocketAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            if let sa = info.pointee.ai_addr {
                switch Int32(sa.pointee.sa_family) {
                case AF_INET:
                    let addr = UnsafeRawPointer(sa).loadUnaligned(as: sockaddr_in.self)
                    let a = SocketAddress(addr, host: host)
                    if !v4.contains(a) { v4.append(a) }
                case AF_INET6:
                    let addr = UnsafeRawPointer(sa).loadUnaligned(as: sockaddr_in6.self)
                    let a = SocketAddress(addr, host: host)
                    if !v6.contains(a) { v6.append(a) }
                default: break
                }
            }
            cursor = info.pointee.ai_next
        }
        if v4.isEmpty && v6.isEmpty {
            throw SocketSeamError.resolutionFailed(host: host, reason: "no IPv4 or IPv6 address")
        }
        return v4 + v6
    }
}
