import KeywayVocabulary
import KeywayCrypto
@testable import KeywayDatapath
import XCTest

func hx(_ s: String) -> [UInt8] {
    guard let b = Hex.decode(s.filter { !$0.isWhitespace }) else { fatalError("bad hex") }
    return b
}

final class ESPCodecTests: XCTestCase {
    func sa(_ enc: EncryptionAlgorithm, _ key: Secret, _ integ: IntegrityAlgorithm = .null, _ ikey: Secret? = nil,
            spi: UInt32,
            src: String, dst: String, tunnel: Bool, encrypt: Bool, now: UInt64 = 1000,
            lifetime: Lifetime = Lifetime()) throws -> SecurityAssociation {
        SecurityAssociation(spi: spi, proto: .esp, source: ip(src), destination: ip(dst), tunnel: tunnel,
                            esp: try ESPTransform(encryption: enc, encryptionKey: key, integrity: integ,
                                                  integrityKey: ikey, encrypt: encrypt),
                            lifetime: lifetime, now: now)
    }

    // RFC 3602 section 4, case 5: transport mode, AES-128-CBC, no integrity.
    let case5Inner = hx("""
        45000054 08f20000 4001f9fe c0a87b03 c0a87b64
        08000ebd a70a0000 8e9c083d b95b0700 08090a0b 0c0d0e0f 10111213 14151617
        18191a1b 1c1d1e1f 20212223 24252627 28292a2b 2c2d2e2f 30313233 34353637
        """)
    let case5Outer = hx("""
        4500007c 08f20000 4032f9a5 c0a87b03 c0a87b64
        00004321 00000001
        e96e8c08 ab465763 fd098d45 dd3ff893
        f663c25d 325c18c6 a9453e19 4e120849 a4870b66 cc6b9965 330013b4 898dc856
        a4699e52 3a55db08 0b59ec3a 8e4b7e52 775b07d1 db34ed9c 538ab50c 551b874a
        a269add0 47ad2d59 13ac19b7 cfbad4a6
        """)

    func testRFC3602Case5TransportByteForByte() throws {
        let key = Secret(hx("90d382b4 10eeba7a d938c46c ec1a82bf"))
        let out = try sa(.aes128, key, spi: 0x4321, src: "192.168.123.3", dst: "192.168.123.100", tunnel: false,
                         encrypt: true)
        XCTAssertEqual(try ESPCodec.encapsulate(case5Inner, sa: out,
                                                explicitIV: hx("e96e8c08 ab465763 fd098d45 dd3ff893")), case5Outer)
        let inbound = try sa(.aes128, key, spi: 0x4321, src: "192.168.123.3", dst: "192.168.123.100", tunnel: false,
                             encrypt: false)
        var packet = case5Outer
        XCTAssertEqual(try ESPCodec.decapsulate(&packet, sa: inbound), case5Inner)
        var again = case5Outer
        XCTAssertThrowsError(try ESPCodec.decapsulate(&again, sa: inbound)) {
            XCTAssertEqual($0 as? DatapathDrop, .replay)
        }
    }

    // RFC 3602 section 4, case 7: tunnel mode, AES-128-CBC, no integrity, sequence number 2.
    func testRFC3602Case7TunnelByteForByte() throws {
        let key = Secret(hx("01234567 89abcdef 01234567 89abcdef"))
        let inner = hx("""
            45000054 09040000 4001f988 c0a87b03 c0a87bc8 08009f76 a90a0100 b49c083d
            02a20400 08090a0b 0c0d0e0f 10111213 14151617 18191a1b 1c1d1e1f 20212223
            24252627 28292a2b 2c2d2e2f 30313233 34353637
            """)
        let espPart = hx("""
            00008765 00000002
            f4e76524 4f6407ad f13dc138 0f673f37
            773b5241 a4c44922 5e4f3ce5 ed611b0c 237ca96c f74a9301 3c1b0ea1 a0cf70f8
            e4ecaec7 8ac53aad 7a0f022b 859243c6 47752e94 a859352b 8a4d4d2d ecd136e5
            c177f132 ad3fbfb2 201ac990 4c74ee0a 109e0ca1 e4dfe9d5 a100b842 f1c22f0d
            """)
        let out = try sa(.aes128, key, spi: 0x8765, src: "192.168.123.3", dst: "192.168.123.200", tunnel: true,
                         encrypt: true)
        _ = out.nextSequence()
        let sealed = try ESPCodec.encapsulate(inner, sa: out, explicitIV: hx("f4e76524 4f6407ad f13dc138 0f673f37"))
        XCTAssertEqual(Array(sealed[20...]), espPart)
        let outer = try IPv4Header(sealed)
        XCTAssertEqual([outer.proto, outer.ttl], [50, 64])
        XCTAssertEqual([outer.source, outer.destination], [ip("192.168.123.3"), ip("192.168.123.200")])
        XCTAssertEqual(outer.totalLength, 0x8c)
        // The RFC's own outer header (identification 0x0905) decapsulates to the inner packet.
        var packet = hx("4500008c 09050000 4032f91e c0a87b03 c0a87bc8") + espPart
        let inbound = try sa(.aes128, key, spi: 0x8765, src: "192.168.123.3", dst: "192.168.123.200", tunnel: true,
                             encrypt: false)
        XCTAssertEqual(try ESPCodec.decapsulate(&packet, sa: inbound), inner)
    }

