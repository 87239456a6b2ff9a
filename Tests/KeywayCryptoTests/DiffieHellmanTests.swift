import XCTest
@testable import KeywayCrypto

final class DiffieHellmanTests: XCTestCase {
    func testEveryGroupAgrees() throws {
        for group in DHGroup.allCases {
            let a = try DiffieHellman(group: group), b = try DiffieHellman(group: group)
            let expectedPublic = group.kind == .ecp ? 2 * ((group.bits + 7) / 8) : (group.bits + 7) / 8
            XCTAssertEqual(a.publicValue.count, expectedPublic, group.name)
            let s1 = try a.sharedSecret(with: b.publicValue), s2 = try b.sharedSecret(with: a.publicValue)
            XCTAssertEqual(s1, s2, group.name)
            XCTAssertEqual(s1.count, (group.bits + 7) / 8, "\(group.name): secret padded to the group size")
            XCTAssertNotEqual(a.publicValue, b.publicValue)
        }
    }

    // RFC 5903 section 8: the ECDH vectors for groups 19, 20 and 21.
    func testRFC5903Vectors() throws {
        let cases: [(DHGroup, String, String, String, String)] = [
            (.ecp256, "C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433",
             "DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180"
                + "5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3",
             "D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63"
                + "56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB",
             "D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE"),
            (.ecp384,
             "099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655E35B538041E649EE3FAEF896783AB194",
             "667842D7D180AC2CDE6F74F37551F55755C7645C20EF73E31634FE72B4C55EE6DE3AC808ACB4BDB4C88732AEE95F41AA"
                + "9482ED1FC0EEB9CAFC4984625CCFC23F65032149E0E144ADA024181535A0F38EEB9FCFF3C2C947DAE69B4C634573A81C",
             "E558DBEF53EECDE3D3FCCFC1AEA08A89A987475D12FD950D83CFA41732BC509D0D1AC43A0336DEF96FDA41D0774A3571"
                + "DCFBEC7AACF3196472169E838430367F66EEBE3C6E70C416DD5F0C68759DD1FFF83FA40142209DFF5EAAD96DB9E6386C",
             "11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4D603135569B9E9D09CF5D4A270F59746"),
            (.ecp521,
             "0037ADE9319A89F4DABDB3EF411AACCCA5123C61ACAB57B5393DCE47608172A095"
                + "AA85A30FE1C2952C6771D937BA9777F5957B2639BAB072462F68C27A57382D4A52",
             "0015417E84DBF28C0AD3C278713349DC7DF153C897A1891BD98BAB4357C9ECBEE1"
                + "E3BF42E00B8E380AEAE57C2D107564941885942AF5A7F4601723C4195D176CED3E"
                + "017CAE20B6641D2EEB695786D8C946146239D099E18E1D5A514C739D7CB4A10AD8"
                + "A788015AC405D7799DC75E7B7D5B6CF2261A6A7F1507438BF01BEB6CA3926F9582",
             "00D0B3975AC4B799F5BEA16D5E13E9AF971D5E9B984C9F39728B5E5739735A219B"
                + "97C356436ADC6E95BB0352F6BE64A6C2912D4EF2D0433CED2B6171640012D9460F"
                + "015C68226383956E3BD066E797B623C27CE0EAC2F551A10C2C724D9852077B8722"
                + "0B6536C5C408A1D2AEBB8E86D678AE49CB57091F4732296579AB44FCD17F0FC56A",
             "01144C7D79AE6956BC8EDB8E7C787C4521CB086FA64407F97894E5E6B2D79B04D1"
                + "427E73CA4BAA240A34786859810C06B3C715A3A8CC3151F2BEE417996D19F3DDEA"),
        ]
        for (group, i, gi, gr, shared) in cases {
            let initiator = try DiffieHellman(group: group, privateKey: secret(i))
            XCTAssertEqual(Hex.encode(initiator.publicValue), gi.lowercased(), "\(group.name) g^i")
            XCTAssertEqual(try initiator.sharedSecret(with: hex(gr)).sensitiveHex, shared.lowercased(), group.name)
        }
    }

