// swift-tools-version:5.4
// 5.4, not 6.x, on purpose: from tools 5.5 on, SwiftPM renames an executable's entry point to
// `<module>_main` and links it with `--defsym main=<module>_main`, which fails for fuzz targets (they have
// no Swift entry point; libFuzzer's main() must be the one linked in). The harness code is small and
// checked with the Swift 6 compiler all the same; the parsers it links keep their own package's settings.
import PackageDescription

// Burrow's libFuzzer targets: a package of its own, so the normal `swift build` / `swift test` of the root
// package never compiles them. It depends on the root package by path and links the parser modules through
// its `BurrowModules` library product. Build and run them with scripts/fuzz.sh (README "Fuzzing"), which
// passes the flags every module needs:
//   -sanitize=fuzzer,address   coverage instrumentation + AddressSanitizer in every module, libFuzzer's
//                              main() linked into each executable
//   -parse-as-library          each target's main.swift only defines LLVMFuzzerTestOneInput, so Swift must
//                              not emit a main() of its own
//   -enable-testing            the targets `@testable import` parsers that are internal to their module
//                              (tracker, netlink), so no API is widened for the fuzzer's sake
// Each executable runs one parser on libFuzzer's input, checks the properties that parser promises
// (round trips, consistency between two decoders) and traps when one fails. A thrown error is an expected
// outcome; a trap, an out-of-bounds access, a leak or a hang is a finding.
func fuzzTarget(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["FuzzSupport", .product(name: "BurrowModules", package: "Burrow")] + dependencies)
}

let package = Package(
    name: "BurrowFuzz",
    dependencies: [
        .package(name: "Burrow", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
    ],
    targets: [
        .target(name: "FuzzSupport"),
        fuzzTarget("FuzzBencode", []),
        fuzzTarget("FuzzMetainfo", []),
        fuzzTarget("FuzzMagnet", []),
        fuzzTarget("FuzzPeerWire", [.product(name: "NIOCore", package: "swift-nio"),
                                    .product(name: "NIOEmbedded", package: "swift-nio")]),
        fuzzTarget("FuzzExtensionMessages", [.product(name: "NIOCore", package: "swift-nio"),
                                             .product(name: "Crypto", package: "swift-crypto")]),
        fuzzTarget("FuzzHTTPTracker", []),
        fuzzTarget("FuzzUDPTracker", []),
        fuzzTarget("FuzzDNS", []),
        fuzzTarget("FuzzNetlink", []),
    ]
)
