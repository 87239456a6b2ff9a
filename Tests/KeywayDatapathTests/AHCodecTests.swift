import KeywayVocabulary
import KeywayCrypto
@testable import KeywayDatapath
import XCTest

final class AHCodecTests: XCTestCase {
    func ahSA(_ integ: IntegrityAlgorithm, _ key: Secret, tunnel: Bool) throws -> SecurityAssociation {
        SecurityAssociation(spi: 0x101, proto: .ah, source: ip("1.0.0.1"), destination: ip("1.0.0.2"), tunnel: tunnel,
                            ah: try AHTransform(integrity: integ, key: key), now: 0)
    }

    let inner: [UInt8] = {
        var p = hx("45000024 1234 4000 3f01 0000 0a010005 0a020007 0800f7ff 00000000") + Array("ping-data..".utf8) + [0]
        p[2] = 0; p[3] = UInt8(p.count)
        IPv4Header.setChecksum(&p, headerAt: 0, length: 20)
        return p
    }()

    func testRoundTripInBothModesWithTheManualsShortKey() throws {
        for integ in [IntegrityAlgorithm.md5, .sha1, .sha256, .sha512] {
            for tunnel in [false, true] {
                let key = Secret(hx("abcfed"))
                let out = try ahSA(integ, key, tunnel: tunnel), inb = try ahSA(integ, key, tunnel: tunnel)
                let packet = try AHCodec.encapsulate(inner, sa: out)
                XCTAssertEqual(packet[9], 51)
                XCTAssertEqual(try AHCodec.decapsulate(packet, sa: inb), inner, "\(integ) tunnel=\(tunnel)")
                XCTAssertThrowsError(try AHCodec.decapsulate(packet, sa: inb)) {
                    XCTAssertEqual($0 as? DatapathDrop, .replay)
                }
            }
        }
    }

    // Found between two namespaces: a TCP SYN-ACK has IP ID 0, which the kernel rewrites on a raw
    // send after the ICV was computed. AH must never emit ID 0, in either mode.
    func testNeverSendsAZeroIPIdentification() throws {
        var zeroID = inner
        zeroID[4] = 0; zeroID[5] = 0
        IPv4Header.setChecksum(&zeroID, headerAt: 0, length: 20)
        for tunnel in [false, true] {
            let key = Secret.random(count: 20)
            let out = try ahSA(.sha1, key, tunnel: tunnel)
            let packet = try AHCodec.encapsulate(zeroID, sa: out)
            XCTAssertNotEqual(Array(packet[4...5]), [0, 0], "tunnel=\(tunnel)")
        }
    }

    func testMutableFieldsMayChangeInTransitButNothingElse() throws {
        let key = Secret.random(count: 20)
        let out = try ahSA(.sha1, key, tunnel: true), inb = try ahSA(.sha1, key, tunnel: true)
        var packet = try AHCodec.encapsulate(inner, sa: out)
        packet[8] -= 3           // routers decrement the TTL
        packet[1] = 0x10         // and may rewrite the TOS
        IPv4Header.setChecksum(&packet, headerAt: 0, length: 20)
        XCTAssertEqual(try AHCodec.decapsulate(packet, sa: inb), inner)
        var forged = try AHCodec.encapsulate(inner, sa: out)
        forged[forged.count - 3] ^= 1
        XCTAssertThrowsError(try AHCodec.decapsulate(forged, sa: inb)) {
            XCTAssertEqual($0 as? DatapathDrop, .integrity)
        }
        var spoofed = try AHCodec.encapsulate(inner, sa: out)
        spoofed[12] ^= 1         // the source address is protected
        XCTAssertThrowsError(try AHCodec.decapsulate(spoofed, sa: inb)) {
            XCTAssertEqual($0 as? DatapathDrop, .integrity)
        }
    }
}
