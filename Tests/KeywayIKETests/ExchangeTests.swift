import KeywayVocabulary
import KeywayCrypto
@testable import KeywayIKE
import XCTest

/// Two Keyway IKE engines in one process, wired back to back, with an injected clock.
final class ExchangeTests: XCTestCase {
    let a: UInt32 = 0xc000_0201, b: UInt32 = 0xc000_0202  // 192.0.2.1, 192.0.2.2

    struct Pair {
        let left: IKEEngine, right: IKEEngine
        var installed: [UInt32: [NegotiatedSA]] = [:]
        var audits: [UInt32: [IKEAudit]] = [:]
        /// SAs each side removed from its datapath.
        var removed: [UInt32: Int] = [:]
        var sent = 0
    }

    func configuration(local: UInt32, remote: UInt32, secret: String = "keyway-test",
                       peer: (inout IKEPeer) -> Void = { _ in },
                       policy: (inout IKEPolicy) -> Void = { _ in }) -> IKEConfiguration {
        var p = IKEPeer(address: remote, secret: Secret(Array(secret.utf8)), hash: .sha1, encryption: .aes128,
                        group: .modp1024)
        peer(&p)
        let localNet: UInt32 = local == a ? 0x0a01_0000 : 0x0a02_0000,
            remoteNet: UInt32 = local == a ? 0x0a02_0000 : 0x0a01_0000
        var pol = IKEPolicy(id: 1, source: localNet, sourceLength: 24, destination: remoteNet, destinationLength: 24,
                            saSource: local, saDestination: remote, tunnel: true, authAlgorithms: [.sha1],
                            encAlgorithms: [.aes128])
        policy(&pol)
        return IKEConfiguration(peers: [p], policies: [pol])
    }

    /// Delivers datagrams until both sides are quiet; returns what each installed and audited.
    func run(_ left: IKEEngine, _ right: IKEEngine, start: [IKEAction], now: UInt64 = 1_000) -> Pair {
        var pair = Pair(left: left, right: right)
        var queue: [(UInt32, IKEAction)] = start.map { (a, $0) }
        var steps = 0
        while !queue.isEmpty, steps < 100 {
            steps += 1
            let (origin, action) = queue.removeFirst()
            switch action {
            case .send(let bytes, let port, let to, _):
                pair.sent += 1
                let target = to.address == a ? left : right
                let from = Endpoint(address: origin, port: port)
                queue += target.receive(bytes, from: from, localPort: to.port, localAddress: to.address, now: now)
                    .map { (to.address, $0) }
            case .install(let sas): pair.installed[origin, default: []] += sas
            case .announceSigning, .signIKEv2: break
            case .sign(let id, let name, let data, _):
                // The monitor's part: sign with the key of the named certificate.
                let engine = origin == a ? left : right
                let key = try? RSAPrivateKey(pemOrDER: Array((name == "a" ? Credentials.keyA : Credentials.keyB).utf8))
                queue += engine.signed(id: id, signature: try? key?.sign(data), now: now).map { (origin, $0) }
            case .audit(let note): pair.audits[origin, default: []].append(note)
            case .remove(let list): pair.removed[origin, default: 0] += list.count
            }
        }
        return pair
    }

    func testMainModeAndQuickModeWithPFSKeyBothSidesAlike() throws {
        let left = IKEEngine(configuration: configuration(local: a, remote: b))
        let right = IKEEngine(configuration: configuration(local: b, remote: a))
        let p = run(left, right, start: left.acquire(policyID: 1, now: 1_000))
        let l = try XCTUnwrap(p.installed[a]), r = try XCTUnwrap(p.installed[b])
        XCTAssertEqual(l.count, 2); XCTAssertEqual(r.count, 2)
        XCTAssertEqual(p.sent, 9, "six main mode and three quick mode messages")
        for (mine, theirs) in [(l, r), (r, l)] {
            let out = try XCTUnwrap(mine.first { !$0.inbound }), peerIn = try XCTUnwrap(theirs.first { $0.inbound })
            XCTAssertEqual(out.spi, peerIn.spi)
            XCTAssertEqual(out.encryptionKey, peerIn.encryptionKey)
            XCTAssertEqual(out.integrityKey, peerIn.integrityKey)
            XCTAssertEqual(out.encryptionKey.count, 16); XCTAssertEqual(out.integrityKey.count, 20)
            XCTAssertEqual([out.source, out.destination], [peerIn.source, peerIn.destination])
            XCTAssertTrue(out.tunnel); XCTAssertTrue(out.pfs); XCTAssertEqual(out.lifetime, Seconds(1_800))
        }
        XCTAssertNotEqual(l[0].encryptionKey, l[1].encryptionKey, "each direction has its own keys")
        XCTAssertEqual(left.phase2(policyID: 1), .established)
        XCTAssertEqual(left.remotePeers(now: 5_000).first?.state, "established")
        XCTAssertEqual(right.remotePeers(now: 5_000).first?.side, "responder")
    }

