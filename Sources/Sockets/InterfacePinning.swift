import NIOCore

/// The kernel-level "this socket may only use interface N" option, per platform.
/// Linux: SO_BINDTOIFINDEX (since 5.7). macOS: IP_BOUND_IF / IPV6_BOUND_IF.
enum InterfacePinning {
    static func option(ipv6: Bool) -> ChannelOptions.Types.SocketOption {
        #if os(Linux)
        // SOL_SOCKET / SO_BINDTOIFINDEX (62): pins both the route lookup and the receive path.
        return ChannelOptions.Types.SocketOption(level: .socket, name: NIOBSDSocket.Option(rawValue: 62))
        #else
        // IPPROTO_IP / IP_BOUND_IF (25), IPPROTO_IPV6 / IPV6_BOUND_IF (125).
        return ipv6
            ? ChannelOptions.Types.SocketOption(level: .ipv6, name: NIOBSDSocket.Option(rawValue: 125))
            : ChannelOptions.Types.SocketOption(level: .ip, name: NIOBSDSocket.Option(rawValue: 25))
        #endif
    }
}
