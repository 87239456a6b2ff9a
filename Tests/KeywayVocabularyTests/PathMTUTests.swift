import KeywayVocabulary
import XCTest

final class IPsecOverheadTests: XCTestCase {
    func testESPTunnelAESCBCWithSHA1FitsTheWellKnownSizes() {
        let o = IPsecOverhead(tunnel: true, encryption: .aes128, espIntegrity: .sha1)
        // 20 outer + 8 SPI/sequence + 16 IV + padding to 16 with 2 trailer bytes + 12 ICV.
        XCTAssertEqual(o.largestInner(fitting: 1500), 1438)
        XCTAssertEqual(o.largestInner(fitting: 1400), 1342)
        XCTAssertEqual(o.largestInner(fitting: 1280), 1214)
        XCTAssertEqual(o.outerLength(inner: 1438), 1496, "padding comes in blocks: 1500 itself is never reached")
        XCTAssertEqual(o.outerLength(inner: 1439), 1512, "one byte more costs a whole block")
        XCTAssertEqual(o.overhead(at: 1500), 62)
    }

    func testEveryCombinationAgreesWithItsOwnOuterLength() {
        for tunnel in [true, false] {
            for e in EncryptionAlgorithm.allCases as [EncryptionAlgorithm?] + [nil] {
                for i in IntegrityAlgorithm.allCases {
                    for ah in [nil, IntegrityAlgorithm.sha256] where e != nil || ah != nil {
                        for udp in [false, true] where e != nil || !udp {
                            let o = IPsecOverhead(tunnel: tunnel, encryption: e, espIntegrity: i, ahIntegrity: ah,
                                                  udp: udp)
                            for mtu in [576, 1280, 1400, 1492, 1500, 9000] {
                                let inner = o.largestInner(fitting: mtu)
                                XCTAssertLessThanOrEqual(o.outerLength(inner: inner), mtu, "\(o) \(mtu)")
                                XCTAssertGreaterThan(o.outerLength(inner: inner + 1), mtu,
                                                     "the largest, not merely one that fits")
                            }
                        }
                    }
                }
            }
        }
    }

    func testTransportModeKeepsTheInnerHeaderAndUDPAddsEight() {
        let transport = IPsecOverhead(tunnel: false, encryption: .aes128gcm)
        XCTAssertEqual(transport.outerLength(inner: 100), 20 + 8 + 8 + 84 + 16,
                       "GCM pads payload and trailer to 4 only")
        let udp = IPsecOverhead(tunnel: true, encryption: .aes128, espIntegrity: .sha1, udp: true)
        XCTAssertEqual(udp.largestInner(fitting: 1500), 1422)
        let ah = IPsecOverhead(tunnel: true, encryption: nil, ahIntegrity: .sha1)
        XCTAssertEqual(ah.outerLength(inner: 1000), 20 + 24 + 1000)
        XCTAssertEqual(IPsecOverhead(tunnel: true, encryption: .aes128, espIntegrity: .sha1).largestInner(fitting: 40),
                       0)
    }

    func testAPolicysWorstCombinationDecides() {
        let both = IPsecOverhead.largestInner(fitting: 1500, tunnel: true, esp: true, ah: false,
                                              encryption: [.aes128gcm, .aes256], integrity: [.sha1, .sha512],
                                              udp: false)
        let worst = IPsecOverhead(tunnel: true, encryption: .aes256, espIntegrity: .sha512).largestInner(fitting: 1500)
        XCTAssertEqual(both, worst)
        let natT = IPsecOverhead.largestInner(fitting: 1500, tunnel: true, esp: true, ah: false,
                                              encryption: [.aes256], integrity: [.sha512], udp: true)
        XCTAssertLessThan(natT, worst)
        let unknown = IPsecOverhead.largestInner(fitting: 1500, tunnel: true, esp: true, ah: true, encryption: [],
                                                 integrity: [], udp: false)
        XCTAssertLessThanOrEqual(unknown, both, "an unknown keying assumes the worst")
    }
}

final class PathMTURuleTests: XCTestCase {
    func testFloorPlateausAndAgeing() {
        XCTAssertEqual(PathMTURule.floor(.ipv4), 576)
        XCTAssertEqual(PathMTURule.plateau(below: 1500), 1492)
        XCTAssertEqual(PathMTURule.plateau(below: 1492), 1006)
        XCTAssertEqual(PathMTURule.plateau(below: 60), 68)
        XCTAssertEqual(PathMTURule.ageingSeconds, 600)
    }

    func testTCPMSSClampParsesAndLimits() {
        XCTAssertEqual(TCPMSSClamp("clamp-to-pmtu"), .clampToPathMTU)
        XCTAssertEqual(TCPMSSClamp("off"), .off)
        XCTAssertEqual(TCPMSSClamp("1200"), .atMost(1200))
        for bad in ["", "87", "65496", "-1", "12a", "0x100", "1e3"] { XCTAssertNil(TCPMSSClamp(bad), bad) }
        XCTAssertEqual(TCPMSSClamp.clampToPathMTU.limit(largestInner: 1438), 1398)
        XCTAssertEqual(TCPMSSClamp.atMost(1200).limit(largestInner: 1438), 1200)
        XCTAssertEqual(TCPMSSClamp.atMost(1400).limit(largestInner: 1214), 1174, "the path still wins")
        XCTAssertNil(TCPMSSClamp.off.limit(largestInner: 1438))
        XCTAssertEqual(TCPMSSClamp.clampToPathMTU.limit(largestInner: 60), 88, "never below what TCP needs")
        XCTAssertEqual(TCPMSSClamp.atMost(1200).description, "1200")
    }
}
