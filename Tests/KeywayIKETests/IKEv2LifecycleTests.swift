import KeywayCrypto
import KeywayVocabulary
import KeywayWire
@testable import KeywayIKE
import XCTest

/// After IKE_AUTH: CREATE_CHILD_SA for more policies, child and IKE SA rekeys (each side, and both
/// at once), deletes both ways, liveness checks, retransmissions and the responder's cache,
/// fragmentation, COOKIE.
final class IKEv2LifecycleTests: XCTestCase {
    let a = V2.a, b = V2.b

    /// A second policy pair 10.1.1.0/24 <=> 10.2.1.0/24.
    func second(local: UInt32) -> IKEPolicy {
        let remote = local == a ? b : a
        let (mine, theirs): (UInt32, UInt32) = local == a ? (0x0a01_0100, 0x0a02_0100) : (0x0a02_0100, 0x0a01_0100)
        return IKEPolicy(id: 2, source: mine, sourceLength: 24, destination: theirs, destinationLength: 24,
                         saSource: local, saDestination: remote, tunnel: true, authAlgorithms: [.sha1],
                         encAlgorithms: [.aes128], pfsGroup: .modp2048)
    }

    func established(pfs: DHGroup? = nil, peer: @escaping (inout IKEPeer) -> Void = { _ in },
                     lifetime: Seconds = Seconds(1_800)) -> IKEv2Net {
        let policy: (inout IKEPolicy) -> Void = { $0.pfsGroup = pfs; $0.lifetime = lifetime }
        let net = IKEv2Net(left: V2.config(local: a, peer: peer, policy: policy, more: [second(local: a)]),
                           right: V2.config(local: b, peer: peer, policy: policy, more: [second(local: b)]))
        net.add(a, net.left.acquire(policyID: 1, now: net.now))
        net.run()
        return net
    }

    /// Each side's children for a policy, as (inbound, outbound) SPIs.
    func children(_ s: IKEService, _ policy: Int = 1) -> [(UInt32, UInt32)] {
        s.v2.children.filter { $0.policyID == policy }.map { ($0.inboundSPI, $0.outboundSPI) }
    }

    func assertOnePairAgreed(_ net: IKEv2Net, _ policy: Int = 1, file: StaticString = #filePath, line: UInt = #line) {
        let l = children(net.left, policy), r = children(net.right, policy)
        XCTAssertEqual(l.count, 1, "left: \(l)", file: file, line: line)
        XCTAssertEqual(r.count, 1, "right: \(r)", file: file, line: line)
        if let x = l.first, let y = r.first {
            XCTAssertEqual(x.0, y.1, file: file, line: line); XCTAssertEqual(x.1, y.0, file: file, line: line)
        }
    }

    func testASecondPolicyIsKeyedByCreateChildSAWithPFS() throws {
        let net = established()
        net.sent.removeAll()
        net.add(a, net.left.acquire(policyID: 2, now: net.now))
        net.run()
        XCTAssertEqual(net.sent.count, 2, "one CREATE_CHILD_SA request and its response")
        assertOnePairAgreed(net, 2)
        let out = try XCTUnwrap(net.installed[a]?.last?.first { !$0.inbound })
        XCTAssertTrue(out.pfs, "policy 2 has pfs-group=modp2048: a KE went with it")
        XCTAssertEqual(out.policyID, 2)
        XCTAssertEqual(net.right.phase2(policyID: 2), .established)
    }

    func testAcquiresWhileTheIKESAIsNegotiatedAreKeyedAfterIt() throws {
        let net = IKEv2Net(left: V2.config(local: a, more: [second(local: a)]),
                           right: V2.config(local: b, more: [second(local: b)]))
        net.add(a, net.left.acquire(policyID: 1, now: net.now))
        net.add(a, net.left.acquire(policyID: 2, now: net.now))
        net.run()
        assertOnePairAgreed(net, 1)
        assertOnePairAgreed(net, 2)
        XCTAssertEqual(net.left.remotePeers(now: net.now).count, 1, "one IKE SA carries both")
    }

