import KeywayVocabulary
import KeywayCrypto
@testable import KeywayDatapath
import XCTest

/// Two appliances in one process, as the manual's examples set them up, exchanging packets.
final class DatapathTests: XCTestCase {
    struct Site {
        let datapath: Datapath
        let policyID = 1
    }

    func policy(_ src: String, _ dst: String, saSrc: String, saDst: String, esp: Bool = true, ah: Bool = false,
                tunnel: Bool = true,
                level: SecurityPolicy.Level = .require) -> SecurityPolicy {
        SecurityPolicy(id: 1, selector: TrafficSelector(source: prefix(src), destination: prefix(dst)),
                       action: .encrypt, level: level,
                       useESP: esp, useAH: ah, tunnel: tunnel, saSource: ip(saSrc), saDestination: ip(saDst))
    }

    /// Router1 10.1.0.0/24 (1.0.0.1) <-> Router2 10.2.0.0/24 (1.0.0.2), keys as manual-sa would give.
    func pair(esp: (EncryptionAlgorithm, IntegrityAlgorithm)?, ah: IntegrityAlgorithm?) throws -> (Datapath, Datapath) {
        let r1 = Datapath(policies: [policy("10.1.0.0/24", "10.2.0.0/24", saSrc: "1.0.0.1", saDst: "1.0.0.2",
                                            esp: esp != nil, ah: ah != nil)])
        let r2 = Datapath(policies: [policy("10.2.0.0/24", "10.1.0.0/24", saSrc: "1.0.0.2", saDst: "1.0.0.1",
                                            esp: esp != nil, ah: ah != nil)])
        for (spi, from, to, tx, rx) in [(UInt32(0x100), "1.0.0.1", "1.0.0.2", r1, r2),
                                        (0x101, "1.0.0.2", "1.0.0.1", r2, r1)] {
            if let (enc, integ) = esp {
                let ek = Secret.random(count: enc.keyMaterialLength),
                    ik = integ == .null ? nil : Secret.random(count: integ.keyLength)
                for (dp, outbound) in [(tx, true), (rx, false)] {
                    let sa = SecurityAssociation(spi: spi, proto: .esp, source: ip(from), destination: ip(to),
                                                 tunnel: true,
                                                 esp: try ESPTransform(encryption: enc, encryptionKey: ek,
                                                                       integrity: integ, integrityKey: ik,
                                                                       encrypt: outbound), now: 0)
                    if outbound { dp.installOutbound(sa, policyID: 1) } else { dp.installInbound(sa, policyID: 1) }
                }
            }
            if let integ = ah {
                let key = Secret(hx("abcfed"))
                for (dp, outbound) in [(tx, true), (rx, false)] {
                    // With ESP in tunnel mode, AH goes on in transport mode over it (RFC 4301 bundles).
                    let sa = SecurityAssociation(spi: spi + 0x1000, proto: .ah, source: ip(from), destination: ip(to),
                                                 tunnel: esp == nil,
                                                 ah: try AHTransform(integrity: integ, key: key), now: 0)
                    if outbound { dp.installOutbound(sa, policyID: 1) } else { dp.installInbound(sa, policyID: 1) }
                }
            }
        }
        return (r1, r2)
    }

    func icmp(_ src: String, _ dst: String, id: UInt16 = 1) -> [UInt8] {
        var p: [UInt8] = [0x45, 0, 0, 0, UInt8(id >> 8), UInt8(id & 0xff), 0, 0, 64, 1, 0, 0]
            + [UInt8](repeating: 0, count: 8)
            + [8, 0, 0, 0, 0, 1, 0, 1] + Array("keyway".utf8)
        for (i, b) in withUnsafeBytes(of: ip(src).bigEndian, Array.init).enumerated() { p[12 + i] = b }
        for (i, b) in withUnsafeBytes(of: ip(dst).bigEndian, Array.init).enumerated() { p[16 + i] = b }
        p[3] = UInt8(p.count)
        IPv4Header.setChecksum(&p, headerAt: 0, length: 20)
        return p
    }

