import NIOCore

/// A stub resolver that never uses the system resolver: it asks the configured DNS servers directly, over
/// sockets from the `SocketFactory`, so every query leaves through the tunnel like any other traffic.
///
/// A and AAAA are asked in parallel; each tries every server in order, `attempts` rounds, `timeout` per
/// try, over UDP with a fresh random port and id per try, falling back to TCP when the answer is truncated.
public final class DNSResolver: Sendable {
    public let servers: [SocketAddress]
    public let timeout: TimeAmount
    public let attempts: Int
    private let sockets: SocketFactory

    public init(servers: [SocketAddress], sockets: SocketFactory, timeout: TimeAmount = .seconds(2), attempts: Int = 2) {
        self.servers = servers
        self.sockets = sockets
        self.timeout = timeout
        self.attempts = max(1, attempts)
    }

    /// Uses the `nameserver` lines of resolv.conf. Throws if the file cannot be read or names no usable server.
    public convenience init(resolvConfAt path: String = "/etc/resolv.conf", sockets: SocketFactory) throws {
        let conf = try ResolvConf.load(path: path)
        guard !conf.nameservers.isEmpty else {
            let detail = conf.ignored.isEmpty ? "" : " (" + conf.ignored.joined(separator: "; ") + ")"
            throw ResolvConfError(path: path, reason: "has no usable nameserver line\(detail)")
        }
        self.init(servers: conf.nameservers, sockets: sockets)
    }

    /// Addresses for `host` with `port`, IPv4 first. A numeric address is returned as is, without a query.
    public func resolve(host: String, port: Int, on eventLoop: (any EventLoop)? = nil) -> EventLoopFuture<[SocketAddress]> {
        let loop = eventLoop ?? sockets.group.next()
        if let numeric = try? SocketAddress(ipAddress: host, port: port) {
            return loop.makeSucceededFuture([numeric])
        }
        guard !servers.isEmpty else { return loop.makeFailedFuture(DNSResolutionError.noServers(host: host)) }
        let name: DNSName
        do {
            name = try DNSName(parsing: host)
        } catch {
            return loop.makeFailedFuture(DNSResolutionError.invalidName(error))
        }
        let v4 = lookup(name, type: .a, on: loop)
        let v6 = lookup(name, type: .aaaa, on: loop)
        return v4.and(v6).flatMapThrowing { v4, v6 in
            try Self.combine(host: host, port: port, v4: v4, v6: v6)
        }
    }

    // MARK: - One record type

    /// How asking for one record type ended. Definitive answers stop the search; failures move on.
    enum LookupOutcome {
        case addresses([[UInt8]])
        case nameDoesNotExist(server: SocketAddress)
        case noData(server: SocketAddress)
        case failed([String])
    }

    private func lookup(_ name: DNSName, type: DNSRecordType, on loop: any EventLoop) -> EventLoopFuture<LookupOutcome> {
        let tries = (0..<attempts).flatMap { _ in servers }
        return attempt(tries[...], name: name, type: type, failures: [], on: loop)
    }

    private func attempt(
        _ tries: ArraySlice<SocketAddress>, name: DNSName, type: DNSRecordType, failures: [String],
        on loop: any EventLoop
    ) -> EventLoopFuture<LookupOutcome> {
        guard let server = tries.first else { return loop.makeSucceededFuture(.failed(failures)) }
        return query(name, type: type, server: server, on: loop)
            .flatMapThrowing { response -> LookupOutcome in
                switch response.responseCode {
                case .noError:
                    let found = response.addresses(for: name, type: type).addresses
                    return found.isEmpty ? .noData(server: server) : .addresses(found)
                case .nameError:
                    return .nameDoesNotExist(server: server)
                default:
                    throw DNSTryFailure(reason: "\(server.dnsServerText) \(type): answered \(response.responseCode)")
                }
            }
            .flatMapError { error in
                let reason = (error as? DNSTryFailure)?.reason ?? "\(server.dnsServerText) \(type): \(error)"
                return self.attempt(tries.dropFirst(), name: name, type: type, failures: failures + [reason], on: loop)
            }
    }

    // MARK: - One query

    private func query(
        _ name: DNSName, type: DNSRecordType, server: SocketAddress, on loop: any EventLoop
    ) -> EventLoopFuture<DNSResponse> {
        queryUDP(name, type: type, server: server, on: loop).flatMap { response in
            response.isTruncated
                ? self.queryTCP(name, type: type, server: server, on: loop)
                : loop.makeSucceededFuture(response)
        }
    }

