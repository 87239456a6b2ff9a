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
        .executable(name: "keyway-impostor", targets: ["keyway-impostor"]),
        .library(name: "KeywayWire", targets: ["KeywayWire"]),
        .library(name: "KeywayConfig", targets: ["KeywayConfig"]),
        .library(name: "KeywayIKE", targets: ["KeywayIKE"]),
        .library(name: "KeywayCrypto", targets: ["KeywayCrypto"]),
        .library(name: "KeywayDatapath", targets: ["KeywayDatapath"]),
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
        // The `keyway` client's line editor (libedit-dev); nothing else links it.
        .systemLibrary(name: "CKeywayEdit", pkgConfig: "libedit", providers: [.apt(["libedit-dev"])]),
        .target(name: "CKeywayConsole", dependencies: ["CKeywayEdit"]),
        .target(name: "KeywayLineEditor", dependencies: ["CKeywayConsole"]),
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
        // The shared words: addresses, prefixes, selectors, policy actions and levels, algorithm
        // names, durations. Pure, no dependencies: every module speaks it.
        .target(name: "KeywayVocabulary"),
        // The rules every receiver applies to another process's requests (pure): what a
        // generate-policy peer may create, which SAs, routes and signatures may exist.
        .target(name: "KeywayTrust", dependencies: ["KeywayVocabulary", "KeywayWire"]),
        // Ciphers, MACs, PRFs, DH groups, signatures and Secret, over CKeywayCrypto.
        .target(name: "KeywayCrypto", dependencies: ["CKeywayCrypto", "KeywayVocabulary"]),
        // The /ip ipsec model, RouterOS grammar, validation, printing and export: pure code
        // (no OpenSSL: what needs it, such as DES availability, is passed in).
        .target(name: "KeywayConfig", dependencies: ["KeywayVocabulary"]),
        // SPD, SAD, ESP, AH, replay windows and lifetimes: the sans-IO datapath core.
        .target(name: "KeywayDatapath", dependencies: [
            "KeywayCrypto", "KeywayVocabulary", "KeywayWire", "KeywayTrust",
        ]),
        // ISAKMP/IKEv1 (sans-IO): the message codec so far.
        .target(name: "KeywayIKE", dependencies: ["KeywayCrypto", "KeywayVocabulary", "KeywayTrust", "KeywayWire"]),
        // keyway-monitor's logic: what each process is told of the configuration, the live view
        // printouts read, and the signing gate. Pure (no OpenSSL, no files).
        .target(name: "KeywayMonitor", dependencies: ["KeywayConfig", "KeywayWire", "KeywayVocabulary", "KeywayTrust"]),
        // Typed binary messages between processes: pure code.
        .target(name: "KeywayWire", dependencies: ["KeywayVocabulary"]),
        // Audit events: children's travel to keywayd on their link; keywayd attributes them, writes them to
        // syslog (syslog(3) format or RFC 5424) through a bounded queue that outlives a syslog restart.
        .target(name: "KeywayAudit", dependencies: ["KeywaySystem", "KeywayVocabulary", "KeywayWire"]),
        // Spawning, sandboxing, seccomp profiles, supervision, and the child event loop.
        .target(name: "KeywayPrivsep", dependencies: [
            "KeywaySystem", "KeywayWire", "KeywayAudit", "KeywayTrust", "KeywayVocabulary",
        ]),
        // The kernel behind HostNetwork (a thin binding over CKeywayHostNet); keywayd alone links it.
        .target(name: "KeywayHostNet", dependencies: ["CKeywayHostNet", "KeywayPrivsep", "KeywaySystem"]),

        .executableTarget(name: "keywayd", dependencies: [
            "KeywayPrivsep", "KeywayHostNet", "KeywayAudit",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "keyway-ike", dependencies: [
            "KeywayPrivsep", "KeywayIKE", "KeywayCrypto", "KeywayAudit",
        ]),
        .executableTarget(name: "keyway-datapath", dependencies: ["KeywayPrivsep", "KeywayDatapath", "KeywayCrypto"]),
        .executableTarget(name: "keyway-monitor", dependencies: [
            "KeywayPrivsep", "KeywayConfig", "KeywayCrypto", "KeywayMonitor", "KeywayTrust",
        ]),
        .executableTarget(name: "keyway", dependencies: [
            "KeywaySystem", "KeywayWire", "KeywayConfig", "KeywayLineEditor",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Runs a role's real sandbox, then attempts one syscall: used by the tests to show
        // that a forbidden syscall kills the process.
        .executableTarget(name: "keyway-sandbox-check", dependencies: ["KeywayPrivsep"]),

        // Replaces malloc for the process that links it: keyway-bench alone.
        .target(name: "CKeywayAllocationCount"),
        .executableTarget(name: "keyway-bench", dependencies: [
            "KeywayCrypto", "KeywayDatapath", "KeywayIKE", "KeywayVocabulary", "CKeywayAllocationCount",
        ]),
        // Takes a child's place on its real links and plays it compromised (the tests use it).
        .executableTarget(name: "keyway-impostor", dependencies: [
            "KeywayPrivsep", "KeywayWire", "KeywayVocabulary", "KeywaySystem",
        ]),

        .testTarget(name: "KeywayVocabularyTests", dependencies: ["KeywayVocabulary"]),
        .testTarget(name: "KeywayTrustTests", dependencies: ["KeywayTrust", "KeywayVocabulary", "KeywayWire"]),
        .testTarget(name: "KeywayWireTests", dependencies: ["KeywayWire", "KeywayVocabulary"]),
        .testTarget(name: "KeywayCryptoTests", dependencies: ["KeywayCrypto"]),
        .testTarget(name: "KeywayIKETests", dependencies: ["KeywayIKE", "KeywayCrypto", "KeywayMonitor", "KeywayWire"]),
        .testTarget(name: "KeywayDatapathTests", dependencies: [
            "KeywayDatapath", "KeywayCrypto", "KeywayWire", "KeywayVocabulary",
        ]),
        .testTarget(name: "KeywayConfigTests", dependencies: ["KeywayConfig"]),
        .testTarget(name: "KeywayMonitorTests", dependencies: [
            "KeywayMonitor", "KeywayConfig", "KeywayWire", "KeywayVocabulary",
        ]),
        .testTarget(name: "KeywayPrivsepTests", dependencies: [
            "KeywayPrivsep", "KeywayWire", "KeywaySystem", "KeywayAudit", "KeywayHostNet", "KeywayTrust",
            "KeywayVocabulary",
        ]),
    ]
)
