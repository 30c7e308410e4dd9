// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "TrafficJamz",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "jamzd", targets: ["jamzd"]),
        .executable(name: "jamz", targets: ["jamz"]),
        .executable(name: "jamz-bench", targets: ["jamz-bench"]),
        .library(name: "JamzSim", targets: ["JamzSim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
    ],
    targets: [
        // C libraries: a modulemap and a header each; static inline shims only where Swift cannot import.
        .systemLibrary(name: "CALSA", pkgConfig: "alsa", providers: [.apt(["libasound2-dev"])]),
        .systemLibrary(name: "CMPG123", pkgConfig: "libmpg123", providers: [.apt(["libmpg123-dev"])]),
        .systemLibrary(name: "CGPS", pkgConfig: "libgps", providers: [.apt(["libgps-dev"])]),
        .systemLibrary(name: "CMosquitto", providers: [.apt(["libmosquitto-dev"])]),
        .systemLibrary(name: "CQRencode", providers: [.apt(["libqrencode-dev"])]),
        // BlueZ's socket headers (HCI control channel, LE L2CAP): structs and constants only, no link.
        .systemLibrary(name: "CBluetooth", providers: [.apt(["libbluetooth-dev"])]),
        // Linux GPIO character device (uAPI v2) and evdev: ioctl numbers, flags and the kernel's
        // struct layouts, from linux-libc-dev's headers.
        .target(name: "CLinuxInput"),
        // rtnetlink's structs and constants (the LAN link's interface notices), from linux-libc-dev.
        .target(name: "CLinuxNet"),

        .target(name: "JamzCore", dependencies: [.product(name: "RealModule", package: "swift-numerics")], swiftSettings: strict),
        // POSIX plumbing in one place: the EINTR retry, named threads, durable file replace.
        .target(name: "JamzPlatform", swiftSettings: strict),
        .target(name: "JamzSim", dependencies: ["JamzCore"], swiftSettings: strict),
        .target(name: "JamzNet", dependencies: [
            "JamzCore", "JamzPlatform", "CLinuxNet", "CMosquitto", "CBluetooth",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        .target(name: "JamzStore", dependencies: [
            "JamzCore",
            .product(name: "GRDB", package: "GRDB.swift"),
        ], swiftSettings: strict),
        .target(name: "JamzAudio", dependencies: [
            "JamzCore", "JamzPlatform", "CALSA", "CMPG123",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        // The music library above the store: import (probe, hash), the content-addressed cache.
        .target(name: "JamzLibrary", dependencies: [
            "JamzCore", "JamzPlatform", "JamzStore", "JamzAudio",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "GRDB", package: "GRDB.swift"),
        ], swiftSettings: strict),
        .target(name: "JamzGPS", dependencies: [
            "JamzCore", "JamzPlatform", "CGPS",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        .target(name: "JamzControls", dependencies: [
            "JamzCore", "JamzPlatform", "CLinuxInput",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        .target(name: "JamzDaemon", dependencies: [
            "JamzCore", "JamzPlatform", "JamzStore", "JamzAudio", "JamzLibrary", "JamzNet", "JamzGPS", "JamzControls", "CQRencode",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "TOMLKit", package: "TOMLKit"),
            .product(name: "GRDB", package: "GRDB.swift"),
        ], swiftSettings: strict),
        .executableTarget(name: "jamzd", dependencies: [
            "JamzDaemon",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        .target(name: "JamzClient", dependencies: ["JamzCore", "JamzPlatform"], swiftSettings: strict),
        .executableTarget(name: "jamz", dependencies: [
            "JamzCore", "JamzClient",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: strict),
        .executableTarget(name: "jamz-bench", dependencies: [
            "JamzCore", "JamzPlatform", "JamzClient", "JamzSim", "JamzGPS", "JamzStore", "JamzAudio", "JamzNet", "JamzTestSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),

        .target(name: "JamzTestSupport", path: "Tests/JamzTestSupport"),
        .testTarget(name: "JamzCoreTests", dependencies: ["JamzCore", "JamzTestSupport"]),
        .testTarget(name: "JamzSimTests", dependencies: ["JamzSim", "JamzCore"]),
        .testTarget(name: "JamzNetTests", dependencies: ["JamzNet", "JamzCore", "JamzTestSupport", "CLinuxNet",
                                                      .product(name: "NIOPosix", package: "swift-nio"),
                                                      .product(name: "NIOCore", package: "swift-nio"),
                                                      .product(name: "Logging", package: "swift-log"),
                                                      .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "JamzStoreTests", dependencies: ["JamzStore"]),
        .testTarget(name: "JamzAudioTests", dependencies: ["JamzAudio", "JamzLibrary", "JamzStore", "CALSA", "JamzTestSupport"]),
        .testTarget(name: "JamzLibraryTests", dependencies: ["JamzLibrary", "JamzAudio", "JamzStore", "JamzCore", "JamzTestSupport",
                                                          .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "JamzGPSTests", dependencies: ["JamzGPS", "JamzCore", "JamzStore", "JamzAudio", "JamzTestSupport",
                                                      .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "JamzControlsTests", dependencies: ["JamzControls", "JamzCore", "CLinuxInput",
                                                           .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "JamzDaemonTests", dependencies: ["JamzDaemon", "JamzPlatform", "JamzAudio", "JamzLibrary", "JamzClient", "JamzNet", "JamzControls", "JamzTestSupport", "CLinuxInput", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")]),
    ]
)
