@testable import KeywayPrivsep
import KeywayWire
import XCTest

final class HostNetworkTests: XCTestCase {
    func testIncomingCheckScriptReplacesTheTableAtomicallyAndKeepsTheSPDOrder() {
        let filter = IncomingFilter(rules: [
            .init(source: 0x0a02_0000, sourceLength: 24, destination: 0x0a01_0009, destinationLength: 32, proto: 255, sourcePort: 0, destinationPort: 0, drop: false),
            .init(source: 0x0a02_0000, sourceLength: 24, destination: 0x0a01_00ff, destinationLength: 24, proto: 6, sourcePort: 80, destinationPort: 0, drop: true),
            .init(source: 0, sourceLength: 0, destination: 0x0a01_0000, destinationLength: 16, proto: 255, sourcePort: 0, destinationPort: 53, drop: true),
        ])
        let lines = HostNetwork.script(table: "keyway_kwtun0", tun: "kwtun0", filter: filter).split(separator: "\n").map(String.init)
        XCTAssertEqual(Array(lines.prefix(2)), ["table ip keyway_kwtun0", "delete table ip keyway_kwtun0"], "one transaction replaces the old table")
        XCTAssertEqual(lines.filter { $0.contains("hook prerouting") }.count, 1)
        let rules = lines.map { $0.trimmingCharacters(in: .whitespaces) }
        XCTAssertEqual(Array(rules[5...]), [
            "iifname \"kwtun0\" accept",
            "meta l4proto { esp, ah } accept",
            "udp dport { 500, 4500 } accept",
            "ip saddr 10.2.0.0/24 ip daddr 10.1.0.9/32 accept",
            "ip saddr 10.2.0.0/24 ip daddr 10.1.0.0/24 meta l4proto 6 th sport 80 counter drop",
            "ip saddr 0.0.0.0/0 ip daddr 10.1.0.0/16 meta l4proto { tcp, udp } th dport 53 counter drop",
            "}", "}",
        ])
    }
}
