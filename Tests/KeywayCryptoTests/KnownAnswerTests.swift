import XCTest
@testable import KeywayCrypto

/// Published vectors for every cipher and MAC. Each was also cross-checked against Python's
/// independent implementations (hashlib/hmac, pyca/cryptography) when it was written down.
final class KnownAnswerTests: XCTestCase {
    // RFC 2202 (HMAC-MD5, HMAC-SHA-1) and RFC 4231 test cases 1 and 2.
    func testHMACVectors() throws {
        let longKeyText = Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)
        let cases: [(HashAlgorithm, [UInt8], [UInt8], String)] = [
            (.md5, [UInt8](repeating: 0x0b, count: 16), Array("Hi There".utf8), "9294727a3638bb1c13f48ef8158bfc9d"),
            (.md5, Array("Jefe".utf8), Array("what do ya want for nothing?".utf8), "750c783e6ab0b503eaa86e310a5db738"),
            (.sha1, [UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8),
             "b617318655057264e28bc0b6fb378c8ef146be00"),
            (.sha1, Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
             "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
            (.sha256, [UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8),
             "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (.sha384, [UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8),
             "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6"),
            (.sha512, [UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8),
             "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
                + "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"),
            (.sha256, Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
             "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            (.sha384, Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
             "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"),
            (.sha512, Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
             "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
                + "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
            // Keys longer than a block are hashed first: RFC 2202 case 6, RFC 4231 case 6.
            (.md5, [UInt8](repeating: 0xaa, count: 80), longKeyText, "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd"),
            (.sha1, [UInt8](repeating: 0xaa, count: 80), longKeyText, "aa4ae5e15272d00e95705637ce8a3b55ed402112"),
            (.sha256, [UInt8](repeating: 0xaa, count: 131), longKeyText,
             "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            (.sha384, [UInt8](repeating: 0xaa, count: 131), longKeyText,
             "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952"),
            (.sha512, [UInt8](repeating: 0xaa, count: 131), longKeyText,
             "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
                + "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"),
        ]
        for (hash, key, data, expected) in cases {
            XCTAssertEqual(Hex.encode(try hash.hmac(key: Secret(key), data)), expected, "\(hash)")
            XCTAssertEqual(try hash.prf(key: Secret(key), data).sensitiveHex, expected, "prf \(hash)")
        }
    }

    func testMACContextIsReusableAcrossMessages() throws {
        let ctx = try MACContext(.sha1, key: Secret([UInt8](repeating: 0x0b, count: 20)))
        _ = ctx.authenticate(Array("something else first".utf8))
        XCTAssertEqual(Hex.encode(ctx.authenticate(Array("Hi ".utf8), Array("There".utf8))),
                       "b617318655057264e28bc0b6fb378c8ef146be00")
    }

    // RFC 2404/2403/4868: the ICV is the HMAC's first 96 bits (MD5, SHA-1) or half its length (SHA-2).
    func testTruncatedICVLengths() {
        XCTAssertEqual(IntegrityAlgorithm.md5.icvLength, 12)
        XCTAssertEqual(IntegrityAlgorithm.sha1.icvLength, 12)
        XCTAssertEqual(IntegrityAlgorithm.sha256.icvLength, 16)
        XCTAssertEqual(IntegrityAlgorithm.sha384.icvLength, 24)
        XCTAssertEqual(IntegrityAlgorithm.sha512.icvLength, 32)
    }

    func testAHICVIsTheTruncatedHMAC() throws {
        // RFC 4231 case 2 truncated to 128 bits is RFC 4868's HMAC-SHA-256-128 of the same input.
        let ah = try AHTransform(integrity: .sha256, key: Secret([UInt8](repeating: 0x0b, count: 32)))
        let data = Array("Hi There".utf8)
        var packet = data + [UInt8](repeating: 0, count: 16)
        try ah.sign(&packet, range: 0..<8, icvOffset: 8)
        let full = try HashAlgorithm.sha256.hmac(key: Secret([UInt8](repeating: 0x0b, count: 32)), data)
        XCTAssertEqual(Array(packet[8...]), Array(full.prefix(16)))
        XCTAssertTrue(ah.verify(packet, range: 0..<8, icv: packet[8...]))
        packet[0] ^= 1
        XCTAssertFalse(ah.verify(packet, range: 0..<8, icv: packet[8...]))
    }

    // RFC 3602 section 4, cases 1-4 (AES-128-CBC).
    func testAESCBCVectorsRFC3602() throws {
        let cases: [(String, String, [UInt8], String)] = [
            ("06a9214036b8a15b512e03d534120006", "3dafba429d9eb430b422da802c9fac41", Array("Single block msg".utf8),
             "e353779c1079aeb82708942dbe77181a"),
            ("c286696d887c9aa0611bbb3e2025a45a", "562e17996d093d28ddb3ba695a2e6f58", Array(0..<32),
             "d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1"),
            ("6c3ea0477630ce21a2ce334aa746c2cd", "c782dc4c098c66cbd9cd27d825682c81",
             Array("This is a 48-byte message (exactly 3 AES blocks)".utf8),
             "d0a02b3836451753d493665d33f0e8862dea54cdb293abc7506939276772f8d5021c19216bad525c8579695d83ba2684"),
            ("56e47a38c5598974bc46903dba290349", "8ce82eefbea0da3c44699ed7db51b7d9", Array(0xa0...0xdf),
             "c30e32ffedc0774e6aff6af0869f71aa0f3af07a9a31a9c684db207eb0ef8e4e"
                + "35907aa632c3ffdf868bb7b29d3d46ad83ce9f9a102ee99d49a53e87f4c3da55"),
        ]
        for (key, iv, plain, cipher) in cases {
            let enc = try CipherContext(.aes128, key: secret(key), encrypt: true)
            let dec = try CipherContext(.aes128, key: secret(key), encrypt: false)
            XCTAssertEqual(enc.apply(iv: hex(iv), plain).map(Hex.encode), cipher)
            XCTAssertEqual(dec.apply(iv: hex(iv), hex(cipher)), plain)
        }
    }

    // RFC 3686 section 6, test vectors 1 and 2 (AES-128-CTR, counter block nonce||IV||1).
    func testAESCTRVectorsRFC3686() throws {
        let cases: [(String, String, String, [UInt8], String)] = [
            ("AE6852F8121067CC4BF7A5765577F39E", "00000030", "0000000000000000", Array("Single block msg".utf8),
             "E4095D4FB7A7B3792D6175A3261311B8"),
            ("7E24067817FAE0D743D6CE1F32539163", "006CB6DB", "C0543B59DA48D90B", Array(0..<32),
             "5104A106168A72D9790D41EE8EDAD388EB2E1EFC46DA57C8FCE630DF9141BE28"),
        ]
        for (key, nonce, iv, plain, cipher) in cases {
            let ctx = try CipherContext(.aes128ctr, key: secret(key), encrypt: true)
            XCTAssertEqual(ctx.apply(iv: hex(nonce + iv + "00000001"), plain).map(Hex.encode), cipher.lowercased())
            // And through ESP: the nonce is the 4-byte salt after the key, the IV the 8 bytes on the wire.
            let esp = try ESPTransform(encryption: .aes128ctr, encryptionKey: secret(key + nonce), integrity: .sha1,
                                       integrityKey: Secret([UInt8](repeating: 7, count: 20)), encrypt: true)
            var packet = [UInt8](repeating: 0, count: 8) + [UInt8](repeating: 0, count: 8) + plain
                + [UInt8](repeating: 0, count: 12)
            try esp.seal(&packet, offset: 0, length: packet.count, sequence: UInt64(iv, radix: 16) ?? 0)
            XCTAssertEqual(Hex.encode(Array(packet[8..<16])), iv.lowercased())
            XCTAssertEqual(Hex.encode(Array(packet[16..<(16 + plain.count)])), cipher.lowercased())
        }
    }

    // The GCM specification's test cases 4 (AES-128) and 16 (AES-256), with 20 bytes of AAD.
    func testAESGCMVectors() throws {
        let plain = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                           + "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
        let nonce = hex("cafebabefacedbaddecaf888")
        let cases: [(EncryptionAlgorithm, String, String, String)] = [
            (.aes128gcm, "feffe9928665731c6d6a8f9467308308",
             "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
                + "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091", "5bc94fbc3221a5db94fae95ae7121a47"),
            (.aes256gcm, "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
             "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                + "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662", "76fc6ece0f4e1768cddf8853bb2d551b"),
        ]
        for (alg, key, cipher, tag) in cases {
            let ctx = try CipherContext(alg, key: secret(key), encrypt: true)
            var buf = plain
            var t = [UInt8](repeating: 0, count: 16)
            let ok = nonce.withUnsafeBufferPointer { n in aad.withUnsafeBufferPointer { a in
                buf.withUnsafeMutableBufferPointer { b in
                    t.withUnsafeMutableBufferPointer { tp in
                        ctx.gcmSeal(nonce: n.baseAddress!, aad: a.baseAddress!, aadLength: a.count, b.baseAddress!,
                                    b.count, tag: tp.baseAddress!)
                    }
                }
            } }
            XCTAssertTrue(ok)
            XCTAssertEqual(Hex.encode(buf), cipher)
            XCTAssertEqual(Hex.encode(t), tag)
            var tampered = t
            tampered[0] ^= 1
            let opened = nonce.withUnsafeBufferPointer { n in aad.withUnsafeBufferPointer { a in
                buf.withUnsafeMutableBufferPointer { b in
                    tampered.withUnsafeBufferPointer { tp in
                        ctx.gcmOpen(nonce: n.baseAddress!, aad: a.baseAddress!, aadLength: a.count, b.baseAddress!,
                                    b.count, tag: tp.baseAddress!)
                    }
                }
            } }
            XCTAssertFalse(opened, "a wrong tag must not verify")
        }
    }

    // FIPS 81's CBC example (DES), which needs OpenSSL's legacy provider.
    func testDESCBCVector() throws {
        try EncryptionAlgorithm.des.checkAvailable()
        let ctx = try CipherContext(.des, key: secret("0123456789abcdef"), encrypt: true)
        XCTAssertEqual(ctx.apply(iv: hex("1234567890abcdef"), Array("Now is the time for all ".utf8)).map(Hex.encode),
                       "e5c7cdde872bf27c43e934008c389c0f683788499a7c05f6")
    }

    // 3DES-CBC: with K1=K2=K3 it is single DES (the FIPS 81 vector again); with three keys, a
    // value computed by pyca/cryptography's independent TripleDES.
    func testTripleDESCBCVectors() throws {
        let same = try CipherContext(.tripleDES, key: secret(String(repeating: "0123456789abcdef", count: 3)),
                                     encrypt: true)
        XCTAssertEqual(same.apply(iv: hex("1234567890abcdef"), Array("Now is the time for all ".utf8)).map(Hex.encode),
                       "e5c7cdde872bf27c43e934008c389c0f683788499a7c05f6")
        let three = try CipherContext(.tripleDES, key: secret("0123456789abcdef23456789abcdef01456789abcdef0123"),
                                      encrypt: true)
        XCTAssertEqual(three.apply(iv: hex("fedcba9876543210"), Array("The quick brown fox jump".utf8)).map(Hex.encode),
                       "5911530a7bf8de87d6f56b09ddcd5acf8956cc210e18ddcc")
    }
}
