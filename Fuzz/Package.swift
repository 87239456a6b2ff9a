// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets, kept out of the main package: they have no main() of their own
// (libFuzzer supplies it), so they link only when built with --sanitize=fuzzer.
// Run them with contrib/fuzz.sh.
let package = Package(
    name: "keyway-fuzz",
    dependencies: [.package(name: "keyway", path: "..")],
    targets: [
        .executableTarget(name: "fuzz-wire", dependencies: [.product(name: "KeywayWire", package: "keyway")]),
        .executableTarget(name: "fuzz-config", dependencies: [.product(name: "KeywayConfig", package: "keyway")]),
        .executableTarget(name: "fuzz-isakmp", dependencies: [.product(name: "KeywayIKE", package: "keyway")]),
        .executableTarget(name: "fuzz-ikev2", dependencies: [.product(name: "KeywayIKE", package: "keyway")]),
        .executableTarget(name: "fuzz-ike2", dependencies: [.product(name: "KeywayIKE", package: "keyway"),
                                                            .product(name: "KeywayCrypto", package: "keyway")]),
        .executableTarget(name: "fuzz-ike", dependencies: [.product(name: "KeywayIKE", package: "keyway"), .product(name: "KeywayCrypto", package: "keyway")]),
        .executableTarget(name: "fuzz-datapath", dependencies: [.product(name: "KeywayDatapath", package: "keyway"),
                                                                .product(name: "KeywayCrypto", package: "keyway")]),
        .executableTarget(name: "fuzz-icmp", dependencies: [.product(name: "KeywayDatapath", package: "keyway"),
                                                            .product(name: "KeywayCrypto", package: "keyway")]),
        .executableTarget(name: "fuzz-offloads", dependencies: [.product(name: "KeywayDatapath", package: "keyway"),
                                                                .product(name: "KeywayCrypto", package: "keyway")]),
    ]
)