    private func expectation(_ name: DNSName, type: DNSRecordType, server: SocketAddress) -> DNSExpectation {
        DNSExpectation(
            id: UInt16.random(in: .min ... .max), question: DNSQuestion(name: name, type: type, recordClass: 1),
            server: server)
    }

    private func queryUDP(
        _ name: DNSName, type: DNSRecordType, server: SocketAddress, on loop: any EventLoop
    ) -> EventLoopFuture<DNSResponse> {
        let expected = expectation(name, type: type, server: server)
        let promise = loop.makePromise(of: DNSResponse.self)
        let timer = scheduleTimeout(promise, expected: expected, transport: "UDP", on: loop)
        let opened = sockets.openUDP(toReach: server, on: loop) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.syncOptions?.setOption(
                    .recvAllocator,
                    value: FixedSizeRecvByteBufferAllocator(capacity: DNSDatagramHandler.maximumResponseSize + 1))
                try channel.pipeline.syncOperations.addHandler(
                    DNSDatagramHandler(expectation: expected, promise: promise))
            }
        }
        opened.whenSuccess { channel in
            let query = DNSMessageCodec.encodeQuery(id: expected.id, name: name, type: type)
            let envelope = AddressedEnvelope(remoteAddress: server, data: channel.allocator.buffer(bytes: query))
            channel.writeAndFlush(envelope).whenFailure { error in
                promise.fail(DNSTryFailure(reason: "\(server.dnsServerText) \(type): sending failed: \(error)"))
            }
            promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
        opened.whenFailure { error in
            promise.fail(DNSTryFailure(reason: "\(server.dnsServerText) \(type): no socket: \(error)"))
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        return promise.futureResult
    }

    private func queryTCP(
        _ name: DNSName, type: DNSRecordType, server: SocketAddress, on loop: any EventLoop
    ) -> EventLoopFuture<DNSResponse> {
        let expected = expectation(name, type: type, server: server)
        let promise = loop.makePromise(of: DNSResponse.self)
        let timer = scheduleTimeout(promise, expected: expected, transport: "TCP", on: loop)
        let connected = sockets.connectTCP(to: server, on: loop, timeout: timeout) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(DNSStreamFrameDecoder()))
                try channel.pipeline.syncOperations.addHandler(DNSStreamHandler(expectation: expected, promise: promise))
            }
        }
        connected.whenSuccess { channel in
            let query = DNSMessageCodec.encodeQuery(id: expected.id, name: name, type: type)
            var framed = channel.allocator.buffer(capacity: query.count + 2)
            framed.writeInteger(UInt16(query.count))
            framed.writeBytes(query)
            channel.writeAndFlush(framed, promise: nil)
            promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
        connected.whenFailure { error in
            promise.fail(DNSTryFailure(reason: "\(server.dnsServerText) \(type) over TCP: \(error)"))
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        return promise.futureResult
    }

    private func scheduleTimeout(
        _ promise: EventLoopPromise<DNSResponse>, expected: DNSExpectation, transport: String, on loop: any EventLoop
    ) -> Scheduled<Void> {
        let seconds = Double(timeout.nanoseconds) / 1_000_000_000
        let reason = "\(expected.server.dnsServerText) \(expected.question.type) over \(transport): timed out after \(seconds.formatted()) s"
        return loop.scheduleTask(in: timeout) {
            promise.fail(DNSTryFailure(reason: reason))
        }
    }

    // MARK: - Both record types

    static func combine(host: String, port: Int, v4: LookupOutcome, v6: LookupOutcome) throws -> [SocketAddress] {
        var result: [SocketAddress] = []
        for case .addresses(let found) in [v4, v6] {
            for raw in found {
                if let address = try? SocketAddress(packedIPAddress: ByteBuffer(bytes: raw), port: port),
                   !result.contains(address) {
                    result.append(address)
                }
            }
        }
        if !result.isEmpty { return result }
        for case .nameDoesNotExist(let server) in [v4, v6] {
            throw DNSResolutionError.nameDoesNotExist(host: host, server: server.dnsServerText)
        }
        if case .noData(let server) = v4, case .noData = v6 {
            throw DNSResolutionError.noAddresses(host: host, server: server.dnsServerText)
        }
        var failures: [String] = []
        for case .failed(let reasons) in [v4, v6] { failures += reasons }
        if failures.isEmpty, case .noData(let server) = v4 {
            throw DNSResolutionError.noAddresses(host: host, server: server.dnsServerText)
        }
        throw DNSResolutionError.allServersFailed(host: host, failures: failures)
    }
}

private extension Double {
    /// "2" for whole numbers, "0.5" otherwise.
    func formatted() -> String {
        self == rounded() ? String(Int(self)) : String(self)
    }
}
