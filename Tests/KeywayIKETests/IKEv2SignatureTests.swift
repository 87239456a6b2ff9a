import KeywayCrypto
import KeywayVocabulary
import KeywayWire
@testable import KeywayIKE
import XCTest

/// IKE_AUTH with certificates: RFC 7427 digital signatures (RSA-PSS, ECDSA) made by the monitor
/// (played by the harness through the real SignGate), the peer's verified with the pinned
/// remote-certificate.
final class IKEv2SignatureTests: XCTestCase {
    let a = V2.a, b = V2.b

    func signature(_ mine: String, _ theirs: String) throws -> SignatureAuthentication {
        func pem(_ n: String) -> String {
            n == "a" ? Credentials.certA : n == "b" ? Credentials.certB : Credentials.certEC
        }
        return SignatureAuthentication(certificateName: mine,
                                       localCertificate: try Certificate(pemOrDER: Array(pem(mine).utf8)).der,
                                       remoteCertificate: try Certificate(pemOrDER: Array(pem(theirs).utf8)))
    }

    func net(left: (String, String), right: (String, String)) throws -> IKEv2Net {
        let l = try signature(left.0, left.1), r = try signature(right.0, right.1)
        return IKEv2Net(left: V2.config(local: a, peer: { $0.signature = l }),
                        right: V2.config(local: b, peer: { $0.signature = r }))
    }

    func testRSAPSSBothWaysThroughTheMonitorsGate() throws {
        let n = try net(left: ("a", "b"), right: ("b", "a"))
        n.add(a, n.left.acquire(policyID: 1, now: n.now))
        n.run()
        XCTAssertNotNil(n.installed[a]); XCTAssertNotNil(n.installed[b])
        XCTAssertEqual(n.signRequests[a]?.count, 1); XCTAssertEqual(n.signRequests[b]?.count, 1)
        XCTAssertEqual(n.signRequests[a]?.first?.method, 14, "the peer said which hashes it verifies: RFC 7427")
        XCTAssertEqual(n.signRequests[b]?.first?.peerHashes, [.sha256, .sha384, .sha512])
        XCTAssertEqual(n.announced[a]?.count, 1); XCTAssertEqual(n.announced[b]?.count, 1)
        XCTAssertTrue(n.refusedByGate.isEmpty, "the gate refused \(n.refusedByGate)")
        // The responder's request names its own side and both SPIs.
        let exchange = try XCTUnwrap(n.announced[b]?.first)
        XCTAssertFalse(exchange.initiator); XCTAssertEqual(exchange.version, 2)
        XCTAssertFalse(exchange.responderSPI.allSatisfy { $0 == 0 })
    }

    func testECDSAOnOneSideRSAOnTheOther() throws {
        let n = try net(left: ("ec", "b"), right: ("b", "ec"))
        n.add(a, n.left.acquire(policyID: 1, now: n.now))
        n.run()
        XCTAssertNotNil(n.installed[a]); XCTAssertNotNil(n.installed[b])
        XCTAssertTrue(n.refusedByGate.isEmpty, "\(n.refusedByGate)")
    }

    func testAPeerWhoseCertificateIsNotThePinnedOneIsAuthenticationFailed() throws {
        // The right side expects certificate "ec" but the left presents "a".
        let n = try net(left: ("a", "b"), right: ("b", "ec"))
        n.add(a, n.left.acquire(policyID: 1, now: n.now))
        n.run()
        XCTAssertNil(n.installed[b])
        XCTAssertEqual(n.audit(b, "ike-failed").first?.text,
                       "IKE SA negotiation failed: the peer's certificate is not the configured remote-certificate")
        XCTAssertNil(n.signRequests[b], "the responder never asks for a signature for a peer it did not authenticate")
        XCTAssertEqual(n.audit(a, "ike-peer-refused").first?.text, "peer refused the IKE SA: AUTHENTICATION_FAILED")
    }

    func testWhenTheMonitorWillNotSignTheExchangeFails() throws {
        let n = try net(left: ("a", "b"), right: ("b", "a"))
        n.keys["a"] = nil
        n.add(a, n.left.acquire(policyID: 1, now: n.now))
        n.run()
        XCTAssertNil(n.installed[a])
        XCTAssertEqual(n.audit(a, "ike-failed").first?.text,
                       "IKE SA negotiation failed: the monitor did not sign with certificate a")
    }

    /// Method 1 (RFC 7296's RSA signature, SHA-1) and RFC 7427's identifiers read back.
    func testMethodOneAndAlgorithmIdentifiersVerify() throws {
        let n = try net(left: ("a", "b"), right: ("b", "a"))
        let sa = IKEv2SA(localSPI: 1, originalInitiator: true, remote: Endpoint(address: b, port: 500), localAddress: a,
                         peer: n.right.configuration.peers[0], group: .modp2048, state: .established, now: 0)
        sa.suite = IKEv2Suite(encryption: .aes128, prf: .sha256, integrity: .sha256, group: .modp2048)
        let octets = Array("RealMessage1 | NonceRData | MACedIDForI".utf8)
        let key = try PrivateKey(pemOrDER: Array(Credentials.keyA.utf8))
        let engine = n.right.v2
        XCTAssertNoThrow(try engine.verifyPeer(sa, method: 1, data: try key.sign(octets, scheme: .rsaPKCS1SHA1),
                                               certificates: [], octets: octets))
        for scheme in [SignatureScheme.rsaPSSSHA256, .rsaPSSSHA512, .rsaPKCS1SHA384] {
            let data = SignatureAlgorithms.authData(scheme, signature: try key.sign(octets, scheme: scheme))
            XCTAssertEqual(SignatureAlgorithms.parse(data)?.scheme, scheme)
            XCTAssertNoThrow(try engine.verifyPeer(sa, method: 14, data: data, certificates: [], octets: octets),
                             scheme.rawValue)
            XCTAssertThrowsError(try engine.verifyPeer(sa, method: 14, data: data, certificates: [],
                                                       octets: octets + [1]))
        }
        // RFC 7427 A.4.3's RSASSA-PSS with SHA-256 identifier, byte for byte.
        XCTAssertEqual(Hex.encode(SignatureAlgorithms.identifier(.rsaPSSSHA256)),
                       "3041" + "06092a864886f70d01010a" + "3034" + "a00f300d0609608648016503040201" + "0500"
                       + "a11c301a06092a864886f70d010108300d0609608648016503040201" + "0500" + "a203020120")
        XCTAssertThrowsError(try engine.verifyPeer(sa, method: 9, data: [1, 2, 3], certificates: [], octets: octets),
                             "RFC 4754's ECDSA methods are not used")
        XCTAssertNil(SignatureAlgorithms.parse([200, 1, 2]), "a length beyond the data")
    }
}
