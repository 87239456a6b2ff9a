// swift-tools-version:6.0
import PackageDescription

// Sandboxed children link only KeywaySystem, KeywayWire, KeywayAudit and KeywayPrivsep: no Foundation,
// no Dispatch, no async runtime (each widens the seccomp allowlist).
let package = Package(
    name: "keyway",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "keywayd", targets: ["keywayd"]),
        .executable(name: "keyway-ike", targets: ["keyway-ike"]),
        .executable(name: "keyway-datapath", targets: ["keyway-datapath"]),
        .executable(name: "keyway-monitor", targets: ["keyway-monitor"]),
        .executable(name: "keyway", targets: ["keyway"]),
        .executable(name: "keyway-sandbox-check", targets: ["keyway-sandbox-check"]),
        .executable(name: "keyway-bench", targets: ["keyway-bench"]),
        .library(name: "KeywayWire", targets: ["KeywayWire"]),
        .library(name: "KeywayConfig", targets: ["KeywayConfig"]),
        .library(name: "KeywayIKE", targets: ["KeywayIKE"]),
        .library(name: "KeywayCrypto", targets: ["KeywayCrypto"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
    ],
    targets: [
        // System libraries, found by pkg-config (Debian: libssl-dev, libcap-dev, libseccomp-dev,
        // libmnl-dev, libnftables-dev).
        .systemLibrary(name: "CKeywayOpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CKeywayCap", pkgConfig: "libcap", providers: [.apt(["libcap-dev"])]),
        .systemLibrary(name: "CKeywaySeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        // keywayd only: rtnetlink messages (libmnl-dev) and nftables transactions (libnftables-dev).
        .systemLibrary(name: "CKeywayMnl", pkgConfig: "libmnl", providers: [.apt(["libmnl-dev"])]),
        .systemLibrary(name: "CKeywayNftables", pkgConfig: "libnftables", providers: [.apt(["libnftables-dev"])]),
        // What Swift cannot import: CMSG_* macros, TUNSETIFF, variadic prctl, GNU-only calls.
        .target(name: "CKeywayShim"),
        // OpenSSL glue: per-SA contexts, DH/ECDH in IKEv1 layouts, EC2N groups, RSA, X.509.
        .target(name: "CKeywayCrypto", dependencies: ["CKeywayOpenSSL"]),
        // keywayd's routes, routing rule and firewall table: rtnetlink batches and libnftables.
        .target(name: "CKeywayHostNet", dependencies: ["CKeywayMnl", "CKeywayNftables"]),

        // The thin syscall layer: the only Swift code that touches raw pointers.
        .target(name: "KeywaySystem", dependencies: [
            "CKeywayShim", "CKeywayCap", "CKeywaySeccomp",
            .product(name: "SystemPackage", package: "swift-system"),
        ]),
        // Ciphers, MACs, PRFs, DH groups, signatures and Secret, over CKeywayCrypto.
        .target(name: "KeywayCrypto", dependencies: ["CKeywayCrypto"]),
        // The /ip ipsec model, RouterOS grammar, validation, printing and export: pure code.
        .target(name: "KeywayConfig", dependencies: ["KeywayCrypto"]),
        // SPD, SAD, ESP, AH, replay windows and lifetimes: the sans-IO datapath core.
        .target(name: "KeywayDatapath", dependencies: ["KeywayCrypto"]),
        // ISAKMP/IKEv1 (sans-IO): the message codec so far.
        .target(name: "KeywayIKE", dependencies: ["KeywayCrypto"]),
        // Typed binary messages between processes: pure code.
        .target(name: "KeywayWire"),
        // RFC 5424 audit lines, rate-limited, written to the syslog socket keywayd passes.
        .target(name: "KeywayAudit", dependencies: ["KeywaySystem"]),
        // Spawning, sandboxing, seccomp profiles, supervision, and the child event loop.
        .target(name: "KeywayPrivsep", dependencies: ["KeywaySystem", "KeywayWire", "KeywayAudit"]),
        // The kernel behind HostNetwork (a thin binding over CKeywayHostNet); keywayd alone links it.
        .target(name: "KeywayHostNet", dependencies: ["CKeywayHostNet", "KeywayPrivsep", "KeywaySystem"]),

        .executableTarget(name: "keywayd", dependencies: [
            "KeywayPrivsep", "KeywayHostNet",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "keyway-ike", dependencies: ["KeywayPrivsep", "KeywayIKE", "KeywayCrypto", "KeywayAudit"]),
        .executableTarget(name: "keyway-datapath", dependencies: ["KeywayPrivsep", "KeywayDatapath", "KeywayCrypto"]),
        .executableTarget(name: "keyway-monitor", dependencies: ["KeywayPrivsep", "KeywayConfig", "KeywayCrypto"]),
        .executableTarget(name: "keyway", dependencies: [
            "KeywaySystem", "KeywayWire", "KeywayConfig",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Runs a role's real sandbox, then attempts one syscall: used by the tests to show
        // that a forbidden syscall kills the process.
        .executableTarget(name: "keyway-sandbox-check", dependencies: ["KeywayPrivsep"]),

        .executableTarget(name: "keyway-bench", dependencies: ["KeywayCrypto", "KeywayDatapath"]),

        .testTarget(name: "KeywayWireTests", dependencies: ["KeywayWire"]),
        .testTarget(name: "KeywayCryptoTests", dependencies: ["KeywayCrypto"]),
        .testTarget(name: "KeywayIKETests", dependencies: ["KeywayIKE", "KeywayCrypto"]),
        .testTarget(name: "KeywayDatapathTests", dependencies: ["KeywayDatapath", "KeywayCrypto"]),
        .testTarget(name: "KeywayConfigTests", dependencies: ["KeywayConfig"]),
        .testTarget(name: "KeywayPrivsepTests", dependencies: [
            "KeywayPrivsep", "KeywayWire", "KeywaySystem", "KeywayAudit", "KeywayHostNet",
        ]),
    ]
)