    func testTunnelModeBothWaysForEachProtocolChoice() throws {
        for (esp, ah) in [((EncryptionAlgorithm.aes128, IntegrityAlgorithm.sha1), nil), ((.aes128gcm, .null), nil),
                          ((.tripleDES, .sha1), nil), (nil, IntegrityAlgorithm.sha1), ((.aes256, .sha256), .sha1)]
            as [((EncryptionAlgorithm, IntegrityAlgorithm)?, IntegrityAlgorithm?)] {
            let (r1, r2) = try pair(esp: esp, ah: ah)
            for (tx, rx, src, dst, peer) in [(r1, r2, "10.1.0.5", "10.2.0.7", "1.0.0.2"),
                                             (r2, r1, "10.2.0.7", "10.1.0.5", "1.0.0.1")] {
                let plain = icmp(src, dst)
                guard case .send(let outer, let to) = tx.processOutbound(plain, now: 1) else {
                    return XCTFail("not sent \(String(describing: esp)) \(String(describing: ah))")
                }
                XCTAssertEqual(to, ip(peer))
                XCTAssertEqual(outer[9], ah != nil ? 51 : 50)
                XCTAssertEqual(rx.processInbound(outer, now: 1), .deliver(plain),
                               "\(String(describing: esp)) \(String(describing: ah))")
                XCTAssertEqual(rx.processInbound(outer, now: 1), .drop(counter: "in-state-sequence-errors"),
                               "a replay is dropped")
            }
            XCTAssertEqual(r1.policyCounters[1]?.outTransformed, 1)
            XCTAssertEqual(r1.policyCounters[1]?.inTransformed, 1)
            XCTAssertEqual(r2.statistics["in-state-sequence-errors"], 1)
        }
    }

    func testUnknownSPIWrongKeyAndPolicyMismatchAreDroppedAndCounted() throws {
        let (_, r2) = try pair(esp: (.aes128, .sha1), ah: nil)
        let (other, _) = try pair(esp: (.aes128, .sha1), ah: nil)
        guard case .send(let forged, _) = other.processOutbound(icmp("10.1.0.5", "10.2.0.7"), now: 1) else {
            return XCTFail()
        }
        XCTAssertEqual(r2.processInbound(forged, now: 1), .drop(counter: "in-state-protocol-errors"),
                       "encrypted under another key")
        var unknown = forged
        unknown[23] ^= 0xff
        XCTAssertEqual(r2.processInbound(unknown, now: 1), .drop(counter: "in-no-states"))
        // A packet that decrypts fine but does not match its SA's policy (10.1.0.200 is outside 10.1.0.0/25).
        let narrow = Datapath(policies: [policy("10.2.0.0/24", "10.1.0.0/25", saSrc: "1.0.0.2", saDst: "1.0.0.1")])
        let ek = Secret.random(count: 16), ik = Secret.random(count: 20)
        let tx = SecurityAssociation(spi: 7, proto: .esp, source: ip("1.0.0.1"), destination: ip("1.0.0.2"),
                                     tunnel: true,
                                     esp: try ESPTransform(encryption: .aes128, encryptionKey: ek, integrity: .sha1,
                                                           integrityKey: ik, encrypt: true), now: 0)
        let rx = SecurityAssociation(spi: 7, proto: .esp, source: ip("1.0.0.1"), destination: ip("1.0.0.2"),
                                     tunnel: true,
                                     esp: try ESPTransform(encryption: .aes128, encryptionKey: ek, integrity: .sha1,
                                                           integrityKey: ik, encrypt: false), now: 0)
        narrow.installInbound(rx, policyID: 1)
        let outer = try ESPCodec.encapsulate(icmp("10.1.0.200", "10.2.0.7"), sa: tx)
        XCTAssertEqual(narrow.processInbound(outer, now: 1), .drop(counter: "in-policy-blocked"))
        XCTAssertEqual(r2.statistics["in-no-states"], 1)
        XCTAssertEqual(r2.statistics["in-state-protocol-errors"], 1)
    }