    // RFC 2409 6.1/6.2 and RFC 3526: each prime equals its definition
    // 2^N - 2^(N-64) - 1 + 2^64 * ([2^(N-130) pi] + k), computed here from pi, and is a safe prime.
    func testMODPPrimesMatchTheirRFCDefinitions() {
        let ks: [(DHGroup, UInt)] = [(.modp768, 149686), (.modp1024, 129093), (.modp1536, 741804), (.modp2048, 124476),
                                     (.modp3072, 1690314), (.modp4096, 240904), (.modp6144, 929484),
                                     (.modp8192, 4743158)]
        for (group, k) in ks {
            let prime = DHGroupCheck.modpPrime(group)
            XCTAssertEqual(prime.count * 8, group.bits, group.name)
            XCTAssertEqual(prime, DHGroupCheck.modpFromDefinition(bits: group.bits, k: k), group.name)
        }
        // Primality of the large ones is slow; the formula match already pins every bit.
        for group in [DHGroup.modp768, .modp1024, .modp1536, .modp2048] {
            XCTAssertTrue(DHGroupCheck.modpIsSafePrime(group), group.name)
        }
    }

    // RFC 2409 6.1 prints group 1's prime; spot-check it byte for byte.
    func testGroupOnePrimeAsPrinted() {
        XCTAssertEqual(Hex.encode(DHGroupCheck.modpPrime(.modp768)),
                       ("FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1"
                        + " 29024E08 8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD"
                        + " EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245"
                        + " E485B576 625E7EC6 F44C42E9 A63A3620 FFFFFFFF FFFFFFFF")
                        .replacingOccurrences(of: " ", with: "").lowercased())
    }

    func testEC2NParametersFromRFC2409() {
        XCTAssertTrue(DHGroupCheck.ec2nParametersHold(.ec2n155))
        XCTAssertTrue(DHGroupCheck.ec2nParametersHold(.ec2n185))
        XCTAssertTrue(DHGroup.ec2n155.isWeak && DHGroup.ec2n185.isWeak && DHGroup.modp768.isWeak)
        XCTAssertFalse(DHGroup.modp2048.isWeak || DHGroup.ecp256.isWeak)
    }

    func testBadMODPPublicValuesAreRejected() throws {
        let a = try DiffieHellman(group: .modp1024)
        let p = DHGroupCheck.modpPrime(.modp1024)
        var pMinus1 = p
        pMinus1[pMinus1.count - 1] -= 1
        for (name, bad) in [("zero", [UInt8](repeating: 0, count: 128)),
                            ("one", [UInt8](repeating: 0, count: 127) + [1]),
                            ("p-1", pMinus1), ("p", p), ("all ones", [UInt8](repeating: 0xff, count: 128))] {
            XCTAssertThrowsError(try a.sharedSecret(with: bad), name) { e in
                XCTAssertEqual(e as? CryptoError, .badPublicValue(group: "modp1024"), name)
            }
        }
        XCTAssertThrowsError(try a.sharedSecret(with: [UInt8](repeating: 2, count: 96))) { e in
            XCTAssertEqual(e as? CryptoError, .badPublicLength(group: "modp1024", expected: 128, got: 96))
        }
    }

    func testPointsOffTheCurveAreRejected() throws {
        for group in [DHGroup.ecp256, .ecp384, .ecp521] {
            let a = try DiffieHellman(group: group), b = try DiffieHellman(group: group)
            var bad = b.publicValue
            bad[bad.count - 1] ^= 1
            XCTAssertThrowsError(try a.sharedSecret(with: bad), group.name) { e in
                XCTAssertEqual(e as? CryptoError, .badPublicValue(group: group.name))
            }
            XCTAssertThrowsError(try a.sharedSecret(with: [UInt8](repeating: 0, count: bad.count)),
                                 "\(group.name) origin")
        }
    }

    func testEC2NRejectsXWithNoPointOrOutsideTheSubgroup() throws {
        for group in [DHGroup.ec2n155, .ec2n185] {
            let a = try DiffieHellman(group: group)
            var rejected = 0
            // Of small x values, about half have no point and, of the rest, most lie outside the
            // prime-order subgroup (cofactor 12 or 2): every one of those must be refused.
            for x in 1...40 {
                var value = [UInt8](repeating: 0, count: a.publicValue.count)
                value[value.count - 1] = UInt8(x)
                if (try? a.sharedSecret(with: value)) == nil { rejected += 1 }
            }
            XCTAssertGreaterThan(rejected, 10, group.name)
            XCTAssertThrowsError(try a.sharedSecret(with: [UInt8](repeating: 0, count: a.publicValue.count)),
                                 "\(group.name) x=0")
        }
    }

    func testPrivateValuesOutOfRangeAreRefused() {
        XCTAssertThrowsError(try DiffieHellman(group: .ecp256,
                                               privateKey: Secret([UInt8](repeating: 0, count: 32)))) { e in
            XCTAssertEqual(e as? CryptoError, .badPrivateValue(group: "ecp256"))
        }
        XCTAssertThrowsError(try DiffieHellman(group: .modp1024, privateKey: Secret([1])))
    }
}
