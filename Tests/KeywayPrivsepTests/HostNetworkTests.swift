@testable import KeywayPrivsep
import KeywayTrust
import KeywayVocabulary
import XCTest

final class HostNetworkTests: XCTestCase {
    func prefix(_ text: String) throws -> IPv4Prefix { try XCTUnwrap(IPv4Prefix(text)) }

    func testIncomingCheckScriptReplacesTheTableAtomicallyAndKeepsTheSPDOrder() throws {
        let rules = [
            IncomingCheckRule(selector: TrafficSelector(source: try prefix("10.2.0.0/24"), destination: try prefix("10.1.0.9/32")), drop: false),
            IncomingCheckRule(selector: TrafficSelector(source: try prefix("10.2.0.0/24"), destination: try prefix("10.1.0.0/24"),
                                                        sourcePort: 80, proto: 6), drop: true),
            IncomingCheckRule(selector: TrafficSelector(source: .all, destination: try prefix("10.1.0.0/16"), destinationPort: 53), drop: true),
        ]
        let lines = HostNetwork.script(table: "keyway_kwtun0", tun: "kwtun0", rules: rules).split(separator: "\n").map(String.init)
        XCTAssertEqual(Array(lines.prefix(2)), ["table ip keyway_kwtun0", "delete table ip keyway_kwtun0"], "one transaction replaces the old table")
        XCTAssertEqual(lines.filter { $0.contains("hook prerouting") }.count, 1)
        let body = lines.map { $0.drop(while: { $0 == " " }) }.map(String.init)
        XCTAssertEqual(Array(body[5...]), [
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
