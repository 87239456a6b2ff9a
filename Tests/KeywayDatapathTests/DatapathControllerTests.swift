import KeywayCrypto
@testable import KeywayDatapath
import KeywayVocabulary
import KeywayWire
import XCTest

/// The datapath's tables driven as keyway-monitor and keyway-ike drive them, with keyway-ike played
/// by a compromised sender: its hostile requests change nothing and are counted and audited.
final class DatapathControllerTests: XCTestCase {
    let us = IPv4Address(0xc000_0201), peer = IPv4Address(0xc000_0202), warrior = IPv4Address(0xc633_6407)

    var tunnel: PolicyRecord {
        PolicyRecord(id: 1,
                     selector: TrafficSelector(source: prefix("10.1.0.0/24"), destination: prefix("10.2.0.0/24")),
                     tunnel: true, saSource: us, saDestination: peer)
    }

    func bounds(policies: [PolicyRecord]? = nil) -> ConfigurationBounds {
        ConfigurationBounds(policies: (policies ?? [tunnel]).map {
                                AllowedPolicy(policy: $0, manual: false, encryption: [.aes128], integrity: [.sha1])
                            },
                            peers: [AllowedPeer(address: .host(peer), generatePolicy: false),
                                    AllowedPeer(address: IPv4Prefix(0xc633_6400, length: 24), generatePolicy: true)],
                            generatedEncryption: [.aes128], generatedIntegrity: [.sha1])
    }

    func sa(_ p: PolicyRecord, inbound: Bool, spi: UInt32, lifetime: UInt64 = 1800) -> SARecord {
        var r = SARecord(policyID: p.id, inbound: inbound, proto: .esp, spi: spi,
                         source: inbound ? p.saDestination : p.saSource,
                         destination: inbound ? p.saSource : p.saDestination, tunnel: p.tunnel,
                         encryption: .aes128, integrity: .sha1, encryptionKey: Array(repeating: 7, count: 16),
                         integrityKey: Array(repeating: 9, count: 20), lifetimeSeconds: lifetime)
        r.negotiated = true
        return r
    }

    func icmp(_ src: String, _ dst: String) -> [UInt8] {
        var p: [UInt8] = [0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0] + [UInt8](repeating: 0, count: 8)
            + [8, 0, 0, 0, 0, 1, 0, 1]
        for (i, b) in withUnsafeBytes(of: ip(src).bigEndian, Array.init).enumerated() { p[12 + i] = b }
        for (i, b) in withUnsafeBytes(of: ip(dst).bigEndian, Array.init).enumerated() { p[16 + i] = b }
        IPv4Header.setChecksum(&p, headerAt: 0, length: 20)
        return p
    }

    func refusals(_ effects: [DatapathEffect]) -> [String] {
        effects.compactMap { if case .audit(let n) = $0, n.msgID == "refused" { return n.text } else { return nil } }
    }

    /// A monitor that sends an encrypt policy with neither ESP nor AH (no configuration makes one)
    /// gets its packets dropped, and the datapath says so, even with both SAs in place.
    func testAnEncryptPolicyWithNeitherProtocolIsAuditedAndDropsItsPackets() {
        var neither = tunnel
        neither.esp = false
        neither.ah = false
        let c = DatapathController()
        let effects = c.configure(DatapathConfig(generation: 1, bounds: bounds(policies: [neither]), sas: []), now: 0)
        let notes = effects.compactMap { if case .audit(let n) = $0 { return n } else { return nil } }
        XCTAssertEqual(notes.filter { $0.msgID == "policy-invalid" }.map(\.level), [.warning])
        _ = c.install(SAInstall(sas: [sa(neither, inbound: true, spi: 0x1000),
                                      sa(neither, inbound: false, spi: 0x2000)]), now: 1)
        XCTAssertEqual(c.engine.processOutbound(icmp("10.1.0.5", "10.2.0.7"), now: 2),
                       .drop(counter: "out-policy-blocked"))
    }