    func testEachSideRekeysItsChildrenAndTheOldPairGoes() throws {
        for rekeyer in [a, b] {
            let net = established(pfs: .modp2048, lifetime: Seconds(100))
            let before = children(net.left)
            // Only the rekeying side's clock point comes early.
            let other = rekeyer == a ? net.right : net.left
            for i in other.v2.children.indices { other.v2.children[i].rekeyAt = .max }
            net.advance(to: 95_000)
            assertOnePairAgreed(net)
            XCTAssertNotEqual(children(net.left).first?.0, before.first?.0, "a new pair")
            XCTAssertEqual(net.audit(rekeyer, "ike-rekey").count, 1)
            let removedLeft = net.removed[a]?.map(\.spi) ?? []
            XCTAssertTrue(removedLeft.contains(before[0].0) && removedLeft.contains(before[0].1),
                          "the old pair left the datapath")
            XCTAssertTrue(net.installed[a]?.last?.allSatisfy(\.pfs) ?? false)
        }
    }

    /// RFC 7296 2.8.1: both sides rekey the same child at once; the SA made by the exchange with
    /// the lowest nonce is deleted by whoever started that exchange, and the old one by the other.
    func testSimultaneousChildRekeysLeaveOnePairOnBothSides() throws {
        for seed in [UInt64(1), 2, 3, 4, 5, 6] {
            let net = IKEv2Net(left: V2.config(local: a), right: V2.config(local: b), seed: seed)
            net.add(a, net.left.acquire(policyID: 1, now: net.now))
            net.run()
            for s in [net.left, net.right] { for i in s.v2.children.indices { s.v2.children[i].rekeyAt = 10_000 } }
            net.advance(to: 12_000)
            assertOnePairAgreed(net)
            XCTAssertEqual((net.audit(a, "ike-rekey-collision") + net.audit(b, "ike-rekey-collision")).count, 2,
                           "seed \(seed): each side settled the collision")
            XCTAssertEqual(net.left.phase2(policyID: 1), .established)
        }
    }

    func testEachSideRekeysTheIKESAAndChildrenMoveWithoutRenegotiating() throws {
        for rekeyer in [a, b] {
            let net = established(peer: { $0.lifetime = Seconds(100) })
            let child = children(net.left)
            let other = rekeyer == a ? net.right : net.left
            for sa in other.v2.sas.values { sa.rekeyAt = .max; sa.expiresAt = .max }
            net.advance(to: 95_000)
            XCTAssertEqual(net.left.v2.sas.count, 1, "the old IKE SA is gone")
            XCTAssertEqual(net.right.v2.sas.count, 1)
            let l = try XCTUnwrap(net.left.v2.sas.values.first), r = try XCTUnwrap(net.right.v2.sas.values.first)
            XCTAssertEqual(l.localSPI, r.remoteSPI); XCTAssertTrue(l.isEstablished)
            XCTAssertEqual(l.originalInitiator, rekeyer == a, "whoever rekeys is the new SA's original initiator")
            XCTAssertEqual(children(net.left).map(\.0), child.map(\.0), "the child moved, not renegotiated")
            XCTAssertEqual(net.left.v2.children.first?.ikeSPI, l.localSPI)
            // The new SA works: a CREATE_CHILD_SA over it.
            net.add(a, net.left.acquire(policyID: 2, now: net.now))
            net.run()
            assertOnePairAgreed(net, 2)
        }
    }

    func testSimultaneousIKESARekeysLeaveOneSAWithTheChildren() throws {
        for seed in [UInt64(11), 12, 13, 14] {
            let net = IKEv2Net(left: V2.config(local: a, more: [second(local: a)]),
                               right: V2.config(local: b, more: [second(local: b)]), seed: seed)
            net.add(a, net.left.acquire(policyID: 1, now: net.now))
            net.run()
            for s in [net.left, net.right] { for sa in s.v2.sas.values { sa.rekeyAt = 10_000 } }
            net.advance(to: 12_000)
            net.advance(to: 80_000, step: 5_000)
            let live = net.left.v2.sas.values.filter { $0.rekeyedInto == nil && $0.isEstablished }
            XCTAssertEqual(live.count, 1, "seed \(seed)")
            XCTAssertEqual(net.right.v2.sas.values.filter { $0.rekeyedInto == nil && $0.isEstablished }.count, 1)
            let l = try XCTUnwrap(live.first)
            XCTAssertEqual(net.left.v2.children.first?.ikeSPI, l.localSPI, "seed \(seed): the child is on the survivor")
            XCTAssertEqual(net.right.v2.sas[l.remoteSPI]?.remoteSPI, l.localSPI, "both sides kept the same SA")
            net.add(a, net.left.acquire(policyID: 2, now: net.now))
            net.run()
            assertOnePairAgreed(net, 2)
        }
    }