    func testWrongPreSharedKeyFailsWithAuthenticationFailedAndANamedReason() {
        let left = IKEEngine(configuration: configuration(local: a, remote: b, secret: "one"))
        let right = IKEEngine(configuration: configuration(local: b, remote: a, secret: "two"))
        let p = run(left, right, start: left.acquire(policyID: 1, now: 1_000))
        XCTAssertNil(p.installed[a]); XCTAssertNil(p.installed[b])
        let failure = p.audits[b]?.first { $0.msgID == "ike-failed" }
        XCTAssertTrue(failure?.text.contains("pre-shared keys differ") ?? false, "\(p.audits[b] ?? [])")
        XCTAssertEqual(failure?.fields.first { $0.name == "notify" }?.value, "AUTHENTICATION-FAILED")
    }

    func testPhase1ProposalMismatchNamesBothSides() {
        let left = IKEEngine(configuration: configuration(local: a, remote: b))
        let right = IKEEngine(configuration: configuration(local: b, remote: a,
                                                           peer: { $0.encryption = .tripleDES; $0.hash = .md5 }))
        let p = run(left, right, start: left.acquire(policyID: 1, now: 1_000))
        let failure = p.audits[b]?.first { $0.msgID == "ike-failed" }
        XCTAssertEqual(
            failure?.text,
            "phase 1 negotiation failed: peer offered aes-128/sha1/modp1024; peer 192.0.2.1/32 has 3des/md5/modp1024")
        XCTAssertEqual(p.audits[a]?.first { $0.msgID == "ike-peer-refused" }?.text,
                       "peer refused the negotiation: NO-PROPOSAL-CHOSEN")
    }

    func testPhase2ProposalMismatchIsNoProposalChosen() {
        let left = IKEEngine(configuration: configuration(local: a, remote: b))
        let right = IKEEngine(configuration: configuration(local: b, remote: a,
                                                           policy: { $0.encAlgorithms = [.tripleDES] }))
        let p = run(left, right, start: left.acquire(policyID: 1, now: 1_000))
        XCTAssertNil(p.installed[a])
        let failure = p.audits[b]?.first { $0.msgID == "ike-failed" }
        XCTAssertEqual(failure?.fields.first { $0.name == "notify" }?.value, "NO-PROPOSAL-CHOSEN")
        XCTAssertTrue(failure?.text.contains("peer offered esp aes-128/sha1/modp1024") ?? false, failure?.text ?? "")
        XCTAssertEqual(p.audits[a]?.first { $0.msgID == "ike-peer-refused" }?.text,
                       "peer refused the negotiation: NO-PROPOSAL-CHOSEN")
    }

    func testLifetimeMismatchUnderEachProposalCheck() throws {
        // The initiator proposes 3600 s; the responder's policy says 1800 s.
        for (check, installs, expected) in [(IKEPeer.ProposalCheck.obey, true, UInt64(3_600)), (.claim, true, 1_800),
                                            (.strict, false, 0), (.exact, false, 0)] {
            let left = IKEEngine(configuration: configuration(local: a, remote: b,
                                                              policy: { $0.lifetime = Seconds(3_600) }))
            let right = IKEEngine(configuration: configuration(local: b, remote: a, peer: { $0.proposalCheck = check }))
            let p = run(left, right, start: left.acquire(policyID: 1, now: 1_000))
            XCTAssertEqual(p.installed[a] != nil, installs, "\(check)")
            if installs {
                XCTAssertEqual(p.installed[a]?.first?.lifetime.value, expected, "\(check): the initiator's lifetime")
                XCTAssertEqual(p.installed[b]?.first?.lifetime.value, expected, "\(check): the responder's lifetime")
            } else {
                let failure = p.audits[b]?.first { $0.msgID == "ike-failed" }
                XCTAssertTrue(failure?.text.contains("lifetime mismatch") ?? false, "\(check): \(failure?.text ?? "")")
                XCTAssertTrue(failure?.text.contains("proposal-check=\(check.rawValue)") ?? false)
            }
        }
        // The same lifetimes pass even under exact.
        let left = IKEEngine(configuration: configuration(local: a, remote: b))
        let right = IKEEngine(configuration: configuration(local: b, remote: a, peer: { $0.proposalCheck = .exact }))
        XCTAssertNotNil(run(left, right, start: left.acquire(policyID: 1, now: 1_000)).installed[a])
    }