    func testAnHonestNegotiatedPairCarriesTraffic() {
        let c = DatapathController()
        _ = c.configure(DatapathConfig(generation: 1, bounds: bounds(), sas: []), now: 0)
        XCTAssertEqual(c.engine.processOutbound(icmp("10.1.0.5", "10.2.0.7"), now: 1), .acquire(policyID: 1))
        let effects = c.install(SAInstall(sas: [sa(tunnel, inbound: true, spi: 0x1000),
                                                sa(tunnel, inbound: false, spi: 0x2000)]), now: 1)
        XCTAssertEqual(refusals(effects), [])
        XCTAssertEqual(c.installedCount, 2)
        guard case .send(_, let destination) = c.engine.processOutbound(icmp("10.1.0.5", "10.2.0.7"), now: 2) else {
            return XCTFail("the tunnel should carry the packet")
        }
        XCTAssertEqual(destination, peer.value)
    }

    /// Once keyed, a negotiated SA's keys live in its Secrets only: the record the controller keeps
    /// for the trust checks holds no copy, and the SA still seals with the keys it was given.
    func testNegotiatedRecordsKeepNoKeyBytes() {
        let c = DatapathController()
        _ = c.configure(DatapathConfig(generation: 1, bounds: bounds(), sas: []), now: 0)
        let request = SAInstall(sas: [sa(tunnel, inbound: true, spi: 0x1000), sa(tunnel, inbound: false, spi: 0x2000)])
        XCTAssertEqual(refusals(c.install(request, now: 1)), [])
        XCTAssertEqual(c.negotiatedRecords.map(\.spi), [0x1000, 0x2000])
        XCTAssertEqual(c.negotiatedRecords.map { $0.encryptionKey.count + $0.integrityKey.count }, [0, 0])
        let inner = icmp("10.1.0.5", "10.2.0.7")
        guard case .send(let packet, _) = c.engine.processOutbound(inner, now: 2) else {
            return XCTFail("the tunnel should carry the packet")
        }
        // The far side, keyed from the same request, opens it: the keys the SA took were the real ones.
        let far = DatapathController()
        let farTunnel = PolicyRecord(id: 1, selector: tunnel.selector.mirrored, tunnel: true,
                                     saSource: peer, saDestination: us)
        var farBounds = bounds(policies: [farTunnel])
        farBounds.peers = [AllowedPeer(address: .host(us), generatePolicy: false)]
        _ = far.configure(DatapathConfig(generation: 1, bounds: farBounds, sas: []), now: 0)
        XCTAssertEqual(refusals(far.install(SAInstall(sas: [sa(farTunnel, inbound: true, spi: 0x2000)]), now: 1)), [])
        XCTAssertEqual(far.engine.processInbound(packet, now: 2), .deliver(inner))
    }

    func testOuterPathsAndTheTcpMSSSettingReachTheEngineAndTheState() throws {
        let c = DatapathController()
        var clamped = tunnel
        clamped.tcpMSS = .atMost(1100)
        _ = c.configure(DatapathConfig(generation: 1, bounds: bounds(policies: [clamped]), sas: []), now: 0)
        XCTAssertEqual(c.engine.tcpMSS[1], .atMost(1100))
        _ = c.install(SAInstall(sas: [sa(tunnel, inbound: true, spi: 0x1000), sa(tunnel, inbound: false, spi: 0x2000)]),
                      now: 1)
        let effects = c.setOuterPaths(OuterPaths(defaultMTU: 1500,
                                                 paths: [OuterPath(destination: .v4(peer), mtu: 1280)],
                                                 tunMTU: 1214))
        XCTAssertEqual(effects.count, 1, "audited")
        XCTAssertEqual(c.tunMTU, 1214)
        XCTAssertEqual(c.engine.paths.mtu(toward: .v4(peer), now: 2), 1280)
        let state = c.state(now: 2)
        let outbound = try XCTUnwrap(state.sas.first { $0.spi == 0x2000 })
        let inbound = try XCTUnwrap(state.sas.first { $0.spi == 0x1000 })
        XCTAssertEqual(outbound.pathMTU, 1280)
        XCTAssertEqual(outbound.overhead, 66, "aes-128/sha1 tunnel: 1280 carries 1214")
        XCTAssertEqual(inbound.pathMTU, 0, "an inbound SA's path is the peer's to know")
        XCTAssertGreaterThan(inbound.overhead, 0)
    }

