import Logging
import SafeText

/// Wraps the handler that prints Burrow's log so that nothing untrusted reaches it raw: the message,
/// every metadata key and value (logger, provider and per-call metadata alike) and the attached error
/// are escaped (`ControlCharacters`) before the wrapped handler sees them. Log lines quote torrent names,
/// tracker messages, peer client names and errors that embed them, and this catches the ones nobody
/// thought of.
///
/// Invariant: the wrapped handler's own metadata and provider stay empty; this wrapper keeps them and
/// hands the wrapped handler one escaped set per event, so no unescaped value can be merged in later.
struct EscapingLogHandler<Wrapped: LogHandler>: LogHandler {
    private var wrapped: Wrapped
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(_ wrapped: Wrapped) {
        var wrapped = wrapped
        self.metadata = wrapped.metadata
        self.metadataProvider = wrapped.metadataProvider
        wrapped.metadata = [:]
        wrapped.metadataProvider = nil
        self.wrapped = wrapped
    }

    var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        if let error = event.error {
            merged["error.message"] = "\(error)"
            merged["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        var escaped = event
        escaped.message = Logger.Message(stringLiteral: event.message.description.escapingControlCharacters)
        escaped.error = nil
        escaped.metadata = merged.isEmpty ? nil : Self.escape(merged)
        wrapped.log(event: escaped)
    }

    static func escape(_ metadata: Logger.Metadata) -> Logger.Metadata {
        // Two keys may escape alike ("a\n" and a literal "a\\n"); either value will do.
        Dictionary(metadata.map { key, value in (key.escapingControlCharacters, escape(value)) }) { first, _ in first }
    }

    static func escape(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): return .string(text.escapingControlCharacters)
        case .stringConvertible(let convertible): return .string(convertible.description.escapingControlCharacters)
        case .array(let values): return .array(values.map(escape))
        case .dictionary(let entries): return .dictionary(escape(entries))
        }
    }
}

extension EscapingLogHandler where Wrapped == StreamLogHandler {
    /// Burrow's log: standard error, at `level`, escaped.
    static func standardError(label: String, level: Logger.Level) -> Self {
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return EscapingLogHandler(handler)
    }
}
