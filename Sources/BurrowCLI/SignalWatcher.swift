import Dispatch
import Foundation

/// Turns SIGINT/SIGTERM into an async value instead of killing the process, so a stop is graceful.
/// The watcher itself stays with its creator; only `signals` (a Sendable stream) crosses into tasks.
final class SignalWatcher {
    let signals: AsyncStream<Int32>
    private let sources: [any DispatchSourceSignal]

    init(signals numbers: [Int32]) {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        self.signals = stream
        self.sources = numbers.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
    }

    deinit {
        for source in sources { source.cancel() }
    }
}
