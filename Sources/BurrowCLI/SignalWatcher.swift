#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The write end of the self-pipe: the only thing the signal handler touches (write(2) is
/// async-signal-safe). Set once, before the handler is installed.
nonisolated(unsafe) private var signalPipeWriteEnd: Int32 = -1

/// Turns SIGINT/SIGTERM into an async value instead of killing the process, so a stop is graceful.
/// A process-wide handler writes the signal number into a pipe; a dedicated thread reads it. This works
/// whichever thread the kernel delivers the signal to.
final class SignalWatcher {
    let signals: AsyncStream<Int32>

    init(signals numbers: [Int32]) {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        self.signals = stream
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { return }
        let readEnd = ends[0]
        signalPipeWriteEnd = ends[1]
        for number in numbers {
            var action = sigaction()
            #if canImport(Glibc)
            action.__sigaction_handler.sa_handler = { signal in
                var byte = UInt8(truncatingIfNeeded: signal)
                _ = write(signalPipeWriteEnd, &byte, 1)
            }
            #else
            action.__sigaction_u.__sa_handler = { signal in
                var byte = UInt8(truncatingIfNeeded: signal)
                _ = write(signalPipeWriteEnd, &byte, 1)
            }
            #endif
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            sigaction(number, &action, nil)
        }
        let reader = Thread {
            var byte: UInt8 = 0
            while read(readEnd, &byte, 1) == 1 { continuation.yield(Int32(byte)) }
        }
        reader.name = "burrow-signals"
        reader.start()
    }
}
