import XCTest
@testable import KeywayCrypto

final class ESPTransformTests: XCTestCase {
    func pair(_ enc: EncryptionAlgorithm, _ integ: IntegrityAlgorithm) throws -> (ESPTransform, ESPTransform) {
        let ek = Secret.random(count: enc.keyMaterialLength)
        let ik = integ == .null ? nil : Secret.random(count: integ.keyLength)
        return (try ESPTransform(encryption: enc, encryptionKey: ek, integrity: integ, integrityKey: ik, encrypt: true),
                try ESPTransform(encryption: enc, encryptionKey: ek, integrity: integ, integrityKey: ik,
                                 encrypt: false))
    }

    /// A packet with `headroom` bytes before the ESP header, as the datapath lays it out.
    func packet(for t: ESPTransform, payload: [UInt8], headroom: Int = 20) -> [UInt8] {
        [UInt8](repeating: 0xEE, count: headroom) + [0, 0, 0x10, 0x01, 0, 0, 0, 7]
            + [UInt8](repeating: 0, count: t.ivLength) + payload + [UInt8](repeating: 0, count: t.icvLength)
    }

    func testRoundTripForEveryAlgorithmPair() throws {
        for enc in EncryptionAlgorithm.allCases {
            for integ in IntegrityAlgorithm.allCases {
                if enc == .null && integ == .null { continue }
                if enc.isAEAD && integ != .null { continue }
                let (sealer, opener) = try pair(enc, integ)
                for size in [16, 64, 512, 1392] {
                    let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
                    var p = packet(for: sealer, payload: payload)
                    try sealer.seal(&p, offset: 20, length: p.count - 20, sequence: UInt64(size))
                    if enc != .null {
                        XCTAssertNotEqual(Array(p[(20 + 8 + sealer.ivLength)...].prefix(size)), payload,
                                          "\(enc)/\(integ) left plaintext")
                    }
                    let range = try opener.open(&p, offset: 20, length: p.count - 20)
                    XCTAssertEqual(Array(p[range]), payload, "\(enc)/\(integ) size \(size)")
                    XCTAssertEqual(Array(p.prefix(20)), [UInt8](repeating: 0xEE, count: 20), "headroom untouched")
                }
            }
        }
    }

    func testTamperedPacketsAreRejectedForEveryAlgorithmPair() throws {
        for enc in EncryptionAlgorithm.allCases {
            for integ in IntegrityAlgorithm.allCases where integ != .null || enc.isAEAD {
                if enc.isAEAD && integ != .null { continue }
                let (sealer, opener) = try pair(enc, integ)
                var p = packet(for: sealer, payload: [UInt8](repeating: 0x41, count: 64), headroom: 0)
                try sealer.seal(&p, offset: 0, length: p.count, sequence: 9)
                for position in [1, 5, 8, p.count / 2, p.count - 1] {
                    var bad = p
                    bad[position] ^= 0x80
                    XCTAssertThrowsError(try opener.open(&bad, offset: 0, length: bad.count),
                                         "\(enc)/\(integ) byte \(position)") { e in
                        XCTAssertEqual(e as? CryptoError, .authenticationFailed)
                    }
                }
            }
        }
    }

    func testWrongKeyIsRejected() throws {
        let (sealer, _) = try pair(.aes128, .sha1)
        let (_, other) = try pair(.aes128, .sha1)
        var p = packet(for: sealer, payload: [UInt8](repeating: 1, count: 32), headroom: 0)
        try sealer.seal(&p, offset: 0, length: p.count, sequence: 1)
        XCTAssertThrowsError(try other.open(&p, offset: 0, length: p.count))
    }

    // RFC 4106: nonce = salt (last 4 bytes of the key material) || the 8-byte IV on the wire;
    // AAD = SPI || sequence. Expected bytes from pyca/cryptography's AESGCM with the same inputs.
    func testGCMLayoutFollowsRFC4106() throws {
        let t = try ESPTransform(encryption: .aes128gcm,
                                 encryptionKey: secret("feffe9928665731c6d6a8f9467308308cafebabe"),
                                 integrity: .null, integrityKey: nil, encrypt: true)
        let payload = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                             + "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
        var p = hex("0000a5f800000001") + [UInt8](repeating: 0, count: 8) + payload + [UInt8](repeating: 0, count: 16)
        try t.seal(&p, offset: 0, length: p.count, sequence: 0xfacedbaddecaf888)
        XCTAssertEqual(Hex.encode(Array(p[8..<16])), "facedbaddecaf888")
        XCTAssertEqual(Hex.encode(Array(p[16...])),
                       "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
                       + "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091"
                       + "14611a7e061c3d8328f88bdd4ed87c06")
    }

    func testKeyLengthsAreChecked() {
        XCTAssertThrowsError(try ESPTransform(encryption: .aes128,
                                              encryptionKey: Secret.random(count: 15), integrity: .sha1,
                                              integrityKey: Secret.random(count: 20), encrypt: true)) { e in
            XCTAssertEqual(e as? CryptoError, .wrongKeyLength(algorithm: "aes-128", expected: 16, got: 15))
        }
        XCTAssertThrowsError(try ESPTransform(encryption: .aes128gcm, encryptionKey: Secret.random(count: 16),
                                              integrity: .null, integrityKey: nil, encrypt: true)) { e in
            XCTAssertEqual(e as? CryptoError, .wrongKeyLength(algorithm: "aes-128-gcm", expected: 20, got: 16))
        }
        XCTAssertThrowsError(try ESPTransform(encryption: .tripleDES, encryptionKey: Secret.random(count: 24),
                                              integrity: .sha256, integrityKey: Secret([]), encrypt: true)) { e in
            XCTAssertEqual(e as? CryptoError, .wrongKeyLength(algorithm: "sha256", expected: 32, got: 0))
        }
        XCTAssertThrowsError(try ESPTransform(encryption: .null, encryptionKey: Secret([]), integrity: .null,
                                              integrityKey: nil, encrypt: true))
        XCTAssertThrowsError(try AHTransform(integrity: .sha1, key: Secret([])))
        // HMAC keys of other lengths work (manual keys; the manual's AH example has three bytes).
        XCTAssertNoThrow(try AHTransform(integrity: .sha1, key: Secret([0xab, 0xcf, 0xed])))
    }

    func testMisalignedOrShortPacketsAreRefused() throws {
        let (sealer, opener) = try pair(.aes128, .sha1)
        var p = packet(for: sealer, payload: [UInt8](repeating: 0, count: 17), headroom: 0)
        XCTAssertThrowsError(try sealer.seal(&p, offset: 0, length: p.count, sequence: 1))
        var short = [UInt8](repeating: 0, count: 20)
        XCTAssertThrowsError(try opener.open(&short, offset: 0, length: short.count))
        XCTAssertThrowsError(try opener.open(&short, offset: 10, length: 40))
    }
}
