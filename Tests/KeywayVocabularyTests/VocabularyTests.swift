import KeywayVocabulary
import XCTest

final class AddressTests: XCTestCase {
    func testDottedQuadParsesStrictlyAndPrintsBack() {
        XCTAssertEqual(IPv4Address("192.0.2.1")?.value, 0xc000_0201)
        XCTAssertEqual(IPv4Address(0xc633_6401).description, "198.51.100.1")
        for bad in ["", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1.2.3.-4", "1..2.3", "01234.0.0.1", "a.b.c.d", "1.2.3.4 "] {
            XCTAssertNil(IPv4Address(bad), bad)
        }
        XCTAssertEqual(IPv4Address("10.1.2.3")?.bytes, [10, 1, 2, 3])
    }

    func testPrefixesAreMaskedAndParsed() {
        let p = IPv4Prefix(IPv4Address(0x0a01_0203), length: 24)
        XCTAssertEqual(p.description, "10.1.2.0/24")
        XCTAssertEqual(IPv4Prefix("10.1.2.3/24"), p)
        XCTAssertEqual(IPv4Prefix("10.1.2.3")?.length, 32)
        XCTAssertNil(IPv4Prefix("10.1.2.3/33"))
        XCTAssertNil(IPv4Prefix("10.1.2.3/"))
        XCTAssertNil(IPv4Prefix("10.1.2.3/2/4"))
        XCTAssertEqual(IPv4Prefix(IPv4Address.any, length: 99).length, 32, "lengths are clamped")
        XCTAssertTrue(IPv4Prefix.all.isAll)
    }

    func testContainmentCoverAndOverlap() throws {
        let net = try XCTUnwrap(IPv4Prefix("10.1.0.0/16")), sub = try XCTUnwrap(IPv4Prefix("10.1.7.0/24"))
        let other = try XCTUnwrap(IPv4Prefix("10.2.0.0/16"))
        XCTAssertTrue(net.contains(try XCTUnwrap(IPv4Address("10.1.255.1"))))
        XCTAssertFalse(net.contains(try XCTUnwrap(IPv4Address("10.2.0.1"))))
        XCTAssertTrue(net.covers(sub))
        XCTAssertFalse(sub.covers(net))
        XCTAssertTrue(sub.overlaps(net) && net.overlaps(sub))
        XCTAssertFalse(net.overlaps(other))
        XCTAssertTrue(IPv4Prefix.all.covers(other))
        XCTAssertEqual(IPAddress.v4(IPv4Address(1)).family, .ipv4)
    }

    func testSelectorMirrorsAndMatchesPorts() throws {
        let s = TrafficSelector(source: try XCTUnwrap(IPv4Prefix("10.1.0.0/24")),
                                destination: try XCTUnwrap(IPv4Prefix("10.2.0.0/24")), destinationPort: 80, proto: 6)
        XCTAssertTrue(s.matches(source: 0x0a01_0005, destination: 0x0a02_0009, proto: 6, ports: (1234, 80)))
        XCTAssertFalse(s.matches(source: 0x0a01_0005, destination: 0x0a02_0009, proto: 6, ports: nil),
                       "a port needs known ports")
        XCTAssertFalse(s.matches(source: 0x0a01_0005, destination: 0x0a02_0009, proto: 17, ports: (1234, 80)))
        XCTAssertEqual(s.mirrored.source, s.destination)
        XCTAssertEqual(s.mirrored.sourcePort, 80)
        XCTAssertEqual(s.mirrored.mirrored, s)
    }
}

final class DurationAndHexTests: XCTestCase {
    func testSecondsSaturateInsteadOfTrapping() {
        XCTAssertEqual(Seconds(1800).milliseconds, 1_800_000)
        XCTAssertEqual(Seconds(.max).milliseconds, .max)
        XCTAssertEqual(Seconds(1800).eightyPercent, Seconds(1440))
        XCTAssertEqual(Seconds(.max).eightyPercent.value, UInt64.max / 10 * 8 + UInt64.max % 10 * 8 / 10)
        XCTAssertEqual(Seconds(.max).capped(at: .maximumLifetime), .maximumLifetime)
        XCTAssertEqual(UInt64.max.saturatingAdd(1), .max)
        XCTAssertEqual(UInt64(5).saturatingAdd(6), 11)
        XCTAssertEqual(UInt64.max.eightyPercent, UInt64.max / 10 * 8 + 4)
    }

    func testHexRoundTripsAndRefusesGarbage() {
        XCTAssertEqual(Hex.decode("0xA1b2"), [0xa1, 0xb2])
        XCTAssertEqual(Hex.encode([0, 255, 16]), "00ff10")
        XCTAssertNil(Hex.decode("abc"))
        XCTAssertNil(Hex.decode("zz"))
    }

    func testAlgorithmFactsNeedNoCryptoLibrary() {
        XCTAssertTrue(EncryptionAlgorithm.aes128gcm.isCounterMode)
        XCTAssertTrue(EncryptionAlgorithm.aes256ctr.isCounterMode)
        XCTAssertFalse(EncryptionAlgorithm.aes128.isCounterMode)
        XCTAssertEqual(DHGroup(name: "modp2048"), .modp2048)
        XCTAssertTrue(DHGroup.modp1024.isWeak)
    }
}