    func testUnansweredMainModeRetransmitsWithBackoffThenFails() {
        let left = IKEEngine(configuration: configuration(local: a, remote: b))
        let first = left.acquire(policyID: 1, now: 0)
        guard case .send(let msg, _, _, _)? = first.first(where: {
            if case .send = $0 { return true } else { return false }
        }) else {
            return XCTFail("no message 1")
        }
        var resent: [UInt64] = []
        var failed = false
        for t in stride(from: UInt64(0), through: 120_000, by: 500) {
            for action in left.tick(now: t) {
                if case .send(let again, _, _, _) = action { XCTAssertEqual(again, msg); resent.append(t) }
                if case .audit(let note) = action, note.msgID == "ike-timeout" { failed = true }
            }
            if failed { break }
        }
        XCTAssertEqual(resent, [2_000, 6_000, 14_000, 30_000], "2 s, doubling")
        XCTAssertTrue(failed)
        XCTAssertTrue(left.acquire(policyID: 1, now: 31_000).isEmpty, "a failed policy waits before trying again")
    }

    func testAggressiveModeKeysBothSidesInSixMessages() throws {
        let left = IKEEngine(configuration: configuration(local: a, remote: b, peer: { $0.exchangeMode = .aggressive }))
        let right = IKEEngine(configuration: configuration(local: b, remote: a,
                                                           peer: { $0.exchangeMode = .aggressive }))
        let p = run(left, right, start: left.acquire(policyID: 1, now: 1_000))
        let l = try XCTUnwrap(p.installed[a]), r = try XCTUnwrap(p.installed[b])
        XCTAssertEqual(p.sent, 6, "three aggressive mode and three quick mode messages")
        let out = try XCTUnwrap(l.first { !$0.inbound }), peerIn = try XCTUnwrap(r.first { $0.inbound })
        XCTAssertEqual(out.spi, peerIn.spi)
        XCTAssertEqual(out.encryptionKey, peerIn.encryptionKey)
    }

    func testAggressiveModeIsRefusedWhereThePeerSaysMainAndWrongKeysFail() {
        let left = IKEEngine(configuration: configuration(local: a, remote: b, peer: { $0.exchangeMode = .aggressive }))
        let right = IKEEngine(configuration: configuration(local: b, remote: a))
        let p = run(left, right, start: left.acquire(policyID: 1, now: 1_000))
        XCTAssertNil(p.installed[a])
        XCTAssertEqual(p.audits[b]?.first { $0.msgID == "ike-refused" }?.text,
                       "aggressive mode refused: the peer is configured with exchange-mode=main")
        let l2 = IKEEngine(configuration: configuration(local: a, remote: b, secret: "x",
                                                        peer: { $0.exchangeMode = .aggressive }))
        let r2 = IKEEngine(configuration: configuration(local: b, remote: a, secret: "y",
                                                        peer: { $0.exchangeMode = .aggressive }))
        let q = run(l2, r2, start: l2.acquire(policyID: 1, now: 1_000))
        XCTAssertNil(q.installed[a])
        XCTAssertTrue(q.audits[a]?.contains { $0.text.contains("HASH_R does not match") } ?? false,
                      "\(q.audits[a] ?? [])")
    }
}

