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

/// IKEv2: the monitor joins the signed octets from parts it checks; keyway-ike cannot make it sign
/// anything but the octets of an IKE_AUTH of an announced exchange.
final class IKEv2SignGateTests: XCTestCase {
    let signers = [SignGate.Signer(address: IPv4Prefix(0xc000_0202, length: 32), certificate: "router1", ikeVersion: 2),
                   SignGate.Signer(address: IPv4Prefix(0xc000_0203, length: 32), certificate: "router1", ikeVersion: 1)]
    let spiI: [UInt8] = Array(1...8), spiR: [UInt8] = Array(9...16)

    func exchange(initiator: Bool = true, peer: UInt32 = 0xc000_0202) -> SigningExchange {
        SigningExchange(initiatorSPI: spiI, responderSPI: spiR, peer: IPv4Address(peer), prf: .sha256,
                        initiator: initiator)
    }

    /// An IKE_SA_INIT message: header, then SA, KE, Nonce and a notify (generic payload headers).
    func initMessage(initiator: Bool = true, payloads: [(UInt8, Int)] = [(33, 40), (34, 264), (40, 32), (41, 8)],
                     exchangeType: UInt8 = 34, messageID: UInt8 = 0) -> [UInt8] {
        var body: [UInt8] = []
        for (i, p) in payloads.enumerated() {
            let next = i + 1 < payloads.count ? payloads[i + 1].0 : 0
            body += [next, 0, UInt8((p.1 + 4) >> 8), UInt8((p.1 + 4) & 0xff)] + Array(repeating: 0x5a, count: p.1)
        }
        let total = 28 + body.count
        let flags: UInt8 = initiator ? 0x08 : 0x20
        let header = spiI + (initiator ? Array(repeating: 0, count: 8) : spiR)
            + [payloads.first?.0 ?? 0, 0x20, exchangeType, flags, 0, 0, 0, messageID,
               UInt8(total >> 24), UInt8((total >> 16) & 0xff), UInt8((total >> 8) & 0xff), UInt8(total & 0xff)]
        return header + body
    }

    func request(_ e: SigningExchange, message: [UInt8]? = nil, nonce: [UInt8] = Array(repeating: 7, count: 32),
                 macedID: [UInt8] = Array(repeating: 3, count: 32), method: UInt8 = 14) -> IKEv2SignRequest {
        IKEv2SignRequest(id: 1, exchange: e, certificate: "router1", method: method, peerHashes: [.sha256],
                         message: message ?? initMessage(initiator: e.initiator), nonce: nonce, macedID: macedID)
    }

    func testTheOctetsAreJoinedFromCheckedPartsOncePerExchangeAndSide() throws {
        for initiator in [true, false] {
            var gate = SignGate()
            let e = exchange(initiator: initiator)
            try gate.announce(SignAnnounce(exchange: e, certificate: "router1"), signers: signers, now: 0)
            let r = request(e)
            XCTAssertEqual(try gate.authorize(r, now: 1), r.message + r.nonce + r.macedID)
            XCTAssertThrowsError(try gate.authorize(r, now: 2), "a second signature for the same exchange and side")
        }
    }

    func testAnythingButAnIKESAInitOfTheAnnouncedExchangeIsRefused() throws {
        var gate = SignGate()
        let e = exchange()
        try gate.announce(SignAnnounce(exchange: e, certificate: "router1"), signers: signers, now: 0)
        var otherSPI = initMessage(); otherSPI[0] ^= 1
        var shorter = initMessage(); shorter.removeLast()
        var v1 = initMessage(); v1[17] = 0x10
        let hostile: [(String, [UInt8])] = [
            ("another initiator SPI", otherSPI),
            ("the responder's message when we initiated", initMessage(initiator: false)),
            ("an IKE_AUTH message", initMessage(exchangeType: 35)),
            ("message ID 1", initMessage(messageID: 1)),
            ("a length field that lies", shorter),
            ("IKEv1", v1),
            ("an SK payload", initMessage(payloads: [(33, 40), (34, 264), (40, 32), (46, 100)])),
            ("an AUTH payload", initMessage(payloads: [(33, 40), (34, 264), (40, 32), (39, 40)])),
            ("no KE", initMessage(payloads: [(33, 40), (40, 32)])),
            ("trailing bytes", initMessage() + [0, 0]),
            ("a DigestInfo instead", [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
                                      0x02, 0x01, 0x05, 0x00, 0x04, 0x20] + Array(repeating: 0xab, count: 32)),
        ]
        for (what, message) in hostile {
            XCTAssertThrowsError(try gate.authorize(request(e, message: message), now: 1), what)
        }
        XCTAssertThrowsError(try gate.authorize(request(e, macedID: Array(repeating: 3, count: 20)), now: 1),
                             "a MACed ID of another PRF's length")
        XCTAssertThrowsError(try gate.authorize(request(e, nonce: [1, 2, 3]), now: 1), "a nonce too short")
        XCTAssertThrowsError(try gate.authorize(request(e, method: 2), now: 1), "the shared-key method")
        // None of these spent the exchange's one signature.
        XCTAssertNoThrow(try gate.authorize(request(e), now: 1))
    }

    func testVersionsDoNotMix() throws {
        var gate = SignGate()
        XCTAssertThrowsError(try gate.announce(SignAnnounce(exchange: exchange(peer: 0xc000_0203),
                                                            certificate: "router1"),
                                               signers: signers, now: 0), "an IKEv2 exchange with an IKEv1 peer")
        let v1 = SigningExchange(initiatorCookie: spiI, peer: IPv4Address(0xc000_0202), prf: .sha256, initiator: true)
        XCTAssertThrowsError(try gate.announce(SignAnnounce(exchange: v1, certificate: "router1"),
                                               signers: signers, now: 0),
                             "an IKEv1 exchange with an IKEv2 peer")
        try gate.announce(SignAnnounce(exchange: exchange(), certificate: "router1"), signers: signers, now: 0)
        XCTAssertThrowsError(try gate.authorize(SignRequest(id: 1, exchange: exchange(), certificate: "router1",
                                                            data: Array(repeating: 1, count: 32)), now: 1),
                             "a raw IKEv1 hash for an IKEv2 exchange")
    }

    func testTheMonitorChoosesTheScheme() {
        XCTAssertEqual(SignGate.scheme(method: 1, key: .rsa(bits: 2048), peerHashes: []), .rsaPKCS1SHA1)
        XCTAssertNil(SignGate.scheme(method: 1, key: .ec(bits: 256), peerHashes: [.sha256]))
        XCTAssertEqual(SignGate.scheme(method: 14, key: .rsa(bits: 2048), peerHashes: [.sha512, .sha256]),
                       .rsaPSSSHA256)
        XCTAssertEqual(SignGate.scheme(method: 14, key: .rsa(bits: 2048), peerHashes: [.sha512]), .rsaPSSSHA512)
        XCTAssertEqual(SignGate.scheme(method: 14, key: .ec(bits: 384), peerHashes: [.sha256, .sha384]), .ecdsaSHA384)
        XCTAssertEqual(SignGate.scheme(method: 14, key: .ec(bits: 256), peerHashes: [.sha512]), .ecdsaSHA512)
        XCTAssertNil(SignGate.scheme(method: 14, key: .rsa(bits: 2048), peerHashes: [.sha1]), "SHA-1 is not offered")
        XCTAssertNil(SignGate.scheme(method: 2, key: .rsa(bits: 2048), peerHashes: [.sha256]))
    }
}
