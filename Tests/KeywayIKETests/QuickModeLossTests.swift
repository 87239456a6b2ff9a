import KeywayCrypto
@testable import KeywayIKE
import XCTest

/// Quick mode's last message is the initiator's: if it is lost, the initiator has SAs and the
/// responder none, and traffic the initiator seals is dropped at the far end.
final class QuickModeLossTests: XCTestCase {
    let a: UInt32 = 0xc000_0201, b: UInt32 = 0xc000_0202

    func testALostMessage3IsSentAgainWhenTheResponderRepeatsMessage2() throws {
        let secret = Secret(Array("keyway-test".utf8))
        let left = IKEEngine(configuration: IKEConfiguration(
            peers: [IKEPeer(address: b, secret: secret, hash: .sha1, encryption: .aes128, group: .modp2048)],
            policies: [IKEPolicy(id: 1, source: 0x0a01_0000, sourceLength: 24, destination: 0x0a02_0000,
                                 destinationLength: 24, saSource: a, saDestination: b, tunnel: true,
                                 authAlgorithms: [.sha1], encAlgorithms: [.aes128])]))
        let right = IKEEngine(configuration: IKEConfiguration(
            peers: [IKEPeer(address: a, secret: secret, hash: .sha1, encryption: .aes128, group: .modp2048)],
            policies: [IKEPolicy(id: 1, source: 0x0a02_0000, sourceLength: 24, destination: 0x0a01_0000,
                                 destinationLength: 24, saSource: b, saDestination: a, tunnel: true,
                                 authAlgorithms: [.sha1], encAlgorithms: [.aes128])]))
        var installed: [UInt32: Int] = [:]
        var toRight = 0
        var dropNextQuickToRight = true
        func deliver(_ start: [(UInt32, IKEAction)], now: UInt64) {
            var queue = start
            var steps = 0
            while !queue.isEmpty, steps < 100 {
                steps += 1
                let (origin, action) = queue.removeFirst()
                switch action {
                case .send(let bytes, let port, let to, _):
                    let towardRight = to.address == b
                    if towardRight { toRight += 1 }
                    // The 5th datagram to the responder is quick mode message 3 (after main mode 1, 3, 5
                    // and quick mode 1): lost once.
                    if towardRight, toRight == 5, dropNextQuickToRight { dropNextQuickToRight = false; continue }
                    let target = towardRight ? right : left
                    queue += target.receive(bytes, from: Endpoint(address: origin, port: port), localPort: to.port,
                                            localAddress: to.address, now: now).map { (to.address, $0) }
                case .install(let sas): installed[origin, default: 0] += sas.count
                default: break
                }
            }
        }
        deliver(left.acquire(policyID: 1, now: 1_000).map { (a, $0) }, now: 1_000)
        XCTAssertFalse(dropNextQuickToRight, "message 3 was dropped")
        XCTAssertEqual(installed[a], 2, "the initiator keyed its pair")
        XCTAssertNil(installed[b], "the responder has none yet")
        // The responder repeats message 2; the initiator answers with message 3 again.
        for t in stride(from: UInt64(1_500), through: 10_000, by: 500) {
            deliver(right.tick(now: t).map { (b, $0) } + left.tick(now: t).map { (a, $0) }, now: t)
        }
        XCTAssertEqual(installed[b], 2, "the responder keyed its pair")
        XCTAssertEqual(installed[a], 2, "and the initiator no second one")
    }
}
