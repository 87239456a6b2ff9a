import KeywayMonitor
import KeywayVocabulary
import KeywayWire
import XCTest

/// keyway-ike played by a compromised sender asking the monitor to sign.
final class SignGateTests: XCTestCase {
    let signers = [SignGate.Signer(address: IPv4Prefix(0xc000_0202, length: 32), certificate: "router1")]
    let exchange = SigningExchange(initiatorCookie: Array(1...8), peer: IPv4Address(0xc000_0202), prf: .sha256,
                                   initiator: true)

    func announced(_ gate: inout SignGate, _ e: SigningExchange? = nil, now: UInt64 = 0) throws {
        try gate.announce(SignAnnounce(exchange: e ?? exchange, certificate: "router1"), signers: signers, now: now)
    }

    func testAnAnnouncedHashOfThePRFsLengthIsSignedOnce() throws {
        var gate = SignGate()
        try announced(&gate)
        XCTAssertNoThrow(try gate.authorize(SignRequest(id: 1, exchange: exchange, certificate: "router1",
                                                        data: Array(repeating: 1, count: 32)), now: 5))
        XCTAssertThrowsError(try gate.authorize(SignRequest(id: 2, exchange: exchange, certificate: "router1",
                                                            data: Array(repeating: 2, count: 32)), now: 6),
                             "a second signature for the same exchange and side")
    }

    func testADigestInfoIsNeverSigned() throws {
        var gate = SignGate()
        try announced(&gate)
        // DigestInfo for SHA-256 (19 bytes) followed by a hash: a standard PKCS#1 v1.5 signature of any message.
        let digestInfo: [UInt8] = [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                   0x01, 0x05, 0x00, 0x04, 0x20]
        let request = SignRequest(id: 1, exchange: exchange, certificate: "router1",
                                  data: digestInfo + Array(repeating: 0xab, count: 32))
        XCTAssertThrowsError(try gate.authorize(request, now: 1))
        XCTAssertThrowsError(try gate.authorize(SignRequest(id: 1, exchange: exchange, certificate: "router1",
                                                            data: Array(repeating: 0, count: 20)), now: 1),
                             "the length of another PRF")
    }

    func testOnlyAnnouncedExchangesWithAConfiguredPeerAndItsCertificate() throws {
        var gate = SignGate()
        XCTAssertThrowsError(try gate.authorize(SignRequest(id: 1, exchange: exchange, certificate: "router1",
                                                            data: Array(repeating: 1, count: 32)), now: 0))
        XCTAssertThrowsError(try gate.announce(SignAnnounce(exchange: exchange, certificate: "ca-key"),
                                               signers: signers, now: 0),
                             "a key no peer names")
        let stranger = SigningExchange(initiatorCookie: Array(1...8), peer: IPv4Address(0x0808_0808), prf: .sha256,
                                       initiator: true)
        XCTAssertThrowsError(try gate.announce(SignAnnounce(exchange: stranger, certificate: "router1"),
                                               signers: signers, now: 0))
        try announced(&gate)
        XCTAssertThrowsError(try announced(&gate), "announced twice")
        XCTAssertThrowsError(try gate.authorize(SignRequest(id: 1, exchange: exchange, certificate: "router1",
                                                            data: Array(repeating: 1, count: 32)),
                                                now: SignGate.announcementLifetime + 1), "too late")
    }

    func testSigningIsRateLimited() throws {
        var gate = SignGate()
        var signed = 0
        for i in 0..<100 {
            var cookie = Array(repeating: UInt8(0), count: 8)
            cookie[0] = UInt8(i)
            let e = SigningExchange(initiatorCookie: cookie, peer: exchange.peer, prf: .sha1, initiator: true)
            try gate.announce(SignAnnounce(exchange: e, certificate: "router1"), signers: signers, now: 1000)
            if (try? gate.authorize(SignRequest(id: UInt64(i), exchange: e, certificate: "router1",
                                                data: Array(repeating: 1, count: 20)), now: 1000)) != nil {
                signed += 1
            }
        }
        XCTAssertEqual(UInt64(signed), SignGate.burst)
    }
}