    func testICMPIsAuditedUnderFixedKeysAndSomeoneElsesIsIgnoredQuietly() throws {
        let c = DatapathController()
        var set = tunnel
        set.dontFragment = .set
        _ = c.configure(DatapathConfig(generation: 1, bounds: bounds(policies: [set]), sas: []), now: 0)
        _ = c.install(SAInstall(sas: [sa(tunnel, inbound: true, spi: 0x1000), sa(tunnel, inbound: false, spi: 0x2000)]),
                      now: 1)
        var big = Packets.ipv4("10.1.0.5", "10.2.0.7", total: 1400, flags: 0x4000)
        IPv4Header.setChecksum(&big, headerAt: 0, length: 20)
        guard case .send(let outer, _) = c.engine.processOutbound(big, now: 2) else { return XCTFail() }
        func report(_ quote: [UInt8], mtu: UInt16) -> [UInt8] {
            Packets.fragmentationNeeded(from: "192.0.2.254", to: "192.0.2.1", mtu: mtu, quote: Array(quote.prefix(548)))
        }
        var forged = outer
        IPv4Header.put32(&forged, 24, 99_999)
        let refused = c.icmp(report(forged, mtu: 1280), start: 0, length: 576, now: 3)
        guard case .audit(let note)? = refused.first else { return XCTFail("audited") }
        XCTAssertEqual(note.rateLimitKey, "pmtu-refused", "a fixed key, never one the sender shapes")
        XCTAssertTrue(note.text.hasPrefix("ICMP fragmentation-needed refused: sequence number 99999"))
        let lowered = c.icmp(report(outer, mtu: 1280), start: 0, length: 576, now: 3)
        guard case .audit(let ok)? = lowered.first else { return XCTFail("audited") }
        XCTAssertEqual(ok.rateLimitKey, "pmtu")
        XCTAssertEqual(c.state(now: 3).sas.first { $0.spi == 0x2000 }?.pathMTU, 1280)
        let echo = Packets.ipv4("192.0.2.254", "192.0.2.1", proto: 1, total: 64)
        XCTAssertEqual(c.icmp(echo, start: 0, length: echo.count, now: 4), [], "not ours: no line")
    }

    func testHostileInstallsChangeNothingAndAreCountedAndAudited() {
        let c = DatapathController()
        _ = c.configure(DatapathConfig(generation: 1, bounds: bounds(), sas: []), now: 0)
        var everything = PolicyRecord(id: 0x4000_0000, selector: TrafficSelector(source: .all, destination: .all),
                                      tunnel: true, saSource: us, saDestination: warrior, priority: Int32.max)
        var redirected = sa(tunnel, inbound: false, spi: 0x2000)
        redirected.destination = IPv4Address(0x0808_0808)
        let hostile: [SAInstall] = [
            SAInstall(sas: [{ var r = sa(tunnel, inbound: true, spi: 0x1000); r.policyID = 77; return r }()]),
            SAInstall(sas: [sa(everything, inbound: true, spi: 0x3000), sa(everything, inbound: false, spi: 0x3001)],
                      generatedPolicies: [everything]),
            SAInstall(sas: [redirected]),
            SAInstall(sas: [sa(tunnel, inbound: true, spi: 0x1000, lifetime: .max)]),
        ]
        for request in hostile {
            let effects = c.install(request, now: 1)
            XCTAssertEqual(refusals(effects).count, 1, "\(request)")
            XCTAssertFalse(effects.contains { if case .generatedPolicies = $0 { return true } else { return false } },
                           "nothing for keywayd to route")
        }
        XCTAssertEqual(c.refusedFromIKE, UInt64(hostile.count))
        XCTAssertEqual(c.installedCount, 0)
        XCTAssertEqual(c.generatedPolicies, [])
        XCTAssertEqual(c.engine.spd.policies.map(\.id), [1], "no policy was added above (or below) the configured one")
        XCTAssertEqual(c.state(now: 2).refusedFromIKE, UInt64(hostile.count))
        everything.priority = 0
        XCTAssertEqual(c.engine.processOutbound(icmp("10.9.9.9", "8.8.8.8"), now: 2), .pass,
                       "traffic outside every policy stays untouched")
    }