    func testLevelsActionsAndIKEBypass() throws {
        let require = Datapath(policies: [policy("10.1.0.0/24", "10.2.0.0/24", saSrc: "1.0.0.1", saDst: "1.0.0.2")])
        XCTAssertEqual(require.processOutbound(icmp("10.1.0.5", "10.2.0.7"), now: 0), .acquire(policyID: 1))
        XCTAssertEqual(require.statistics["out-no-states"], 1)
        let use = Datapath(policies: [policy("10.1.0.0/24", "10.2.0.0/24", saSrc: "1.0.0.1", saDst: "1.0.0.2",
                                             level: .use)])
        XCTAssertEqual(use.processOutbound(icmp("10.1.0.5", "10.2.0.7"), now: 0), .pass)
        let discard = Datapath(policies: [SecurityPolicy(id: 3,
                                                         selector: TrafficSelector(source: prefix("0.0.0.0/0"),
                                                                                   destination: prefix("0.0.0.0/0")),
                                                         action: .discard)])
        XCTAssertEqual(discard.processOutbound(icmp("10.1.0.5", "10.2.0.7"), now: 0),
                       .drop(counter: "out-policy-blocked"))
        XCTAssertEqual(discard.policyCounters[3]?.outDropped, 1)
        var ike: [UInt8] = [0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 1, 0, 5, 10, 2, 0, 7, 0x01, 0xf4, 0x01, 0xf4,
                            0, 8, 0, 0]
        IPv4Header.setChecksum(&ike, headerAt: 0, length: 20)
        XCTAssertEqual(discard.processOutbound(ike, now: 0), .pass, "IKE on UDP 500 is never subject to the SPD")
        XCTAssertEqual(discard.processOutbound([0x45, 0, 0], now: 0), .drop(counter: "out-errors"))
    }

    func testAnEncryptPolicyNamingNeitherESPNorAHDropsRatherThanSendingPlaintext() {
        let neither = Datapath(policies: [policy("10.1.0.0/24", "10.2.0.0/24", saSrc: "1.0.0.1", saDst: "1.0.0.2",
                                                 esp: false, ah: false)])
        XCTAssertEqual(neither.processOutbound(icmp("10.1.0.5", "10.2.0.7"), now: 0),
                       .drop(counter: "out-policy-blocked"))
        XCTAssertEqual(neither.policyCounters[1]?.outDropped, 1)
    }

    func testDontFragmentClearInheritSet() throws {
        for (mode, innerDF, expected) in [(DontFragment.clear, true, false), (.inherit, true, true),
                                          (.inherit, false, false), (.set, false, true)] {
            var p = policy("10.1.0.0/24", "10.2.0.0/24", saSrc: "1.0.0.1", saDst: "1.0.0.2")
            p.dontFragment = mode
            let dp = Datapath(policies: [p])
            dp.installOutbound(SecurityAssociation(spi: 1, proto: .esp, source: ip("1.0.0.1"),
                                                   destination: ip("1.0.0.2"), tunnel: true,
                                                   esp: try ESPTransform(encryption: .aes128gcm,
                                                                         encryptionKey: Secret.random(count: 20),
                                                                         integrity: .null, integrityKey: nil,
                                                                         encrypt: true), now: 0), policyID: 1)
            var packet = icmp("10.1.0.5", "10.2.0.7")
            if innerDF { packet[6] = 0x40; IPv4Header.setChecksum(&packet, headerAt: 0, length: 20) }
            guard case .send(let outer, _) = dp.processOutbound(packet, now: 0) else { return XCTFail() }
            XCTAssertEqual(try IPv4Header(outer).dontFragment, expected, "\(mode) inner DF \(innerDF)")
        }
    }

    func testExpiryEventsAndFlush() throws {
        let (r1, _) = try pair(esp: (.aes128gcm, .null), ah: nil)
        XCTAssertEqual(r1.installedSAs.count, 2)
        r1.tick(now: 10)
        XCTAssertEqual(r1.takeEvents(), [])
        XCTAssertEqual(r1.flush(.ah), 0)
        XCTAssertEqual(r1.flush(.esp), 2)
        XCTAssertEqual(r1.processOutbound(icmp("10.1.0.5", "10.2.0.7"), now: 11), .acquire(policyID: 1))
    }
}
