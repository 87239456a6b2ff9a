import KeywayVocabulary
import KeywayCrypto
@testable import KeywayIKE
import XCTest

/// A deterministic random source (SplitMix64): the same seed, the same bytes.
final class SeededRandom {
    private var state: UInt64
    init(_ seed: UInt64) { state = seed }
    func bytes(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            z ^= z >> 31
            for k in 0..<8 where out.count < count { out.append(UInt8(truncatingIfNeeded: z >> (8 * UInt64(k)))) }
        }
        return out
    }
}

/// All of the engine's randomness comes from its injected source: with the same seeds and clock,
/// an exchange is the same bytes on the wire; with another seed, other bytes.
extension ExchangeTests {
    func datagrams(seed: UInt64, group: DHGroup, pfs: DHGroup) -> (wire: [[UInt8]], keys: [[UInt8]]) {
        let set: (inout IKEPeer) -> Void = { $0.group = group; $0.natTraversal = true }
        let policy: (inout IKEPolicy) -> Void = { $0.pfsGroup = pfs }
        let leftRandom = SeededRandom(seed), rightRandom = SeededRandom(seed ^ 0x5a5a_5a5a)
        let left = IKEEngine(configuration: configuration(local: a, remote: b, peer: set, policy: policy),
                             random: leftRandom.bytes)
        let right = IKEEngine(configuration: configuration(local: b, remote: a, peer: set, policy: policy),
                              random: rightRandom.bytes)
        var wire: [[UInt8]] = [], keys: [[UInt8]] = []
        var queue = left.acquire(policyID: 1, now: 5_000).map { (a, $0) }
        var steps = 0
        while !queue.isEmpty, steps < 200 {
            steps += 1
            let (origin, action) = queue.removeFirst()
            switch action {
            case .send(let m, let port, let to, _):
                wire.append(m)
                let target = to.address == a ? left : right
                queue += target.receive(m, from: Endpoint(address: origin, port: port), localPort: to.port,
                                        localAddress: to.address, now: 5_000)
                    .map { (to.address, $0) }
            case .install(let sas):
                keys += sas.map {
                    $0.encryptionKey.withUnsafeBytes { Array($0) } + $0.integrityKey.withUnsafeBytes { Array($0) }
                }
            default: break
            }
        }
        // Half an hour later the tick draws randomness too: the rekey's quick mode (message ID,
        // SPI, nonce, PFS key), an R-U-THERE (DPD sequence number) and the old pair's Delete.
        for action in left.tick(now: 5_000 + 1_800_000) { if case .send(let m, _, _, _) = action { wire.append(m) } }
        return (wire, keys)
    }

    func testTheSameSeedsAndClockGiveByteIdenticalExchangesAndAnotherSeedDoesNot() throws {
        for (group, pfs) in [(DHGroup.modp1024, DHGroup.modp2048), (.ecp256, .ec2n155)] {
            let first = datagrams(seed: 1, group: group, pfs: pfs), again = datagrams(seed: 1, group: group, pfs: pfs)
            XCTAssertEqual(first.wire.count, 12,
                           "\(group.name): main mode (6), quick mode with PFS (3), rekey, R-U-THERE, Delete")
            XCTAssertEqual(first.keys.count, 4, "\(group.name): both sides installed a pair")
            XCTAssertEqual(first.wire, again.wire, "\(group.name): byte for byte")
            XCTAssertEqual(first.keys, again.keys)
            let other = datagrams(seed: 2, group: group, pfs: pfs)
            XCTAssertEqual(other.wire.count, first.wire.count)
            for (i, (x, y)) in zip(first.wire, other.wire).enumerated() {
                XCTAssertNotEqual(x, y, "\(group.name): message \(i + 1) differs with another seed")
            }
            XCTAssertNotEqual(first.keys, other.keys)
        }
    }
}