    func testAnSPIHeldByAManualSACannotBeTakenOver() {
        let c = DatapathController()
        var manualRecord = sa(tunnel, inbound: true, spi: 0x1000)
        manualRecord.negotiated = false
        var b = bounds()
        b.policies[0].manual = false
        _ = c.configure(DatapathConfig(generation: 1, bounds: b, sas: [manualRecord]), now: 0)
        XCTAssertEqual(c.installedCount, 1)
        XCTAssertEqual(refusals(c.install(SAInstall(sas: [sa(tunnel, inbound: true, spi: 0x1000)]), now: 1)).count, 1)
        XCTAssertEqual(c.installedCount, 1)
    }

    func testManualCounterModeSAsAreNeverKeyed() {
        let c = DatapathController()
        var gcm = sa(tunnel, inbound: false, spi: 0x1000)
        gcm.negotiated = false
        gcm.encryption = .aes128gcm; gcm.integrity = .null
        gcm.encryptionKey = Array(repeating: 1, count: 20); gcm.integrityKey = []
        let effects = c.configure(DatapathConfig(generation: 1, bounds: bounds(), sas: [gcm]), now: 0)
        XCTAssertEqual(c.installedCount, 0)
        XCTAssertTrue(effects.contains {
            if case .audit(let n) = $0 {
                return n.msgID == "sa-install" && n.text.contains("RFC 8221")
            } else {
                return false
            }
        })
    }

    func testGeneratedPoliciesComeAndGoWithTheirSAsAndReachKeywayd() {
        let c = DatapathController()
        _ = c.configure(DatapathConfig(generation: 1, bounds: bounds(), sas: []), now: 0)
        let generated = PolicyRecord(id: 0x4000_0000,
                                     selector: TrafficSelector(source: .host(us), destination: .host(warrior)),
                                     tunnel: false, saSource: us, saDestination: warrior, priority: Int32.min)
        let effects = c.install(SAInstall(sas: [sa(generated, inbound: true, spi: 0x5000),
                                                sa(generated, inbound: false, spi: 0x5001)],
                                          generatedPolicies: [generated]), now: 1)
        XCTAssertTrue(effects.contains(.generatedPolicies(GeneratedPolicySet(policies: [generated]))))
        XCTAssertEqual(c.engine.spd.policies.map(\.id), [1, 0x4000_0000],
                       "generated policies sit below every configured one")
        let gone = c.remove(SARemove(entries: [.init(spi: 0x5000, proto: .esp, destination: us),
                                               .init(spi: 0x5001, proto: .esp, destination: warrior)]))
        XCTAssertTrue(gone.contains(.generatedPolicies(GeneratedPolicySet(policies: []))))
        XCTAssertEqual(c.generatedPolicies, [])
    }

    func testAConfigurationChangeTakesAwayWhatItNoLongerAllows() {
        let c = DatapathController()
        _ = c.configure(DatapathConfig(generation: 1, bounds: bounds(), sas: []), now: 0)
        _ = c.install(SAInstall(sas: [sa(tunnel, inbound: true, spi: 0x1000), sa(tunnel, inbound: false, spi: 0x2000)]),
                      now: 1)
        XCTAssertEqual(c.installedCount, 2)
        var moved = tunnel
        moved.saDestination = IPv4Address(0xc000_0209)
        _ = c.configure(DatapathConfig(generation: 2, bounds: bounds(policies: [moved]), sas: []), now: 2)
        XCTAssertEqual(c.installedCount, 0, "the SAs ran to the old sa-dst-address")
    }

    func testFlushKeepsAFlushedManualSAOutUntilItsRecordChanges() {
        let c = DatapathController()
        var manualRecord = sa(tunnel, inbound: true, spi: 0x1000)
        manualRecord.negotiated = false
        let config = DatapathConfig(generation: 1, bounds: bounds(), sas: [manualRecord])
        _ = c.configure(config, now: 0)
        _ = c.flush(nil)
        XCTAssertEqual(c.installedCount, 0)
        _ = c.configure(config, now: 1)
        XCTAssertEqual(c.installedCount, 0)
        manualRecord.spi = 0x1001
        _ = c.configure(DatapathConfig(generation: 2, bounds: bounds(), sas: [manualRecord]), now: 2)
        XCTAssertEqual(c.installedCount, 1)
    }
}