extension ExchangeTests {
    func testNoNATKeepalivesWhenNoNATWasDetected() throws {
        let left = IKEEngine(configuration: configuration(local: a, remote: b, peer: { $0.natTraversal = true }))
        let right = IKEEngine(configuration: configuration(local: b, remote: a, peer: { $0.natTraversal = true }))
        _ = run(left, right, start: left.acquire(policyID: 1, now: 1_000))
        // No NAT between two engines back to back: no float, no keepalives.
        let actions = left.tick(now: 30_000)
        XCTAssertFalse(actions.contains { if case .send([0xff], _, _, _) = $0 { return true } else { return false } })
    }
}

extension ExchangeTests {
    /// The manual's second example: router 1 has only a peer with generate-policy=yes for a
    /// whole /24; router 2 has a static transport policy and starts.
    func testGeneratePolicyMakesADynamicPolicyThatGoesWithItsSAs() throws {
        let router1 = IKEEngine(configuration: IKEConfiguration(peers: [IKEPeer(address: 0xc000_0200, prefixLength: 24,
                                                                                secret: Secret(Array("g".utf8)),
                                                                                generatePolicy: true)]))
        // Router 2 (the static side) is `a` here, router 1 `b`.
        let p2 = IKEPolicy(id: 1, source: a, sourceLength: 32, destination: b, destinationLength: 32, saSource: a,
                           saDestination: b, tunnel: false)
        let router2 = IKEEngine(configuration: IKEConfiguration(peers: [IKEPeer(address: b,
                                                                                secret: Secret(Array("g".utf8)))],
                                                                policies: [p2]))
        let p = run(router2, router1, start: router2.acquire(policyID: 1, now: 1_000))
        let generated = try XCTUnwrap(p.installed[b]?.first?.generatedPolicy,
                                      "router 1 installs SAs with the generated policy")
        XCTAssertTrue(generated.dynamic)
        XCTAssertEqual([generated.source, generated.destination, generated.saSource, generated.saDestination],
                       [b, a, b, a])
        XCTAssertFalse(generated.tunnel, "transport, as the peer proposed")
        XCTAssertGreaterThanOrEqual(generated.id, IKEEngine.firstGeneratedPolicyID)
        XCTAssertEqual(router1.generatedPolicies.count, 1)
        XCTAssertNotNil(p.installed[a], "router 2 keys its static policy")
        // The SAs' lifetime ends: the generated policy goes with them.
        _ = router1.tick(now: 1_000 + 1_800_000)
        XCTAssertTrue(router1.generatedPolicies.isEmpty)
    }

    func testWithoutGeneratePolicyAnUnknownIdentityIsInvalidIDInformation() {
        let router1 = IKEEngine(configuration: IKEConfiguration(peers: [IKEPeer(address: 0xc000_0200, prefixLength: 24,
                                                                                secret: Secret(Array("g".utf8)))]))
        let p2 = IKEPolicy(id: 1, source: a, sourceLength: 32, destination: b, destinationLength: 32, saSource: a,
                           saDestination: b, tunnel: false)
        let router2 = IKEEngine(configuration: IKEConfiguration(peers: [IKEPeer(address: b,
                                                                                secret: Secret(Array("g".utf8)))],
                                                                policies: [p2]))
        let p = run(router2, router1, start: router2.acquire(policyID: 1, now: 1_000))
        XCTAssertNil(p.installed[b])
        XCTAssertEqual(p.audits[b]?.first { $0.msgID == "ike-failed" }?.fields.first { $0.name == "notify" }?.value,
                       "INVALID-ID-INFORMATION")
    }
}

extension ExchangeTests {
    func testDeadPeerDetectionRemovesTheSAsOfAPeerThatStopsAnswering() throws {
        let dpd: (inout IKEPeer) -> Void = { $0.dpdInterval = Seconds(10); $0.dpdMaximumFailures = 3 }
        let left = IKEEngine(configuration: configuration(local: a, remote: b, peer: dpd))
        let right = IKEEngine(configuration: configuration(local: b, remote: a, peer: dpd))
        XCTAssertNotNil(run(left, right, start: left.acquire(policyID: 1, now: 1_000)).installed[a])
        // A live peer answers R-U-THERE: nothing is removed however long it goes on.
        for t in stride(from: UInt64(11_000), through: 101_000, by: 10_000) {
            let p = run(left, right, start: left.tick(now: t), now: t)
            XCTAssertFalse(p.audits[a]?.contains { $0.msgID == "ike-dpd" } ?? false, "at \(t)")
        }
        XCTAssertEqual(left.phase2(policyID: 1), .established)
        // The peer goes silent: three unanswered requests, then its SAs go.
        var probes = 0, removed = false, audited = false
        for t in stride(from: UInt64(111_000), through: 200_000, by: 10_000) {
            for action in left.tick(now: t) {
                if case .send = action { probes += 1 }
                if case .remove = action { removed = true }
                if case .audit(let note) = action, note.msgID == "ike-dpd" { audited = true }
            }
        }
        XCTAssertEqual(probes, 3)
        XCTAssertTrue(removed && audited)
        XCTAssertEqual(left.phase2(policyID: 1), .noPhase2)
        XCTAssertTrue(left.remotePeers(now: 200_000).isEmpty)
    }
}

