/// Text that came from outside Burrow (torrent and file names, magnet `dn`, tracker messages, peer client
/// names, error messages quoting any of these) is shown to people only through this escaping: every
/// character a terminal or log viewer would act on instead of display becomes a visible escape, so
/// hostile text cannot move the cursor, erase or overwrite a line, forge a line of Burrow's own output,
/// or reorder what the reader sees.
///
/// Escaped: all C0 controls (NUL … US, including TAB, CR and LF), DEL, all C1 controls (U+0080–U+009F,
/// where U+009B is a one-character CSI on some terminals), the Unicode bidirectional controls (U+061C,
/// U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) and the line and paragraph separators U+2028/U+2029.
/// Every other character, combining marks included, passes untouched.
///
/// The escape is for display, not a reversible encoding: backslashes are kept as they are, so escaping
/// twice changes nothing (a message escaped where it was built can pass the log handler's escaping again).
public enum ControlCharacters {
    /// Whether `scalar` must not reach a terminal or log raw.
    public static func needEscaping(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true  // C0, DEL, C1
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true  // bidi controls
        case 0x2028, 0x2029: return true  // line and paragraph separator
        default: return false
        }
    }

    /// `text` with every character that `needEscaping` names replaced by its visible form:
    /// `\0`, `\t`, `\n`, `\r`, `\e` (ESC), otherwise `\u{hex}` (e.g. `\u{7f}`, `\u{9b}`, `\u{202e}`).
    public static func escape(_ text: some StringProtocol) -> String {
        escape(text, keepingLineFeeds: false)
    }

    /// Burrow's own multi-line text (a report) that quotes untrusted text: each line escaped, the line
    /// breaks between them kept.
    public static func escapeLines(_ text: some StringProtocol) -> String {
        escape(text, keepingLineFeeds: true)
    }

    private static func escape(_ text: some StringProtocol, keepingLineFeeds: Bool) -> String {
        func mustEscape(_ scalar: Unicode.Scalar) -> Bool { needEscaping(scalar) && !(keepingLineFeeds && scalar == "\n") }
        guard text.unicodeScalars.contains(where: mustEscape) else { return String(text) }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if mustEscape(scalar) { out.append(contentsOf: escapeSequence(for: scalar).unicodeScalars) } else { out.append(scalar) }
        }
        return String(out)
    }

    private static func escapeSequence(for scalar: Unicode.Scalar) -> String {
        switch scalar {
        case "\0": return "\\0"
        case "\t": return "\\t"
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\u{1B}": return "\\e"
        default: return "\\u{" + String(scalar.value, radix: 16) + "}"
        }
    }
}

extension StringProtocol {
    /// This text with control characters shown as visible escapes (see `ControlCharacters`).
    public var escapingControlCharacters: String { ControlCharacters.escape(self) }
}

extension DefaultStringInterpolation {
    /// `"name: \(escaping: info.name)"`: interpolates untrusted text (or an error describing it) escaped.
    public mutating func appendInterpolation<Value>(escaping value: Value) {
        appendLiteral(ControlCharacters.escape(String(describing: value)))
    }
}