    // RFC 3602 section 4, case 6: transport mode, same SA as case 5, sequence number 8, a short
    // ICMP message (two bytes of padding). The RFC gives the ESP part; our inner header is rebuilt.
    func testRFC3602Case6TransportByteForByte() throws {
        let key = Secret(hx("90d382b4 10eeba7a d938c46c ec1a82bf"))
        let icmp = hx("0800b5e8 a80a0500 a69c083d 0b660e00 77777777 77777777 77777777")
        var inner = hx("45000030 08fe0000 40010000 c0a87b03 c0a87b64") + icmp
        IPv4Header.setChecksum(&inner, headerAt: 0, length: 20)
        let espPart = hx("""
            00004321 00000008
            69d08df7 d203329d b093fc49 24e5bd80
            f5199588 1ec4e0c4 488987ce 742e8109 689bb379 d2d750c0 d915dca3 46a89f75
            """)
        let out = try sa(.aes128, key, spi: 0x4321, src: "192.168.123.3", dst: "192.168.123.100", tunnel: false,
                         encrypt: true)
        for _ in 0..<7 { _ = out.nextSequence() }
        let sealed = try ESPCodec.encapsulate(inner, sa: out, explicitIV: hx("69d08df7 d203329d b093fc49 24e5bd80"))
        XCTAssertEqual(Array(sealed[20...]), espPart)
        let outer = try IPv4Header(sealed)
        XCTAssertEqual([outer.proto], [50])
        XCTAssertEqual(outer.totalLength, 20 + espPart.count)
        var packet = sealed
        let inbound = try sa(.aes128, key, spi: 0x4321, src: "192.168.123.3", dst: "192.168.123.100", tunnel: false,
                             encrypt: false)
        XCTAssertEqual(try ESPCodec.decapsulate(&packet, sa: inbound), inner)
    }

    // RFC 3602 section 4, case 8: tunnel mode, same SA as case 7, sequence number 5, an inner
    // packet of 68 bytes (ten bytes of padding).
    func testRFC3602Case8TunnelByteForByte() throws {
        let key = Secret(hx("01234567 89abcdef 01234567 89abcdef"))
        let inner = hx("""
            45000044 090c0000 4001f990 c0a87b03 c0a87bc8 0800d63c aa0a0200 c69c083d
            a3de0300 ffffffff ffffffff ffffffff ffffffff ffffffff ffffffff ffffffff
            ffffffff
            """)
        let espPart = hx("""
            00008765 00000005
            85d47224 b5f3dd5d 2101d4ea 8dffab22
            15b92683 819596a8 047232cc 00f7048f e45318e1 1f8a0f62 ede3c3fc 61203bb5
            0f980a08 c9843fd3 a1b06d5c 07ff9639 b7eb7dfb 3512e5de 435e7207 ed971ef3
            d2726d9b 5ef6affc 6d17a0de cbb13892
            """)
        let out = try sa(.aes128, key, spi: 0x8765, src: "192.168.123.3", dst: "192.168.123.200", tunnel: true,
                         encrypt: true)
        for _ in 0..<4 { _ = out.nextSequence() }
        let sealed = try ESPCodec.encapsulate(inner, sa: out, explicitIV: hx("85d47224 b5f3dd5d 2101d4ea 8dffab22"))
        XCTAssertEqual(Array(sealed[20...]), espPart)
        let outer = try IPv4Header(sealed)
        XCTAssertEqual([outer.source, outer.destination], [ip("192.168.123.3"), ip("192.168.123.200")])
        var packet = sealed
        let inbound = try sa(.aes128, key, spi: 0x8765, src: "192.168.123.3", dst: "192.168.123.200", tunnel: true,
                             encrypt: false)
        XCTAssertEqual(try ESPCodec.decapsulate(&packet, sa: inbound), inner)
    }

    func testRoundTripsForEveryAlgorithmPairInBothModes() throws {
        let inner = hx("45000030 00010000 40110000 0a010005 0a020007 c35000350014 0000")
            + Array("keyway datapath!".utf8)
        var fixed = inner
        fixed[2] = 0; fixed[3] = UInt8(fixed.count)
        IPv4Header.setChecksum(&fixed, headerAt: 0, length: 20)
        for enc in EncryptionAlgorithm.allCases {
            for integ in IntegrityAlgorithm.allCases where !(enc == .null && integ == .null)
                && !(enc.isAEAD && integ != .null) {
                for tunnel in [false, true] {
                    let key = Secret.random(count: enc.keyMaterialLength)
                    let ikey = integ == .null ? nil : Secret.random(count: integ.keyLength)
                    let out = try sa(enc, key, integ, ikey, spi: 0x1000, src: "10.1.0.5", dst: "10.2.0.7",
                                     tunnel: tunnel, encrypt: true)
                    let inb = try sa(enc, key, integ, ikey, spi: 0x1000, src: "10.1.0.5", dst: "10.2.0.7",
                                     tunnel: tunnel, encrypt: false)
                    for _ in 0..<3 {
                        var packet = try ESPCodec.encapsulate(fixed, sa: out)
                        XCTAssertEqual(try ESPCodec.decapsulate(&packet, sa: inb), fixed,
                                       "\(enc)/\(integ) tunnel=\(tunnel)")
                    }
                }
            }
        }
    }

