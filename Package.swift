// swift-tools-version: 6.0
import PackageDescription

// Module map (each folder under Sources/ is one module; see README "Architecture"):
//   SafeText      escaping of untrusted text shown to people     (no dependencies)
//   Bencode       strict bencode codec                          (no dependencies)
//   TorrentModel  info hash, metainfo, magnet links, bitfields   (Bencode, Crypto)
//   Sockets       THE socket seam: every socket is opened here   (NIO)
//   PeerWire      peer protocol framing and messages             (NIO, TorrentModel)
//   Trackers      HTTP(S) and UDP announcers, tiers              (Sockets)
//   Storage       files on disk, piece hashing, resume data      (SystemPackage, NIO thread pool)
//   Engine        torrent sessions: picker, choker, peers        (everything above)
//   Diagnostics   burrow doctor: setup checks                    (Sockets, NIO)
//   Firewall      nftables table / pf anchor: second leak layer   (Sockets)
//   Config        typed settings: TOML file + environment + flags  (TOMLKit, Sockets, Firewall)
//   BurrowCLI     the `burrow` executable
let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

// Release link of the `burrow` executable, tuned for a small resident set (build it with
// `swift build -c release --static-swift-stdlib --product burrow`, as scripts/burrow does):
//   lld + pack-relative-relocs  DT_RELR: the 2.5 MB table of relative relocations shrinks to ~20 KB,
//                               so ld.so no longer pages it in at every start (glibc >= 2.36)
//   --no-export-dynamic         the static stdlib link exports every Swift symbol of ours (0.7 MB
//                               .dynsym + 0.2 MB .gnu.hash, paged in by ld.so); nothing dlsym()s them
//   symbol ordering             linker/burrow.order (scripts/link-order.sh) lists the functions a start,
//                               an idle wait and a download run, so they share pages instead of each
//                               pulling a 64 KiB fault-around window of cold code into RSS
// Each flag is a pure layout/encoding choice: PIE, RELRO and NX stay as they were. ELF only: the macOS
// linker keeps its defaults.
let releaseLink: [LinkerSetting] = [
    .unsafeFlags([
        "-use-ld=lld",
        "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
        "-Xlinker", "--no-export-dynamic",
        "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/linker/burrow.order",
        "-Xlinker", "--no-warn-symbol-ordering",
    ], .when(platforms: [.linux], configuration: .release)),
]

let package = Package(
    name: "Burrow",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "burrow", targets: ["BurrowCLI"]),
        // For the fuzz targets in Fuzz/ (a package of its own, see README "Fuzzing"), which can only link
        // the modules through a product. Not an API promise to anyone else.
        .library(name: "BurrowModules", targets: ["Bencode", "TorrentModel", "PeerWire", "Trackers", "Sockets"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
    ],
    targets: [
        .target(name: "SafeText", swiftSettings: strict),
        .target(name: "Bencode", swiftSettings: strict),
        .target(
            name: "TorrentModel",
            dependencies: ["Bencode", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict),
        .target(
            name: "Sockets",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .target(
            name: "PeerWire",
            dependencies: [
                "Bencode", "TorrentModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict),
        .target(
            name: "Trackers",
            dependencies: [
                "Bencode", "TorrentModel", "Sockets",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .target(
            name: "Storage",
            dependencies: [
                "TorrentModel",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict),
        .target(
            name: "Engine",
            dependencies: [
                "Bencode", "TorrentModel", "Sockets", "PeerWire", "Trackers", "Storage", "Diagnostics",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Collections", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .target(
            name: "Diagnostics",
            dependencies: [
                "Sockets",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .target(
            name: "Firewall",
            dependencies: ["Sockets", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        .target(
            name: "Config",
            dependencies: ["Sockets", "Firewall", .product(name: "TOMLKit", package: "TOMLKit"),
                           .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict),
        .executableTarget(
            name: "BurrowCLI",
            dependencies: [
                "Engine", "TorrentModel", "Sockets", "Diagnostics", "Firewall", "SafeText", "Storage", "Config",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict,
            linkerSettings: releaseLink),
        .testTarget(name: "SafeTextTests", dependencies: ["SafeText"], swiftSettings: strict),
        .testTarget(name: "BencodeTests", dependencies: ["Bencode"], swiftSettings: strict),
        .testTarget(name: "TorrentModelTests", dependencies: ["TorrentModel", "Bencode"], swiftSettings: strict),
        .testTarget(
            name: "PeerWireTests",
            dependencies: ["PeerWire", "TorrentModel", "Bencode",
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOEmbedded", package: "swift-nio")],
            swiftSettings: strict),
        .testTarget(
            name: "TrackersTests",
            dependencies: ["Trackers", "Sockets", "TorrentModel", "Bencode",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOHTTP1", package: "swift-nio")],
            swiftSettings: strict),
        .testTarget(
            name: "StorageTests",
            dependencies: ["Storage", "TorrentModel",
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                           .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict),
        .testTarget(
            name: "EngineTests",
            dependencies: ["Engine", "TorrentModel", "Storage", "PeerWire", "Sockets",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: strict),
        .testTarget(name: "ArchitectureTests", swiftSettings: strict),
        .testTarget(
            name: "SocketsTests",
            dependencies: ["Sockets",
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        .testTarget(
            name: "DiagnosticsTests",
            dependencies: ["Diagnostics", "Sockets",
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
            swiftSettings: strict),
        .testTarget(
            name: "FirewallTests",
            dependencies: ["Firewall", "Sockets", .product(name: "Logging", package: "swift-log"),
                           .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict),
        .testTarget(
            name: "ConfigTests",
            dependencies: ["Config", "Firewall", "Sockets", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict),
        .testTarget(
            name: "CLITests",
            dependencies: ["BurrowCLI", "Config", "Firewall", "Sockets", "SafeText", "TorrentModel", "Bencode", "Engine",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOHTTP1", package: "swift-nio")],
            swiftSettings: strict),
    ]
)
