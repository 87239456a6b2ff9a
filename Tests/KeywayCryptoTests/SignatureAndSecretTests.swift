import XCTest
@testable import KeywayCrypto

final class SignatureTests: XCTestCase {
    func testSignVerifyAndCertificateMatching() throws {
        let key = try RSAPrivateKey(pemOrDER: Array(Fixtures.keyA.utf8))
        let certA = try Certificate(pemOrDER: Array(Fixtures.certA.utf8))
        let certB = try Certificate(pemOrDER: Array(Fixtures.certB.utf8))
        let hash = try HashAlgorithm.sha1.hmac(key: Secret([1, 2, 3]), Array("HASH_I material".utf8))
        let sig = try key.sign(hash)
        XCTAssertEqual(sig.count, 256)
        XCTAssertTrue(certA.verify(signature: sig, over: hash))
        XCTAssertFalse(certB.verify(signature: sig, over: hash), "another key's certificate must not verify")
        var bad = sig
        bad[100] ^= 1
        XCTAssertFalse(certA.verify(signature: bad, over: hash))
        XCTAssertFalse(certA.verify(signature: sig, over: hash.reversed()))
        XCTAssertTrue(certA.isCertificate(for: key))
        XCTAssertFalse(certB.isCertificate(for: key))
    }

    func testDERAndPEMLoadTheSameCertificate() throws {
        let pem = try Certificate(pemOrDER: Array(Fixtures.certA.utf8))
        guard let der = Base64.decode(Fixtures.certADERBase64) else { return XCTFail("fixture") }
        let fromDER = try Certificate(pemOrDER: der)
        XCTAssertTrue(pem.matches(fromDER))
        XCTAssertFalse(pem.matches(try Certificate(pemOrDER: Array(Fixtures.certB.utf8))))
        XCTAssertThrowsError(try Certificate(pemOrDER: der + [0]), "trailing bytes after DER")
        XCTAssertThrowsError(try Certificate(pemOrDER: Array(der.prefix(100))))
        XCTAssertThrowsError(try RSAPrivateKey(pemOrDER: Array("not a key".utf8)))
    }
}

final class SecretTests: XCTestCase {
    func testNeverPrintsItsBytes() {
        let s = Secret(Array("hunter2-psk".utf8))
        XCTAssertEqual("\(s)", "<secret 11 bytes>")
        XCTAssertEqual(String(reflecting: s), "<secret 11 bytes>")
        XCTAssertFalse("\([s])".contains("hunter2"))
    }

    func testConstantTimeEqualityAndHex() {
        XCTAssertEqual(Secret([1, 2, 3]), Secret([1, 2, 3]))
        XCTAssertNotEqual(Secret([1, 2, 3]), Secret([1, 2, 4]))
        XCTAssertNotEqual(Secret([1, 2, 3]), Secret([1, 2]))
        XCTAssertEqual(Secret(hex: "0xABcd01")?.sensitiveHex, "abcd01")
        XCTAssertNil(Secret(hex: "abc"))
        XCTAssertNil(Secret(hex: "zz"))
    }

    func testConsumingInitClearsTheSource() {
        var bytes: [UInt8] = [9, 9, 9]
        let s = Secret(consuming: &bytes)
        XCTAssertTrue(bytes.isEmpty)
        XCTAssertEqual(s.count, 3)
    }

    func testRandomnessIsNotConstant() {
        XCTAssertNotEqual(SecureRandom.bytes(16), SecureRandom.bytes(16))
        XCTAssertEqual(Secret.random(count: 32).count, 32)
    }
}

enum Base64 {
    static func decode(_ s: String) -> [UInt8]? {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var map = [UInt8: UInt32]()
        for (i, c) in table.enumerated() { map[c] = UInt32(i) }
        var out: [UInt8] = [], acc: UInt32 = 0, bits = 0
        for c in s.utf8 where c != UInt8(ascii: "=") {
            guard let v = map[c] else { return nil }
            acc = acc << 6 | v; bits += 6
            if bits >= 8 { bits -= 8; out.append(UInt8((acc >> UInt32(bits)) & 0xff)) }
        }
        return out
    }
}