extension ExchangeTests {
    func rsa(_ mine: String, _ theirs: String) throws -> (inout IKEPeer) -> Void {
        let local = try Certificate(pemOrDER: Array((mine == "a" ? Credentials.certA : Credentials.certB).utf8)).der
        let remote = try Certificate(pemOrDER: Array((theirs == "a" ? Credentials.certA : Credentials.certB).utf8))
        return {
            $0.signature = SignatureAuthentication(certificateName: mine, localCertificate: local,
                                                   remoteCertificate: remote)
        }
    }

    func testMainModeWithRSASignaturesSignedByTheMonitorKeysBothSides() throws {
        let left = IKEEngine(configuration: configuration(local: a, remote: b, secret: "", peer: try rsa("a", "b")))
        let right = IKEEngine(configuration: configuration(local: b, remote: a, secret: "", peer: try rsa("b", "a")))
        let p = run(left, right, start: left.acquire(policyID: 1, now: 1_000))
        let l = try XCTUnwrap(p.installed[a]), r = try XCTUnwrap(p.installed[b])
        XCTAssertEqual(l.first { !$0.inbound }?.encryptionKey, r.first { $0.inbound }?.encryptionKey)
        XCTAssertTrue(p.audits[a]?.contains {
            $0.msgID == "ike-established" && $0.fields.contains { $0.value.hasSuffix("/rsa") }
        } ?? false)
    }

    func testASignatureThatDoesNotVerifyWithTheRemoteCertificateIsAuthenticationFailed() throws {
        // Router b expects certificate b from its peer, which signs with a.
        let left = IKEEngine(configuration: configuration(local: a, remote: b, secret: "", peer: try rsa("a", "b")))
        let right = IKEEngine(configuration: configuration(local: b, remote: a, secret: "", peer: try rsa("b", "b")))
        let p = run(left, right, start: left.acquire(policyID: 1, now: 1_000))
        XCTAssertNil(p.installed[a]); XCTAssertNil(p.installed[b])
        let failure = p.audits[b]?.first { $0.msgID == "ike-failed" }
        XCTAssertEqual(failure?.fields.first { $0.name == "notify" }?.value, "AUTHENTICATION-FAILED")
        XCTAssertTrue(failure?.text.contains("not the configured remote-certificate") ?? false, failure?.text ?? "")
    }

    func testASignaturePeerAndAPreSharedKeyPeerDoNotAgree() throws {
        let left = IKEEngine(configuration: configuration(local: a, remote: b, secret: "", peer: try rsa("a", "b")))
        let right = IKEEngine(configuration: configuration(local: b, remote: a))
        let p = run(left, right, start: left.acquire(policyID: 1, now: 1_000))
        XCTAssertNil(p.installed[a])
        XCTAssertTrue(p.audits[b]?.first { $0.msgID == "ike-failed" }?.text.contains("aes-128/sha1/modp1024/rsa")
                      ?? false)
    }
}

