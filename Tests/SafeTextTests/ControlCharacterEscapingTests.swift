import SafeText
import Testing

@Suite struct ControlCharacterEscapingTests {
    @Test(arguments: 0x00...0x1F)
    func everyC0ControlIsEscaped(value: UInt32) throws {
        let scalar = try #require(Unicode.Scalar(value))
        let escaped = ControlCharacters.escape("a" + String(scalar) + "b")
        #expect(escaped.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F }, "\(escaped.debugDescription)")
        #expect(escaped.hasPrefix("a\\") && escaped.hasSuffix("b"))
    }

    @Test func namedEscapesForTheCommonControls() {
        #expect("\0".escapingControlCharacters == "\\0")
        #expect("\t".escapingControlCharacters == "\\t")
        #expect("\n".escapingControlCharacters == "\\n")
        #expect("\r".escapingControlCharacters == "\\r")
        #expect("\u{1B}".escapingControlCharacters == "\\e")
        #expect("\u{7}".escapingControlCharacters == "\\u{7}")
        #expect("\u{1F}".escapingControlCharacters == "\\u{1f}")
        // CR+LF is one Character but two scalars: both are escaped.
        #expect("a\r\nb".escapingControlCharacters == "a\\r\\nb")
    }

    @Test func deleteAndEveryC1ControlAreEscaped() throws {
        #expect("\u{7F}".escapingControlCharacters == "\\u{7f}")
        for value in UInt32(0x80)...0x9F {
            let scalar = try #require(Unicode.Scalar(value))
            #expect(String(scalar).escapingControlCharacters == "\\u{\(String(value, radix: 16))}")
        }
        #expect("\u{9B}2K".escapingControlCharacters == "\\u{9b}2K")
    }

    @Test func bidiControlsAndLineSeparatorsAreEscaped() {
        for value: UInt32 in [0x061C, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E,
                              0x2066, 0x2067, 0x2068, 0x2069, 0x2028, 0x2029] {
            let text = String(Unicode.Scalar(value)!)
            #expect(text.escapingControlCharacters == "\\u{\(String(value, radix: 16))}")
        }
        // "Trojan source": the right-to-left override would show "exe.txt" as "txt.exe".
        #expect("evil\u{202E}txt.exe".escapingControlCharacters == "evil\\u{202e}txt.exe")
    }

    @Test func printableUnicodePassesUntouched() {
        let samples = ["", "plain ASCII ~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./", "Ünïcödé – “quotes” …",
                       "日本語のファイル名.mkv", "עברית ו-العربية", "emoji 👩‍👩‍👧‍👦 🇨🇭", "\u{A0}non-breaking\u{AD}soft",
                       "\u{200B}zero width\u{200D}joiner", "\u{FFFD} replacement", "\u{10FFFF}"]
        for text in samples { #expect(text.escapingControlCharacters == text) }
    }

    @Test func combiningMarksStayAttached() {
        let decomposed = "e\u{301}te\u{301}"  // "été" with combining acute accents
        #expect(decomposed.escapingControlCharacters == decomposed)
        // A combining mark on a control character: the control is escaped, the mark is kept.
        #expect("\u{1B}\u{301}x".escapingControlCharacters == "\\e\u{301}x")
        #expect("\n\u{20DD}".escapingControlCharacters == "\\n\u{20DD}")
    }

    @Test func invalidUTF8CannotSmuggleRawBytes() {
        // Raw C1 and ESC bytes inside invalid sequences: decoding repairs them to U+FFFD, and whatever
        // decodes to a control character is escaped, so no raw 0x1B or 0x9B byte survives.
        let bytes: [UInt8] = [0x9B, 0x32, 0x4B, 0xC2, 0x1B, 0xE2, 0x80, 0xFF, 0xC2, 0x9B, 0xED, 0xA0, 0x80, 0x0A]
        let escaped = String(decoding: bytes, as: UTF8.self).escapingControlCharacters
        let out = Array(escaped.utf8)
        #expect(!out.contains(0x1B) && !out.contains(0x0A))
        #expect(!zip(out, out.dropFirst()).contains { $0 == 0xC2 && (0x80...0x9F).contains($1) })
        #expect(escaped == "\u{FFFD}2K\u{FFFD}\\e\u{FFFD}\u{FFFD}\\u{9b}\u{FFFD}\u{FFFD}\u{FFFD}\\n")
    }

    @Test func escapingTwiceChangesNothing() {
        let hostile = "x\u{1B}[2K\rburrow: download complete\n\u{9B}\u{202E}"
        let once = hostile.escapingControlCharacters
        #expect(once == "x\\e[2K\\rburrow: download complete\\n\\u{9b}\\u{202e}")
        #expect(once.escapingControlCharacters == once)
    }

    @Test func interpolationEscapesAnyValue() {
        struct Failure: Error, CustomStringConvertible { var description: String { "bad\rname" } }
        let error: any Error = Failure()
        #expect("error: \(escaping: error)" == "error: bad\\rname")
        #expect("name: \(escaping: "a\nb")" == "name: a\\nb")
        #expect("sub: \(escaping: "a\u{1B}b".dropFirst())" == "sub: \\eb")
    }
}

@Suite struct EscapeLinesTests {
    @Test func keepsLineBreaksAndEscapesWithinLines() {
        #expect(ControlCharacters.escapeLines("✓ one\n✗ two: tracker http://x/\u{1B}[2K\r\n") == "✓ one\n✗ two: tracker http://x/\\e[2K\\r\n")
        #expect(ControlCharacters.escapeLines("") == "")
        #expect(ControlCharacters.escapeLines("\n\n") == "\n\n")
    }
}