    func testDeletesBothWays() throws {
        let net = established()
        // A configuration without the policy: its child is deleted, the peer told.
        let spis = children(net.left)
        net.add(a,
                net.left.configure(IKEConfiguration(peers: net.left.configuration.peers, policies: []), now: net.now))
        net.run()
        XCTAssertTrue(children(net.left).isEmpty); XCTAssertTrue(children(net.right).isEmpty)
        XCTAssertEqual(net.audit(b, "ike-delete").first?.text, "peer deleted a child SA")
        XCTAssertTrue(net.removed[b]?.contains { $0.spi == spis[0].1 } ?? false)
        // The peer goes: its IKE SA is deleted and the other side forgets it.
        net.add(b, net.right.configure(IKEConfiguration(), now: net.now))
        net.run()
        XCTAssertTrue(net.left.remotePeers(now: net.now).isEmpty)
        XCTAssertTrue(net.right.remotePeers(now: net.now).isEmpty)
        XCTAssertEqual(net.audit(a, "ike-delete").last?.text, "peer deleted the IKE SA")
    }

    func testLivenessChecksDeclareASilentPeerDead() throws {
        let net = established(peer: { $0.dpdInterval = Seconds(10); $0.dpdMaximumFailures = 3 })
        net.advance(to: 30_000, step: 1_000)
        XCTAssertTrue(net.audit(a, "ike-dpd").isEmpty, "a live peer answers")
        XCTAssertFalse(children(net.left).isEmpty)
        net.drop = { _, _ in true }
        net.advance(to: 90_000, step: 1_000)
        XCTAssertEqual(net.audit(a, "ike-dpd").count, 1)
        XCTAssertTrue(children(net.left).isEmpty)
        XCTAssertTrue(net.left.remotePeers(now: net.now).isEmpty)
    }

    func testUnansweredRequestsRetransmitWithBackoffThenFail() throws {
        let net = IKEv2Net(left: V2.config(local: a), right: V2.config(local: b))
        let first = net.left.acquire(policyID: 1, now: 0)
        guard case .send(let m, _, _, _)? = first.first(where: { if case .send = $0 { return true }; return false })
        else {
            return XCTFail("no IKE_SA_INIT")
        }
        var resent: [UInt64] = []
        var failed = false
        for t in stride(from: UInt64(0), through: 120_000, by: 500) {
            for action in net.left.tick(now: t) {
                if case .send(let again, _, _, _) = action { XCTAssertEqual(again, m); resent.append(t) }
                if case .audit(let note) = action, note.msgID == "ike-timeout" { failed = true }
            }
            if failed { break }
        }
        XCTAssertEqual(resent, [2_000, 6_000, 14_000, 30_000], "2 s, doubling, five sends in all")
        XCTAssertTrue(failed)
        XCTAssertTrue(net.left.acquire(policyID: 1, now: 63_000).isEmpty, "a failed policy waits before trying again")
    }

    func testTheResponderAnswersARepeatedRequestFromItsCache() throws {
        let net = IKEv2Net(left: V2.config(local: a), right: V2.config(local: b))
        net.add(a, net.left.acquire(policyID: 1, now: net.now))
        // Deliver IKE_SA_INIT, its answer, and IKE_AUTH; drop the IKE_AUTH response once.
        var dropped = false
        net.drop = { origin, bytes in
            if origin == IKEv2Net.b, !dropped, bytes.count > IKEv2Header.size,
               bytes[18] == IKEv2Exchange.ikeAuth.rawValue {
                dropped = true
                return true
            }
            return false
        }
        net.run()
        XCTAssertTrue(dropped)
        XCTAssertNil(net.installed[a], "the initiator has not heard the answer")
        let installedRight = net.installed[b]?.count
        net.advance(to: net.now + 2_500)
        XCTAssertNotNil(net.installed[a], "the retransmitted IKE_AUTH was answered")
        XCTAssertEqual(net.installed[b]?.count, installedRight, "from the cache: nothing negotiated twice")
        XCTAssertEqual(net.left.v2.sas.count, 1); XCTAssertEqual(net.right.v2.sas.count, 1)
    }

