import KeywayCrypto
import KeywayVocabulary
import KeywayWire
@testable import KeywayIKE
import XCTest

/// Two Keyway IKEv2 engines back to back: IKE_SA_INIT and IKE_AUTH with the first child SA, and
/// each refusal with its notification and audit line.
final class IKEv2ExchangeTests: XCTestCase {
    let a = V2.a, b = V2.b

    func establish(_ net: IKEv2Net, policy: Int = 1) {
        net.add(a, net.left.acquire(policyID: policy, now: net.now))
        net.run()
    }

    func assertPairsMatch(_ net: IKEv2Net, file: StaticString = #filePath, line: UInt = #line) throws {
        let pairs = try XCTUnwrap(net.lastPairs, file: file, line: line)
        for (mine, theirs) in [(pairs.left, pairs.right), (pairs.right, pairs.left)] {
            let out = try XCTUnwrap(mine.first { !$0.inbound }), peerIn = try XCTUnwrap(theirs.first { $0.inbound })
            XCTAssertEqual(out.spi, peerIn.spi, file: file, line: line)
            XCTAssertEqual(out.encryptionKey, peerIn.encryptionKey, file: file, line: line)
            XCTAssertEqual(out.integrityKey, peerIn.integrityKey, file: file, line: line)
            XCTAssertEqual([out.source, out.destination], [peerIn.source, peerIn.destination], file: file, line: line)
            XCTAssertGreaterThanOrEqual(out.spi, 256, file: file, line: line)
        }
        XCTAssertNotEqual(pairs.left[0].encryptionKey, pairs.left[1].encryptionKey, "each direction has its own keys",
                          file: file, line: line)
    }

    func testPreSharedKeyEstablishesTheIKESAAndTheFirstChildInFourMessages() throws {
        let net = IKEv2Net(left: V2.config(local: a), right: V2.config(local: b))
        establish(net)
        XCTAssertEqual(net.sent.count, 4, "IKE_SA_INIT and IKE_AUTH, request and response each")
        try assertPairsMatch(net)
        let out = try XCTUnwrap(net.installed[a]?.last?.first { !$0.inbound })
        XCTAssertEqual(out.encryption, .aes128); XCTAssertEqual(out.integrity, .sha1)
        XCTAssertEqual(out.encryptionKey.count, 16); XCTAssertEqual(out.integrityKey.count, 20)
        XCTAssertTrue(out.tunnel); XCTAssertFalse(out.pfs); XCTAssertEqual(out.lifetime, Seconds(1_800))
        XCTAssertNil(out.udpLocalPort, "no NAT between the two")
        XCTAssertEqual(net.left.phase2(policyID: 1), .established)
        XCTAssertEqual(net.right.phase2(policyID: 1), .established)
        let peer = try XCTUnwrap(net.left.remotePeers(now: 5_000).first)
        XCTAssertEqual(peer.version, 2)
        XCTAssertEqual(peer.state, "established")
        XCTAssertEqual(peer.side, "initiator")
        XCTAssertEqual(net.right.remotePeers(now: 5_000).first?.side, "responder")
        XCTAssertEqual(net.audit(b, "ike-established").first?.fields.first { $0.name == "proposal" }?.value,
                       "aes-128/sha256/modp2048")
        XCTAssertEqual(net.audit(a, "ike-child-established").count, 1)
    }

    func testAESGCMAndCurve25519ForTheIKESAWithAnAESGCMChild() throws {
        let peer: (inout IKEPeer) -> Void = { $0.encryption = .aes256gcm; $0.hash = .sha384; $0.groups = [.curve25519] }
        let child: (inout IKEPolicy) -> Void = { $0.encAlgorithms = [.aes256gcm] }
        let net = IKEv2Net(left: V2.config(local: a, peer: peer, policy: child),
                           right: V2.config(local: b, peer: peer, policy: child))
        establish(net)
        try assertPairsMatch(net)
        let out = try XCTUnwrap(net.installed[a]?.last?.first { !$0.inbound })
        XCTAssertEqual(out.encryption, .aes256gcm); XCTAssertEqual(out.integrity, .null)
        XCTAssertEqual(out.encryptionKey.count, 36, "key and 4-byte salt")
        XCTAssertEqual(net.audit(a, "ike-established").first?.fields.first { $0.name == "proposal" }?.value,
                       "aes-256-gcm/prf-sha384/curve25519")
    }

    func testWrongPreSharedKeyIsAuthenticationFailedWithTheReason() {
        let net = IKEv2Net(left: V2.config(local: a, secret: "one"), right: V2.config(local: b, secret: "two"))
        establish(net)
        XCTAssertNil(net.installed[a]); XCTAssertNil(net.installed[b])
        let failure = net.audit(b, "ike-failed").first
        XCTAssertEqual(failure?.text, "IKE SA negotiation failed: AUTH does not match: the pre-shared keys differ")
        XCTAssertEqual(failure?.fields.first { $0.name == "notify" }?.value, "AUTHENTICATION_FAILED")
        XCTAssertEqual(net.audit(a, "ike-peer-refused").first?.text, "peer refused the IKE SA: AUTHENTICATION_FAILED")
        XCTAssertTrue(net.left.remotePeers(now: 2_000).isEmpty)
        XCTAssertTrue(net.right.remotePeers(now: 2_000).isEmpty)
    }