extension ExchangeTests {
    /// Every phase 1 cipher and hash the peer menu offers (with modp1024), and every DH group of
    /// the crypto layer (with aes-128/sha1): both sides end with the same keys.
    func testEveryPhase1AlgorithmAndGroupNegotiates() throws {
        var cases: [(EncryptionAlgorithm, HashAlgorithm, DHGroup)] = []
        for enc in [EncryptionAlgorithm.des, .tripleDES, .aes128, .aes192, .aes256] {
            for hash in HashAlgorithm.allCases { cases.append((enc, hash, .modp1024)) }
        }
        for group in DHGroup.allCases where group != .modp1024 { cases.append((.aes128, .sha1, group)) }
        for (enc, hash, group) in cases {
            let set: (inout IKEPeer) -> Void = { $0.encryption = enc; $0.hash = hash; $0.group = group }
            let left = IKEEngine(configuration: configuration(local: a, remote: b, peer: set,
                                                              policy: { $0.pfsGroup = nil }))
            let right = IKEEngine(configuration: configuration(local: b, remote: a, peer: set,
                                                               policy: { $0.pfsGroup = nil }))
            let p = run(left, right, start: left.acquire(policyID: 1, now: 1_000))
            let out = p.installed[a]?.first { !$0.inbound }, peerIn = p.installed[b]?.first { $0.inbound }
            XCTAssertNotNil(out, "\(enc.rawValue)/\(hash.rawValue)/\(group.name)")
            XCTAssertEqual(out?.encryptionKey, peerIn?.encryptionKey, "\(enc.rawValue)/\(hash.rawValue)/\(group.name)")
        }
    }

    /// ipsec-protocols=ah: quick mode proposes and installs AH (no encryption key).
    func testAHThroughQuickMode() throws {
        let ah: (inout IKEPolicy) -> Void = { $0.esp = false; $0.ah = true; $0.authAlgorithms = [.sha256] }
        let left = IKEEngine(configuration: configuration(local: a, remote: b, policy: ah))
        let right = IKEEngine(configuration: configuration(local: b, remote: a, policy: ah))
        let p = run(left, right, start: left.acquire(policyID: 1, now: 1_000))
        let out = try XCTUnwrap(p.installed[a]?.first { !$0.inbound }),
            peerIn = try XCTUnwrap(p.installed[b]?.first { $0.inbound })
        XCTAssertEqual([out.proto, peerIn.proto], [51, 51])
        XCTAssertEqual(out.integrity, .sha256)
        XCTAssertEqual(out.encryptionKey.count, 0)
        XCTAssertEqual(out.integrityKey, peerIn.integrityKey)
        XCTAssertEqual(out.integrityKey.count, 32)
    }
}

extension ExchangeTests {
    /// The manual's peer matching: the most specific `address` wins, whatever the order.
    func testTheMostSpecificPeerAddressIsTheOneUsed() throws {
        let broad = IKEPeer(address: 0xc000_0200, prefixLength: 24, secret: Secret(Array("broad".utf8)))
        let exact = IKEPeer(address: a, prefixLength: 32, secret: Secret(Array("exact".utf8)))
        let pol = IKEPolicy(id: 1, source: 0x0a02_0000, sourceLength: 24, destination: 0x0a01_0000,
                            destinationLength: 24,
                            saSource: b, saDestination: a, tunnel: true, encAlgorithms: [.aes128])
        let right = IKEEngine(configuration: IKEConfiguration(peers: [broad, exact], policies: [pol]))
        let left = IKEEngine(configuration: configuration(local: a, remote: b, secret: "exact",
                                                          peer: { $0.hash = .md5; $0.encryption = .tripleDES }))
        XCTAssertNotNil(run(left, right, start: left.acquire(policyID: 1, now: 1_000)).installed[b])
        let other = IKEEngine(configuration: configuration(local: a, remote: b, secret: "broad",
                                                           peer: { $0.hash = .md5; $0.encryption = .tripleDES }))
        let right2 = IKEEngine(configuration: IKEConfiguration(peers: [exact, broad], policies: [pol]))
        XCTAssertNil(run(other, right2, start: other.acquire(policyID: 1, now: 1_000)).installed[b],
                     "the /24's secret is not used for 192.0.2.1")
    }
}

