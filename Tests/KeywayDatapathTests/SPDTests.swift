import KeywayVocabulary
import KeywayDatapath
import XCTest

func ip(_ s: String) -> UInt32 { s.split(separator: ".").reduce(0) { $0 << 8 | (UInt32($1) ?? 0) } }
func prefix(_ s: String) -> IPv4Prefix {
    let parts = s.split(separator: "/")
    return IPv4Prefix(ip(String(parts[0])), length: parts.count > 1 ? Int(parts[1]) ?? 32 : 32)
}

final class SPDTests: XCTestCase {
    func testPriorityThenPositionDecides() {
        let spd = SPD([
            SecurityPolicy(id: 1, selector: TrafficSelector(source: prefix("0.0.0.0/0"), destination: prefix("10.2.0.0/16")), action: .encrypt),
            SecurityPolicy(id: 2, selector: TrafficSelector(source: prefix("0.0.0.0/0"), destination: prefix("10.2.3.0/24")), action: .discard),
            SecurityPolicy(id: 3, selector: TrafficSelector(source: prefix("0.0.0.0/0"), destination: prefix("10.2.3.4/32")), action: .none, priority: 10),
        ])
        XCTAssertEqual(spd.lookup(source: ip("10.1.0.1"), destination: ip("10.2.9.9"), proto: 1, ports: nil)?.id, 1)
        // Equal priority: the earlier policy wins even though a later one is more specific.
        XCTAssertEqual(spd.lookup(source: ip("10.1.0.1"), destination: ip("10.2.3.9"), proto: 1, ports: nil)?.id, 1)
        XCTAssertEqual(spd.lookup(source: ip("10.1.0.1"), destination: ip("10.2.3.4"), proto: 1, ports: nil)?.id, 3)
        XCTAssertNil(spd.lookup(source: ip("10.1.0.1"), destination: ip("192.0.2.1"), proto: 1, ports: nil))
    }

    func testProtocolsAndPorts() {
        let spd = SPD([
            SecurityPolicy(id: 1, selector: TrafficSelector(source: prefix("0.0.0.0/0"), destination: prefix("0.0.0.0/0"), destinationPort: 500, proto: 17), action: .none),
            SecurityPolicy(id: 2, selector: TrafficSelector(source: prefix("0.0.0.0/0"), destination: prefix("0.0.0.0/0")), action: .encrypt),
        ])
        XCTAssertEqual(spd.lookup(source: 1, destination: 2, proto: 17, ports: (500, 500))?.id, 1)
        XCTAssertEqual(spd.lookup(source: 1, destination: 2, proto: 17, ports: (500, 501))?.id, 2)
        XCTAssertEqual(spd.lookup(source: 1, destination: 2, proto: 6, ports: (1, 500))?.id, 2)
        XCTAssertEqual(spd.lookup(source: 1, destination: 2, proto: 17, ports: nil)?.id, 2, "a fragment has no ports")
    }

    func testInboundLookupMirrorsTheSelector() {
        let spd = SPD([SecurityPolicy(id: 7, selector: TrafficSelector(source: prefix("10.1.0.0/24"), destination: prefix("10.2.0.0/24"), sourcePort: 1000), action: .encrypt)])
        XCTAssertEqual(spd.lookupInbound(source: ip("10.2.0.5"), destination: ip("10.1.0.5"), proto: 6, ports: (80, 1000))?.id, 7)
        XCTAssertNil(spd.lookupInbound(source: ip("10.1.0.5"), destination: ip("10.2.0.5"), proto: 6, ports: (1000, 80)))
    }

    /// The trie must agree with a plain linear scan on every packet.
    func testTrieAgreesWithALinearScan() {
        var rng = SystemRandomNumberGenerator()
        var list: [SecurityPolicy] = []
        for i in 0..<500 {
            let len = Int.random(in: 0...32, using: &rng)
            let sel = TrafficSelector(
                source: IPv4Prefix(UInt32.random(in: 0...UInt32.max, using: &rng) & 0xFF00_0000,
                                   length: Int.random(in: 0...8, using: &rng)),
                destination: IPv4Prefix(UInt32.random(in: 0...UInt32.max, using: &rng) & 0xFFFF_0000 | UInt32(i & 3),
                                        length: len),
                proto: Bool.random(using: &rng) ? nil : UInt8.random(in: 1...3, using: &rng))
            list.append(SecurityPolicy(id: i, selector: sel, action: .encrypt, priority: Int.random(in: 0...3, using: &rng)))
        }
        let spd = SPD(list)
        for _ in 0..<5000 {
            let pick = list[Int.random(in: 0..<list.count, using: &rng)].selector.destination
            let d = pick.address.value | (UInt32.random(in: 0...UInt32.max, using: &rng)
                                          & ~(pick.length == 0 ? 0 : ~UInt32(0) << UInt32(32 - pick.length)))
            let s = UInt32.random(in: 0...UInt32.max, using: &rng)
            let p = UInt8.random(in: 1...3, using: &rng)
            let linear = spd.policies.first { $0.selector.matches(source: s, destination: d, proto: p, ports: nil) }
            XCTAssertEqual(spd.lookup(source: s, destination: d, proto: p, ports: nil)?.id, linear?.id)
        }
    }
}