    func testWrongKeyTamperingAndModeMismatchAreDropped() throws {
        let inner = case5Inner
        let k1 = Secret.random(count: 16), k2 = Secret.random(count: 16), ik = Secret.random(count: 20)
        let out = try sa(.aes128, k1, .sha1, ik, spi: 1, src: "192.168.123.3", dst: "192.168.123.100", tunnel: false,
                         encrypt: true)
        let wrong = try sa(.aes128, k2, .sha1, Secret.random(count: 20), spi: 1, src: "192.168.123.3",
                           dst: "192.168.123.100", tunnel: false, encrypt: false)
        var p1 = try ESPCodec.encapsulate(inner, sa: out)
        XCTAssertThrowsError(try ESPCodec.decapsulate(&p1, sa: wrong)) {
            XCTAssertEqual($0 as? DatapathDrop, .integrity)
        }
        XCTAssertEqual(wrong.replay.highestSequence, 0, "a forged packet does not move the window")
        let right = try sa(.aes128, k1, .sha1, ik, spi: 1, src: "192.168.123.3", dst: "192.168.123.100", tunnel: false,
                           encrypt: false)
        var p2 = try ESPCodec.encapsulate(inner, sa: out)
        p2[40] ^= 1
        XCTAssertThrowsError(try ESPCodec.decapsulate(&p2, sa: right)) {
            XCTAssertEqual($0 as? DatapathDrop, .integrity)
        }
        let tunnelSide = try sa(.aes128, k1, .sha1, ik, spi: 1, src: "192.168.123.3", dst: "192.168.123.100",
                                tunnel: true, encrypt: false)
        var p3 = try ESPCodec.encapsulate(inner, sa: out)
        XCTAssertThrowsError(try ESPCodec.decapsulate(&p3, sa: tunnelSide)) {
            XCTAssertEqual($0 as? DatapathDrop, .mode)
        }
        var short = Array(p3.prefix(30))
        XCTAssertThrowsError(try ESPCodec.decapsulate(&short, sa: right)) {
            XCTAssertEqual($0 as? DatapathDrop, .header)
        }
    }

    func testLifetimesByTimeAndBytesWithAnInjectedClock() throws {
        let s = try sa(.aes128gcm, Secret.random(count: 20), spi: 9, src: "10.0.0.1", dst: "10.0.0.2", tunnel: true,
                       encrypt: true,
                       now: 1000, lifetime: Lifetime(hardSeconds: 1800, hardBytes: 10_000))
        XCTAssertEqual(s.lifetime.softSeconds, 1440, "soft at 80% of hard: 24m/30m")
        XCTAssertNil(s.check(now: 1000 + 1439))
        XCTAssertEqual(s.check(now: 1000 + 1440), .soft)
        XCTAssertEqual(s.state, .dying)
        XCTAssertNil(s.check(now: 1000 + 1500), "soft fires once")
        XCTAssertEqual(s.check(now: 1000 + 1800), .hard)
        XCTAssertEqual(s.state, .dead)
        let b = try sa(.aes128gcm, Secret.random(count: 20), spi: 9, src: "10.0.0.1", dst: "10.0.0.2", tunnel: true,
                       encrypt: true,
                       now: 0, lifetime: Lifetime(hardBytes: 10_000))
        XCTAssertNil(b.account(bytes: 7_999, now: 5))
        XCTAssertEqual(b.account(bytes: 1, now: 6), .soft)
        XCTAssertEqual(b.account(bytes: 2_000, now: 7), .hard)
        XCTAssertThrowsError(try ESPCodec.encapsulate(case5Inner, sa: b)) {
            XCTAssertEqual($0 as? DatapathDrop, .sequenceExhausted)
        }
    }

    func testUseLifetimeCountsFromTheFirstPacketNotFromInstallation() throws {
        let s = try sa(.aes128gcm, Secret.random(count: 20), spi: 9, src: "10.0.0.1", dst: "10.0.0.2", tunnel: true,
                       encrypt: true,
                       now: 0, lifetime: Lifetime(useHardSeconds: 100))
        XCTAssertEqual(s.lifetime.useSoftSeconds, 80)
        XCTAssertNil(s.check(now: 10_000), "an SA nobody used has not started its use-lifetime")
        XCTAssertNil(s.account(bytes: 100, now: 10_000))
        XCTAssertEqual(s.firstUse, 10_000)
        XCTAssertNil(s.check(now: 10_079))
        XCTAssertEqual(s.check(now: 10_080), .soft)
        XCTAssertNil(s.account(bytes: 100, now: 10_090), "later packets do not move the first use")
        XCTAssertEqual(s.check(now: 10_100), .hard)
        XCTAssertEqual(s.state, .dead)
    }
}
