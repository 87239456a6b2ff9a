import KeywayCrypto
@testable import KeywayIKE
import XCTest

/// A responder with several addresses must answer from the one the peer used: an initiator drops
/// a reply from any other address ("message for an unknown ISAKMP SA").
final class MultihomedTests: XCTestCase {
    let a: UInt32 = 0xc000_0201                 // 192.0.2.1, the initiator
    let primary: UInt32 = 0xc000_0202           // 192.0.2.2, the responder's first address
    let secondary: UInt32 = 0xc612_0005         // 198.18.0.5, one of its secondary addresses

    func testEveryDatagramLeavesFromTheAddressThePeerUsed() throws {
        let secret = Secret(Array("keyway-test".utf8))
        let left = IKEEngine(configuration: IKEConfiguration(
            peers: [IKEPeer(address: secondary, secret: secret, hash: .sha1, encryption: .aes128, group: .modp2048)],
            policies: [IKEPolicy(id: 1, source: 0x0a01_0000, sourceLength: 24, destination: 0x0a02_0000,
                                 destinationLength: 24, saSource: a, saDestination: secondary, tunnel: true,
                                 authAlgorithms: [.sha1], encAlgorithms: [.aes128])]))
        // The responder's first policy towards the initiator uses its primary address: without the
        // address the request came to, it would answer from there.
        let right = IKEEngine(configuration: IKEConfiguration(
            peers: [IKEPeer(address: a, secret: secret, hash: .sha1, encryption: .aes128, group: .modp2048)],
            policies: [IKEPolicy(id: 1, source: 0x0a03_0000, sourceLength: 24, destination: 0x0a04_0000,
                                 destinationLength: 24, saSource: primary, saDestination: a, tunnel: true,
                                 authAlgorithms: [.sha1], encAlgorithms: [.aes128]),
                       IKEPolicy(id: 2, source: 0x0a02_0000, sourceLength: 24, destination: 0x0a01_0000,
                                 destinationLength: 24, saSource: secondary, saDestination: a, tunnel: true,
                                 authAlgorithms: [.sha1], encAlgorithms: [.aes128])]))
        var queue: [(from: UInt32, IKEAction)] = left.acquire(policyID: 1, now: 1_000).map { (a, $0) }
        var sources: [UInt32: [UInt32]] = [:]
        var installed: [UInt32: Int] = [:]
        var steps = 0
        while !queue.isEmpty, steps < 100 {
            steps += 1
            let (origin, action) = queue.removeFirst()
            switch action {
            case .send(let bytes, let port, let to, let source):
                sources[origin, default: []].append(source)
                // The kernel delivers it to the address it was sent to; the sender is who sent it.
                let target = to.address == a ? left : right
                queue += target.receive(bytes, from: Endpoint(address: source == 0 ? origin : source, port: port),
                                        localPort: to.port, localAddress: to.address, now: 1_000)
                    .map { (to.address, $0) }
            case .install(let sas): installed[origin, default: 0] += sas.count
            default: break
            }
        }
        XCTAssertEqual(installed[a], 2, "the initiator keyed its pair")
        XCTAssertEqual(installed[secondary], 2, "the responder keyed its pair")
        XCTAssertEqual(sources[secondary]?.count, 4, "main mode messages 2, 4, 6 and quick mode message 2")
        XCTAssertEqual(Set(sources[secondary] ?? []), [secondary], "every answer from the address the peer used")
        XCTAssertEqual(Set(sources[a] ?? []), [a], "the initiator sends from its policy's sa-src-address")
        // The datapath asked again before the new SAs reached it: that starts nothing. Later it would.
        let sends = { (actions: [IKEAction]) in
            actions.filter { if case .send = $0 { return true } else { return false } }
        }
        XCTAssertTrue(sends(left.acquire(policyID: 1, now: 1_500)).isEmpty, "an acquisition crossing the installation")
        XCTAssertEqual(sends(left.acquire(policyID: 1, now: 1_000 + IKEEngine.installRace)).count, 1, "a later one")
    }

    /// One initiator address, many of the responder's (a hub whose far appliance answers for many
    /// peers): each phase 1 is a first contact between its own two addresses, so neither its
    /// INITIAL-CONTACT nor the bound on unfinished negotiations per address may cut the others.
    func testManyPhase1FromOneAddressToSeveralOfOursAllSucceed() throws {
        let n = IKEEngine.maximumVerifiedHalfOpenPerAddress + 4
        let secret = Secret(Array("keyway-test".utf8))
        let ours = (0..<n).map { secondary + UInt32($0) }
        let left = IKEEngine(configuration: IKEConfiguration(
            peers: ours.map { IKEPeer(address: $0, secret: secret, hash: .sha1, encryption: .aes128,
                                      group: .modp2048) },
            policies: ours.enumerated().map { i, address in
                IKEPolicy(id: i + 1, source: 0x0a01_0001, sourceLength: 32, destination: 0x0a02_0001 + UInt32(i),
                          destinationLength: 32, saSource: a, saDestination: address, tunnel: true,
                          authAlgorithms: [.sha1], encAlgorithms: [.aes128])
            }))
        let right = IKEEngine(configuration: IKEConfiguration(
            peers: [IKEPeer(address: a, secret: secret, hash: .sha1, encryption: .aes128, group: .modp2048)],
            policies: ours.enumerated().map { i, address in
                IKEPolicy(id: i + 1, source: 0x0a02_0001 + UInt32(i), sourceLength: 32, destination: 0x0a01_0001,
                          destinationLength: 32, saSource: address, saDestination: a, tunnel: true,
                          authAlgorithms: [.sha1], encAlgorithms: [.aes128])
            }))
        // Every negotiation starts at once, and their messages interleave.
        var queue: [(from: UInt32, IKEAction)] = []
        for i in 0..<n { queue += left.acquire(policyID: i + 1, now: 1_000).map { (a, $0) } }
        var installed = 0, removed = 0, steps = 0
        while !queue.isEmpty, steps < 100 * n {
            steps += 1
            let (origin, action) = queue.removeFirst()
            switch action {
            case .send(let bytes, let port, let to, let source):
                let target = to.address == a ? left : right
                queue += target.receive(bytes, from: Endpoint(address: source == 0 ? origin : source, port: port),
                                        localPort: to.port, localAddress: to.address, now: 1_000)
                    .map { (to.address, $0) }
            case .install(let sas): installed += sas.count
            case .remove(let sas): removed += sas.count
            default: break
            }
        }
        XCTAssertEqual(installed, 4 * n, "both sides keyed every pair")
        XCTAssertEqual(removed, 0, "no INITIAL-CONTACT removed another pair's SAs")
        XCTAssertEqual(right.responderLoad.refusedBusy, 0, "no negotiation had to wait for a slot")
    }
}
