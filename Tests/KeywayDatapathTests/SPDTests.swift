import KeywayVocabulary
@testable import KeywayDatapath
import XCTest

func ip(_ s: String) -> UInt32 { s.split(separator: ".").reduce(0) { $0 << 8 | (UInt32($1) ?? 0) } }
func prefix(_ s: String) -> IPv4Prefix {
    let parts = s.split(separator: "/")
    return IPv4Prefix(ip(String(parts[0])), length: parts.count > 1 ? Int(parts[1]) ?? 32 : 32)
}

final class SPDTests: XCTestCase {
    func testPriorityThenPositionDecides() {
        let spd = SPD([
            SecurityPolicy(id: 1,
                           selector: TrafficSelector(source: prefix("0.0.0.0/0"), destination: prefix("10.2.0.0/16")),
                           action: .encrypt),
            SecurityPolicy(id: 2,
                           selector: TrafficSelector(source: prefix("0.0.0.0/0"), destination: prefix("10.2.3.0/24")),
                           action: .discard),
            SecurityPolicy(id: 3,
                           selector: TrafficSelector(source: prefix("0.0.0.0/0"), destination: prefix("10.2.3.4/32")),
                           action: .none, priority: 10),
        ])
        XCTAssertEqual(spd.lookup(source: ip("10.1.0.1"), destination: ip("10.2.9.9"), proto: 1, ports: nil)?.id, 1)
        // Equal priority: the earlier policy wins even though a later one is more specific.
        XCTAssertEqual(spd.lookup(source: ip("10.1.0.1"), destination: ip("10.2.3.9"), proto: 1, ports: nil)?.id, 1)
        XCTAssertEqual(spd.lookup(source: ip("10.1.0.1"), destination: ip("10.2.3.4"), proto: 1, ports: nil)?.id, 3)
        XCTAssertNil(spd.lookup(source: ip("10.1.0.1"), destination: ip("192.0.2.1"), proto: 1, ports: nil))
    }

    func testProtocolsAndPorts() {
        let spd = SPD([
            SecurityPolicy(id: 1,
                           selector: TrafficSelector(source: prefix("0.0.0.0/0"), destination: prefix("0.0.0.0/0"),
                                                     destinationPort: 500, proto: 17), action: .none),
            SecurityPolicy(id: 2,
                           selector: TrafficSelector(source: prefix("0.0.0.0/0"), destination: prefix("0.0.0.0/0")),
                           action: .encrypt),
        ])
        XCTAssertEqual(spd.lookup(source: 1, destination: 2, proto: 17, ports: (500, 500))?.id, 1)
        XCTAssertEqual(spd.lookup(source: 1, destination: 2, proto: 17, ports: (500, 501))?.id, 2)
        XCTAssertEqual(spd.lookup(source: 1, destination: 2, proto: 6, ports: (1, 500))?.id, 2)
        XCTAssertEqual(spd.lookup(source: 1, destination: 2, proto: 17, ports: nil)?.id, 2, "a fragment has no ports")
    }

    func testInboundLookupMirrorsTheSelector() {
        let spd = SPD([SecurityPolicy(id: 7,
                                      selector: TrafficSelector(source: prefix("10.1.0.0/24"),
                                                                destination: prefix("10.2.0.0/24"), sourcePort: 1000),
                                      action: .encrypt)])
        XCTAssertEqual(spd.lookupInbound(source: ip("10.2.0.5"), destination: ip("10.1.0.5"), proto: 6,
                                         ports: (80, 1000))?.id, 7)
        XCTAssertNil(spd.lookupInbound(source: ip("10.1.0.5"), destination: ip("10.2.0.5"), proto: 6,
                                       ports: (1000, 80)))
    }