    func testIKEProposalMismatchIsNoProposalChosenNamingBothSides() {
        let net = IKEv2Net(left: V2.config(local: a),
                           right: V2.config(local: b, peer: { $0.encryption = .aes256; $0.hash = .sha384 }))
        establish(net)
        let failure = net.audit(b, "ike-failed").first
        XCTAssertEqual(failure?.text, "IKE SA negotiation failed: peer offered aes-128/prf-sha256/sha256/modp2048; "
                       + "peer 192.0.2.1/32 has aes-256/sha384/modp2048")
        XCTAssertEqual(failure?.fields.first { $0.name == "notify" }?.value, "NO_PROPOSAL_CHOSEN")
        XCTAssertEqual(net.audit(a, "ike-peer-refused").first?.text, "peer refused the IKE SA: NO_PROPOSAL_CHOSEN")
    }

    func testChildProposalMismatchKeepsTheIKESAAndRefusesTheChild() {
        let net = IKEv2Net(left: V2.config(local: a),
                           right: V2.config(local: b, policy: { $0.encAlgorithms = [.aes256] }))
        establish(net)
        XCTAssertNil(net.installed[a])
        XCTAssertEqual(net.left.remotePeers(now: 2_000).first?.state, "established")
        let failure = net.audit(b, "ike-failed").first
        XCTAssertEqual(failure?.fields.first { $0.name == "notify" }?.value, "NO_PROPOSAL_CHOSEN")
        XCTAssertTrue(failure?.text.contains("peer offered esp aes-128/sha1") ?? false, failure?.text ?? "")
        XCTAssertTrue(failure?.text.contains("policy 1 has aes-256/sha1/no pfs") ?? false, failure?.text ?? "")
        XCTAssertEqual(net.audit(a, "ike-peer-refused").first?.text, "peer refused the child SA: NO_PROPOSAL_CHOSEN")
    }

    func testSelectorsOutsideThePolicyAreTSUnacceptable() {
        let net = IKEv2Net(left: V2.config(local: a, policy: { $0.source = 0x0a09_0000 }), right: V2.config(local: b))
        establish(net)
        XCTAssertNil(net.installed[b])
        let failure = net.audit(b, "ike-failed").first
        XCTAssertEqual(failure?.fields.first { $0.name == "notify" }?.value, "TS_UNACCEPTABLE")
        XCTAssertEqual(failure?.text, "child SA negotiation failed: peer proposed 10.2.0.0/24 <=> 10.9.0.0/24; "
                       + "policy 1 10.2.0.0/24 <=> 10.1.0.0/24")
        XCTAssertEqual(net.audit(a, "ike-peer-refused").first?.text, "peer refused the child SA: TS_UNACCEPTABLE")
    }

    func testWiderSelectorsAreNarrowedToTheResponderPolicy() throws {
        // The initiator asks for 10.0.0.0/8 <=> 10.2.0.0/24; the responder's policy is 10.1.0.0/24.
        var left = V2.config(local: a, policy: { $0.sourceLength = 8; $0.source = 0x0a00_0000 })
        let right = V2.config(local: b)
        left.policies[0].source = 0x0a00_0000
        let net = IKEv2Net(left: left, right: right)
        establish(net)
        XCTAssertNotNil(net.installed[b], "the responder keys its own, narrower policy")
        XCTAssertEqual(net.installed[b]?.last?.first?.policyID, 1)
        // The initiator's policy is not what the responder narrowed to: it refuses rather than
        // install SAs its peer would not accept traffic on.
        XCTAssertNil(net.installed[a])
        XCTAssertTrue(net.audit(a, "ike-failed").first?.text.contains("the peer narrowed the traffic selectors")
                          ?? false)
    }

    func testInvalidKEPayloadThenTheGroupTheResponderWants() throws {
        let net = IKEv2Net(left: V2.config(local: a, peer: { $0.groups = [.ecp256, .modp2048] }),
                           right: V2.config(local: b, peer: { $0.groups = [.modp2048] }))
        establish(net)
        try assertPairsMatch(net)
        XCTAssertEqual(net.sent.count, 6, "IKE_SA_INIT twice, then IKE_AUTH")
        XCTAssertEqual(net.audit(a, "ike-invalid-ke").first?.text,
                       "the responder wants group modp2048 (INVALID_KE_PAYLOAD): IKE_SA_INIT repeated with it")
        XCTAssertTrue(net.audit(b, "ike-invalid-ke").first?.text.contains("asks for modp2048") ?? false)
        XCTAssertEqual(net.audit(a, "ike-established").first?.fields.first { $0.name == "proposal" }?.value,
                       "aes-128/sha256/modp2048")
    }

    func testIdentitiesAreSentAndCheckedAgainstRemoteID() throws {
        let left = V2.config(local: a,
                             peer: { $0.myID = .fqdn("left.example"); $0.remoteID = .keyID(Array("right".utf8)) })
        let right = V2.config(local: b,
                              peer: { $0.myID = .keyID(Array("right".utf8)); $0.remoteID = .fqdn("left.example") })
        let net = IKEv2Net(left: left, right: right)
        establish(net)
        try assertPairsMatch(net)
        let wrong = IKEv2Net(left: left, right: V2.config(local: b, peer: { $0.remoteID = .fqdn("someone.else") }))
        establish(wrong)
        XCTAssertNil(wrong.installed[b])
        XCTAssertEqual(wrong.audit(b, "ike-failed").first?.text,
                       "IKE SA negotiation failed: the peer identified as fqdn:left.example; "
                          + "remote-id=fqdn:someone.else")
    }

    /// Every random byte comes from the injected source: the same seeds replay the same bytes.
    func testSeededRandomnessReplaysTheExchangeByteForByte() {
        func transcript() -> [[UInt8]] {
            let net = IKEv2Net(left: V2.config(local: a), right: V2.config(local: b), seed: 42)
            establish(net)
            return net.sent.map(\.bytes)
        }
        let one = transcript(), two = transcript()
        XCTAssertEqual(one.count, 4)
        XCTAssertEqual(one, two)
    }
}