    func testMessagesAboveTheLimitGoInFragmentsAndAreReassembled() throws {
        let net = IKEv2Net(left: V2.config(local: a), right: V2.config(local: b))
        net.left.v2.fragmentLimit = 200
        net.right.v2.fragmentLimit = 200
        net.add(a, net.left.acquire(policyID: 1, now: net.now))
        net.run()
        XCTAssertNotNil(net.installed[a]); XCTAssertNotNil(net.installed[b])
        XCTAssertTrue(net.sent.dropFirst(2).allSatisfy { $0.bytes.count <= 200 },
                      "every IKE_AUTH datagram within the limit")
        XCTAssertGreaterThan(net.sent.count, 4, "IKE_AUTH went in pieces")
        XCTAssertFalse(net.audit(a, "ike-fragments").isEmpty); XCTAssertFalse(net.audit(b, "ike-fragments").isEmpty)
    }

    func testACookieAtTheThresholdAndTheInitiatorRetries() throws {
        let net = IKEv2Net(left: V2.config(local: a), right: V2.config(local: b))
        // Half-open SAs from the peer's address that never go on.
        for i in 0..<IKEv2Admission.cookieThreshold {
            let spoof = IKEService(configuration: V2.config(local: a))
            _ = i
            for case .send(let m, _, _, _) in spoof.acquire(policyID: 1, now: 0) {
                _ = net.right.receive(m, from: Endpoint(address: a, port: 500), localPort: 500, localAddress: b, now: 0)
            }
        }
        XCTAssertEqual(net.right.responderLoad.unverified, IKEv2Admission.cookieThreshold)
        net.add(a, net.left.acquire(policyID: 1, now: net.now))
        net.run()
        XCTAssertNotNil(net.installed[a], "the real peer gets in with the cookie")
        XCTAssertEqual(net.right.responderLoad.cookiesSent, 1)
        XCTAssertEqual(net.audit(a, "ike-cookie").count, 1)
        XCTAssertEqual(net.sent.count, 6, "IKE_SA_INIT, COOKIE, IKE_SA_INIT with it, its answer, IKE_AUTH twice")
        // A forged cookie gets no state.
        XCTAssertFalse(IKEv2Admission().valid(Array(repeating: 1, count: 36), nonce: [1], address: a, initiatorSPI: 1))
        XCTAssertEqual(net.right.responderLoad.unverified, IKEv2Admission.cookieThreshold)
    }

    func testNATDetectedFloatsTo4500AndEncapsulatesESP() throws {
        // The initiator believes its address is another: the peer's hash of it will not match.
        var left = V2.config(local: a, peer: { $0.natTraversal = true })
        left.policies[0].saSource = 0xc0a8_0001
        let net = IKEv2Net(left: left, right: V2.config(local: b, peer: { $0.natTraversal = true }))
        net.add(a, net.left.acquire(policyID: 1, now: net.now))
        net.run()
        XCTAssertEqual(net.sent[2].port, 4500, "IKE_AUTH goes from 4500")
        XCTAssertTrue(net.sent[2].bytes.starts(with: [0, 0, 0, 0]), "with the non-ESP marker")
        let inbound = try XCTUnwrap(net.installed[b]?.last?.first { $0.inbound })
        XCTAssertEqual(inbound.udpLocalPort, 4500); XCTAssertEqual(inbound.udpRemotePort, 4500)
        XCTAssertEqual(net.audit(b, "ike-established").first?.fields.first { $0.name == "nat-t" }?.value, "yes")
    }
}

extension IKEv2LifecycleTests {
    func testForcedUDPEncapsulationPutsESPInUDPWithoutANAT() throws {
        // No NAT between the engines; the left one forces encapsulation (force-udp-encapsulation=yes).
        let left = V2.config(local: a, peer: { $0.natTraversal = true; $0.forceUDPEncapsulation = true })
        let net = IKEv2Net(left: left, right: V2.config(local: b, peer: { $0.natTraversal = true }))
        net.add(a, net.left.acquire(policyID: 1, now: net.now))
        net.run()
        XCTAssertEqual(net.sent[2].port, 4500, "IKE_AUTH floats to 4500")
        for side in [a, b] {
            let pair = try XCTUnwrap(net.installed[side]?.last)
            XCTAssertTrue(pair.allSatisfy { $0.udpLocalPort == 4500 && $0.udpRemotePort == 4500 }, "ESP in UDP")
        }
        // Without it, the same pair keeps raw ESP.
        let plain = IKEv2Net(left: V2.config(local: a, peer: { $0.natTraversal = true }),
                             right: V2.config(local: b, peer: { $0.natTraversal = true }))
        plain.add(a, plain.left.acquire(policyID: 1, now: plain.now))
        plain.run()
        XCTAssertTrue(try XCTUnwrap(plain.installed[b]?.last).allSatisfy { $0.udpRemotePort == nil })
    }
}