    /// The hashed SPD must agree with a plain linear scan in precedence order on every packet: many
    /// prefix lengths, destinations shared by several policies (the slot's overflow list), ports
    /// and protocols, priorities, and ids and priorities beyond 32 bits (generated policies sit
    /// below Int32.min).
    func testLookupAgreesWithALinearScan() {
        var rng = SeededGenerator(seed: 0x5eed_0011)
        for round in 0..<4 {
            var list: [SecurityPolicy] = []
            let count = [50, 500, 3000, 20_000][round]
            for i in 0..<count {
                // Few distinct destinations in the small rounds, so that many policies share one.
                let len = Int.random(in: 0...32, using: &rng)
                let base = UInt32.random(in: 0...UInt32.max, using: &rng) & (round < 2 ? 0xFF00_0000 : 0xFFFF_FF00)
                let sport: UInt16? = Int.random(in: 0..<6, using: &rng) == 0
                    ? UInt16.random(in: 1...4, using: &rng) : nil
                let dport: UInt16? = Int.random(in: 0..<6, using: &rng) == 0
                    ? UInt16.random(in: 1...4, using: &rng) : nil
                let sel = TrafficSelector(
                    source: IPv4Prefix(UInt32.random(in: 0...UInt32.max, using: &rng),
                                       length: Int.random(in: 0...32, using: &rng)),
                    destination: IPv4Prefix(base | UInt32(i & 3), length: len),
                    sourcePort: sport, destinationPort: dport,
                    proto: Bool.random(using: &rng) ? nil : UInt8.random(in: 1...3, using: &rng) * 3 + 3)
                let wide = Int.random(in: 0..<10, using: &rng) == 0
                list.append(SecurityPolicy(id: wide ? Int(Int32.max) + i : i, selector: sel,
                                           action: [.encrypt, .discard, .none][i % 3],
                                           level: [.require, .use, .unique][i % 3], useESP: i % 2 == 0,
                                           useAH: i % 5 == 0, tunnel: i % 3 == 0,
                                           saSource: UInt32(i), saDestination: ~UInt32(i),
                                           priority: wide ? Int(Int32.min) - 1 - i
                                                          : Int.random(in: -2...3, using: &rng),
                                           dontFragment: [.clear, .inherit, .set][i % 3]))
            }
            let spd = SPD(list)
            let ordered = spd.policies
            XCTAssertEqual(ordered.count, list.count)
            for _ in 0..<4000 {
                let pick = list[Int.random(in: 0..<list.count, using: &rng)].selector.destination
                let d = pick.address.value
                    | (UInt32.random(in: 0...UInt32.max, using: &rng) & ~IPv4Prefix.mask(pick.length))
                // Half the packets come from inside some policy's source, however long its prefix.
                let from = list[Int.random(in: 0..<list.count, using: &rng)].selector.source
                let anywhere = UInt32.random(in: 0...UInt32.max, using: &rng)
                let s = Bool.random(using: &rng) ? anywhere : from.address.value | (anywhere & ~from.mask)
                let p = UInt8.random(in: 1...3, using: &rng) * 3 + 3
                let ports: (UInt16, UInt16)? = Bool.random(using: &rng)
                    ? (UInt16.random(in: 1...4, using: &rng), UInt16.random(in: 1...4, using: &rng)) : nil
                let linear = ordered.first { $0.selector.matches(source: s, destination: d, proto: p, ports: ports) }
                XCTAssertEqual(spd.lookup(source: s, destination: d, proto: p, ports: ports),
                               linear.map(SPD.Decision.init),
                               "round \(round): \(IPv4Address.text(s)) -> \(IPv4Address.text(d)) proto \(p)")
                let inbound = ordered.first {
                    $0.selector.matches(source: d, destination: s, proto: p, ports: ports.map { ($0.1, $0.0) })
                }
                XCTAssertEqual(spd.lookupInbound(source: s, destination: d, proto: p, ports: ports),
                               inbound.map(SPD.Decision.init))
            }
        }
    }

    /// What keeps 100,000 policies within the caches' and the TLB's reach (README, Performance):
    /// a hit reads one 32-byte entry, not a line and a half of policy.
    func testAnEntryFitsHalfACacheLine() {
        XCTAssertEqual(MemoryLayout<SPD.Entry>.stride, 32)
    }

    /// The table always keeps an empty entry, where a probe for a prefix it does not hold stops.
    func testAMissEndsWhateverTheTableHolds() {
        for count in 1...9 {
            let spd = SPD((0..<count).map { i in
                SecurityPolicy(id: i, selector: TrafficSelector(source: prefix("0.0.0.0/0"),
                                                                destination: IPv4Prefix(UInt32(i) << 8, length: 24)),
                               action: .encrypt)
            })
            // Checked first: without an empty entry the lookup below would never return.
            guard spd.table.contains(where: { $0.slot.isEmpty }) else {
                return XCTFail("a table for \(count) policies has no empty entry")
            }
            XCTAssertNil(spd.lookup(source: 1, destination: 0xc000_0201, proto: 6, ports: nil), "\(count) policies")
            XCTAssertEqual(spd.lookup(source: 1, destination: UInt32(count - 1) << 8 | 9, proto: 6, ports: nil)?.id,
                           count - 1)
        }
    }

    /// Prefixes whose probes start at the table's last entry continue at its first.
    func testProbesWrapAroundTheTableEnd() {
        func policy(_ id: Int, _ network: UInt32) -> SecurityPolicy {
            SecurityPolicy(id: id, selector: TrafficSelector(source: prefix("0.0.0.0/0"),
                                                             destination: IPv4Prefix(network, length: 24)),
                           action: .encrypt)
        }
        // Four /24 destinations make a table of 4 + 2 + 1 entries, whichever they are.
        let sizing = SPD((0..<4).map { policy($0, UInt32($0) << 8) })
        let last = sizing.table.count - 1
        let homedLast = (0..<UInt32(65_536)).lazy.map { 0x0a00_0000 | $0 << 8 }
            .filter { sizing.probeStart(SPD.Slot.key(network: $0, length: 24)) == last }
        let chosen = Array(homedLast.prefix(4))
        guard chosen.count == 4 else { return XCTFail("no four prefixes start at the last entry") }
        let spd = SPD((0..<3).map { policy($0, chosen[$0]) } + [policy(3, 0xc000_0200)])
        XCTAssertEqual(spd.table.count, sizing.table.count)
        for i in 0..<3 {
            XCTAssertEqual(spd.lookup(source: 1, destination: chosen[i] | 7, proto: 6, ports: nil)?.id, i,
                           "prefix \(i) of those homed at the last entry")
        }
        XCTAssertEqual(spd.lookup(source: 1, destination: 0xc000_0207, proto: 6, ports: nil)?.id, 3)
        XCTAssertNil(spd.lookup(source: 1, destination: chosen[3] | 7, proto: 6, ports: nil),
                     "a fourth prefix homed there is not in the table")
    }

    func testAnEmptySPDMatchesNothing() {
        XCTAssertNil(SPD([]).lookup(source: 1, destination: 2, proto: 6, ports: nil))
    }
}

/// splitmix64: the same policies and packets on every run, so a failure can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