extension ExchangeTests {
    /// ipsec-protocols=ah,esp: one quick mode keys an ESP pair and an AH pair (the AH in
    /// transport mode over the ESP tunnel), with separate SPIs and keys.
    func testAHPlusESPBundleThroughQuickMode() throws {
        let both: (inout IKEPolicy) -> Void = { $0.esp = true; $0.ah = true }
        let left = IKEEngine(configuration: configuration(local: a, remote: b, policy: both))
        let right = IKEEngine(configuration: configuration(local: b, remote: a, policy: both))
        let p = run(left, right, start: left.acquire(policyID: 1, now: 1_000))
        let l = try XCTUnwrap(p.installed[a]), r = try XCTUnwrap(p.installed[b])
        XCTAssertEqual(l.count, 4); XCTAssertEqual(r.count, 4)
        for proto: UInt8 in [50, 51] {
            let out = try XCTUnwrap(l.first { !$0.inbound && $0.proto == proto }),
                peerIn = try XCTUnwrap(r.first { $0.inbound && $0.proto == proto })
            XCTAssertEqual(out.spi, peerIn.spi)
            XCTAssertEqual(out.integrityKey, peerIn.integrityKey)
            XCTAssertEqual(out.tunnel, proto == 50, "ESP tunnel, AH transport over it")
        }
        XCTAssertNotEqual(l.first { $0.proto == 50 && !$0.inbound }?.integrityKey,
                          l.first { $0.proto == 51 && !$0.inbound }?.integrityKey)
        // Its lifetime ends: all four go.
        let removed = left.tick(now: 1_000 + 1_800_000).compactMap { action -> Int? in
            if case .remove(let list) = action { return list.count } else { return nil }
        }
        XCTAssertEqual(removed.reduce(0, +), 4)
    }

    func testABundlePolicyFacingAnESPOnlyPeerIsRefusedWithTheReason() {
        let left = IKEEngine(configuration: configuration(local: a, remote: b))
        let right = IKEEngine(configuration: configuration(local: b, remote: a, policy: { $0.ah = true }))
        let p = run(left, right, start: left.acquire(policyID: 1, now: 1_000))
        XCTAssertNil(p.installed[a])
        XCTAssertTrue(p.audits[b]?.first { $0.msgID == "ike-failed" }?.text.contains("no acceptable AH beside its ESP")
                      ?? false)
    }
}

extension ExchangeTests {
    /// When phase 1 expires, the child SAs live on; the next phase 1 (here for a rekey) must not
    /// carry INITIAL-CONTACT, or the peer would drop the SAs still in use.
    func testANewPhase1WhileChildSAsLiveSendsNoInitialContact() throws {
        let short: (inout IKEPeer) -> Void = { $0.lifetime = Seconds(60) }
        let left = IKEEngine(configuration: configuration(local: a, remote: b, peer: short))
        let right = IKEEngine(configuration: configuration(local: b, remote: a, peer: short))
        let first = run(left, right, start: left.acquire(policyID: 1, now: 1_000))
        let firstSPIs = Set((first.installed[b] ?? []).map(\.spi))
        XCTAssertEqual(firstSPIs.count, 2)
        _ = left.tick(now: 62_000); _ = right.tick(now: 62_000)
        XCTAssertTrue(left.remotePeers(now: 62_000).isEmpty, "phase 1 expired")
        XCTAssertEqual(left.phase2(policyID: 1), .established, "its child SAs did not")
        // The child's soft lifetime (80% of 1800 s) starts a rekey, which needs a new phase 1.
        let rekey = run(left, right, start: left.tick(now: 1_000 + 1_440_000), now: 1_440_000)
        XCTAssertNotNil(rekey.installed[b], "the rekey succeeded")
        XCTAssertNil(rekey.removed[b], "the responder kept the SAs in use (no INITIAL-CONTACT)")
    }
}

extension ExchangeTests {
    func testForcedUDPEncapsulationPutsESPInUDPWithoutANAT() throws {
        for forcedSide in [a, b] {
            let left = IKEEngine(configuration: configuration(local: a, remote: b, peer: {
                $0.natTraversal = true; $0.forceUDPEncapsulation = forcedSide == self.a }))
            let right = IKEEngine(configuration: configuration(local: b, remote: a, peer: {
                $0.natTraversal = true; $0.forceUDPEncapsulation = forcedSide == self.b }))
            let q = run(left, right, start: left.acquire(policyID: 1, now: 1_000))
            for side in [a, b] {
                let sas = try XCTUnwrap(q.installed[side], "forced by \(forcedSide): \(side) installed")
                XCTAssertTrue(sas.allSatisfy { $0.udpLocalPort == 4500 && $0.udpRemotePort == 4500 },
                              "forced by \(forcedSide): ESP in UDP on \(side)")
            }
        }
    }
}
