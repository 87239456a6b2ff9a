import XCTest
@testable import KeywayCrypto

/// What IKEv2 adds to the crypto layer: X25519 (RFC 8031), AES-GCM over whole messages (RFC 5282)
/// and signatures over octet strings (RFC 7296 method 1, RFC 7427 RSA-PSS and ECDSA).
final class IKEv2CryptoTests: XCTestCase {
    // RFC 7748 section 6.1.
    func testX25519MatchesRFC7748() throws {
        let alice = try DiffieHellman(group: .curve25519,
                                      privateKey: secret("77076d0a7318a57d3c16c17251b26645"
                                                            + "df4c2f87ebc0992ab177fba51db92c2a"))
        let bob = try DiffieHellman(group: .curve25519,
                                    privateKey: secret("5dab087e624a8a4b79e17f8b83800ee6"
                                                          + "6f3bb1292618b6fd1c2f8b27ff88e0eb"))
        XCTAssertEqual(Hex.encode(alice.publicValue),
                       "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        XCTAssertEqual(Hex.encode(bob.publicValue), "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
        XCTAssertEqual(try alice.sharedSecret(with: bob.publicValue).sensitiveHex, shared)
        XCTAssertEqual(try bob.sharedSecret(with: alice.publicValue).sensitiveHex, shared)
    }

    /// RFC 8031 section 2: a small-order peer value gives the all-zero secret, which is refused.
    func testX25519RefusesSmallOrderPointsAndWrongLengths() throws {
        let dh = try DiffieHellman(group: .curve25519)
        for point in [[UInt8](repeating: 0, count: 32), [1] + [UInt8](repeating: 0, count: 31)] {
            XCTAssertThrowsError(try dh.sharedSecret(with: point)) {
                XCTAssertEqual($0 as? CryptoError, .badPublicValue(group: "curve25519"))
            }
        }
        XCTAssertThrowsError(try dh.sharedSecret(with: [UInt8](repeating: 9, count: 31)))
        XCTAssertEqual(DiffieHellman.seedLength(group: .curve25519), 32)
    }

    func testMessageAEADSealsOpensAndRefusesTampering() throws {
        for algorithm in [EncryptionAlgorithm.aes128gcm, .aes256gcm] {
            let aead = try MessageAEAD(algorithm, key: Secret([UInt8](repeating: 7, count: algorithm.keyLength)))
            let nonce = [UInt8](1...12), aad = Array("IKE header and SK header".utf8)
            let plain = Array("inner payloads, padding and pad length".utf8)
            var data = plain
            let tag = try aead.seal(&data, nonce: nonce, aad: aad)
            XCTAssertNotEqual(data, plain)
            var opened = data
            try aead.open(&opened, nonce: nonce, aad: aad, tag: tag)
            XCTAssertEqual(opened, plain, algorithm.rawValue)
            for change in 0..<3 {
                var d = data, t = tag, a = aad
                switch change {
                case 0: d[3] ^= 1
                case 1: t[0] ^= 1
                default: a[0] ^= 1
                }
                XCTAssertThrowsError(try aead.open(&d, nonce: nonce, aad: a, tag: t)) {
                    XCTAssertEqual($0 as? CryptoError, .authenticationFailed)
                }
            }
            var empty: [UInt8] = []
            let emptyTag = try aead.seal(&empty, nonce: nonce, aad: aad)
            XCTAssertNoThrow(try aead.open(&empty, nonce: nonce, aad: aad, tag: emptyTag))
        }
        XCTAssertThrowsError(try MessageAEAD(.aes128, key: Secret([UInt8](repeating: 0, count: 16))))
    }

    func testEverySchemeSignsAndVerifiesWithTheRightKeyKindOnly() throws {
        let rsa = try PrivateKey(pemOrDER: Array(Fixtures.keyA.utf8))
        let ec = try PrivateKey(pemOrDER: Array(Fixtures.keyEC.utf8))
        let rsaCert = try Certificate(pemOrDER: Array(Fixtures.certA.utf8))
        let ecCert = try Certificate(pemOrDER: Array(Fixtures.certEC.utf8))
        XCTAssertEqual(rsa.kind, .rsa(bits: 2048)); XCTAssertEqual(ec.kind, .ec(bits: 256))
        XCTAssertEqual(rsaCert.keyKind, .rsa(bits: 2048)); XCTAssertEqual(ecCert.keyKind, .ec(bits: 256))
        XCTAssertTrue(ecCert.isCertificate(for: ec)); XCTAssertFalse(rsaCert.isCertificate(for: ec))
        let octets = Array("RealMessage1 | NonceRData | MACedIDForI".utf8)
        for scheme in SignatureScheme.allCases {
            let (key, cert, other) = scheme.family == .ecdsa ? (ec, ecCert, rsa) : (rsa, rsaCert, ec)
            let sig = try key.sign(octets, scheme: scheme)
            XCTAssertTrue(cert.verify(signature: sig, over: octets, scheme: scheme), scheme.rawValue)
            XCTAssertFalse(cert.verify(signature: sig, over: octets + [0], scheme: scheme), scheme.rawValue)
            var bad = sig; bad[bad.count / 2] ^= 0x10
            XCTAssertFalse(cert.verify(signature: bad, over: octets, scheme: scheme), scheme.rawValue)
            XCTAssertThrowsError(try other.sign(octets, scheme: scheme), "\(scheme.rawValue) with the wrong key kind")
        }
        // The hash is part of the scheme: a SHA-256 signature does not verify as SHA-384.
        let sig = try rsa.sign(octets, scheme: .rsaPSSSHA256)
        XCTAssertFalse(rsaCert.verify(signature: sig, over: octets, scheme: .rsaPSSSHA384))
        XCTAssertFalse(rsaCert.verify(signature: sig, over: octets, scheme: .rsaPKCS1SHA256))
        XCTAssertTrue(rsaCert.verify(signature: sig, over: octets, scheme: .rsaPSSSHA256, pssSalt: 32))
        XCTAssertFalse(rsaCert.verify(signature: sig, over: octets, scheme: .rsaPSSSHA256, pssSalt: 20))
        XCTAssertThrowsError(try PrivateKey(pemOrDER: Array("not a key".utf8)))
    }
}
