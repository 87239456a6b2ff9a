@testable import KeywayPrivsep
import KeywayTrust
import KeywayVocabulary
import KeywayWire
import XCTest

/// keywayd's side of smaller paths against a recording kernel: look-ups per peer, the TUN MTU
/// following the interface less the largest overhead, the datapath told only of changes.
final class OuterPathWatchTests: XCTestCase {
    let us = IPv4Address(0xc000_0201), peer = IPv4Address(0xc633_6402), other = IPv4Address(0xcb00_7105)

    func policy(_ id: UInt32, to destination: IPv4Address, esp: Bool = true, ah: Bool = false) -> PolicyRecord {
        PolicyRecord(id: id, selector: TrafficSelector(source: IPv4Prefix(0x0a01_0000, length: 24),
                                                       destination: IPv4Prefix(0x0a02_0000 + (id << 8), length: 24)),
                     esp: esp, ah: ah, tunnel: true, saSource: us, saDestination: destination)
    }

    func bounds(nat: Bool = false, encryption: [EncryptionAlgorithm] = [.aes128],
                integrity: [IntegrityAlgorithm] = [.sha1])
        -> ConfigurationBounds {
        ConfigurationBounds(policies: [AllowedPolicy(policy: policy(1, to: peer), manual: false, encryption: encryption,
                                                     integrity: integrity)],
                            peers: [AllowedPeer(address: .host(peer), generatePolicy: false, natTraversal: nat)])
    }

    func watch(_ kernel: RecordingKernel, fixed: Int? = nil) throws -> (OuterPathWatch, AuditCapture) {
        let audit = try AuditCapture()
        return (OuterPathWatch(kernel: kernel, audit: audit.log, mark: 0x4b57, initialTunMTU: 1400, fixedTunMTU: fixed),
                audit)
    }

    func testTheTunMTUFollowsTheInterfaceTowardThePeerLessTheOverhead() throws {
        let kernel = RecordingKernel()
        kernel.pathMTUs = [peer.value: 1280]
        let (w, audit) = try watch(kernel)
        let message = try XCTUnwrap(w.refresh(bounds: bounds(), generated: [], tunIndex: 7))
        XCTAssertEqual(kernel.lookups, [[peer.value]])
        XCTAssertEqual(kernel.batches, [[.setMTU(interfaceIndex: 7, bytes: 1214)]])
        XCTAssertEqual(message,
                       OuterPaths(defaultMTU: 1280, paths: [OuterPath(destination: .v4(peer), mtu: 1280)],
                                  tunMTU: 1214))
        XCTAssertTrue(try audit.lines().contains { $0.hasPrefix("tun-mtu TUN MTU set to 1214") })
        XCTAssertNil(w.refresh(bounds: bounds(), generated: [], tunIndex: 7), "nothing changed: nothing to tell")
        XCTAssertEqual(kernel.batches.count, 1)
        kernel.pathMTUs[peer.value] = 1500
        XCTAssertEqual(w.refresh(bounds: bounds(), generated: [], tunIndex: 7)?.tunMTU, 1438, "the interface grew")
        XCTAssertEqual(kernel.batches.last, [.setMTU(interfaceIndex: 7, bytes: 1438)])
    }

    func testTheLargestOverheadOfEveryTransformAndNATTraversalCount() throws {
        let kernel = RecordingKernel()
        kernel.pathMTUs = [peer.value: 1500]
        let (w, _) = try watch(kernel)
        XCTAssertEqual(w.refresh(bounds: bounds(nat: true, encryption: [.aes128gcm, .aes256],
                                                integrity: [.sha1, .sha512]),
                                 generated: [], tunIndex: 7)?.tunMTU,
                       UInt16(IPsecOverhead(tunnel: true, encryption: .aes256, espIntegrity: .sha512, udp: true)
                           .largestInner(fitting: 1500)))
    }

    func testEveryPeerCountsAndTheSmallestPathDecides() throws {
        let kernel = RecordingKernel()
        kernel.pathMTUs = [peer.value: 1500, other.value: 1400]
        let (w, _) = try watch(kernel)
        var b = bounds()
        b.policies.append(AllowedPolicy(policy: policy(2, to: other, esp: false, ah: true), manual: true,
                                        encryption: [], integrity: [.sha256]))
        let message = try XCTUnwrap(w.refresh(bounds: b, generated: [], tunIndex: 7))
        XCTAssertEqual(Set(kernel.lookups.flatMap { $0 }), [peer.value, other.value])
        XCTAssertEqual(message.tunMTU, 1400 - 20 - 28, "AH tunnel with sha256 toward the 1400 one")
        XCTAssertEqual(message.paths.map(\.mtu), [1500, 1400], "sorted by address")
        XCTAssertEqual(message.defaultMTU, 1400)
    }

    func testAFixedTunMTUStaysAndAMissingRouteIsAuditedOnce() throws {
        let kernel = RecordingKernel()
        let (w, audit) = try watch(kernel, fixed: 1400)
        let message = try XCTUnwrap(w.refresh(bounds: bounds(), generated: [], tunIndex: 7))
        XCTAssertEqual(message.tunMTU, 1400)
        XCTAssertEqual(message.paths, [], "no route toward the peer")
        XCTAssertEqual(message.defaultMTU, 1500)
        XCTAssertEqual(kernel.batches, [], "--tun-mtu: never changed")
        _ = w.refresh(bounds: bounds(), generated: [], tunIndex: 7)
        XCTAssertEqual(try audit.lines().filter { $0.hasPrefix("path-mtu no route toward 198.51.100.2") }.count, 1)
    }

    func testARefusedMTUChangeIsAuditedAndTriedAgain() throws {
        let kernel = RecordingKernel()
        kernel.pathMTUs = [peer.value: 1280]
        kernel.answer = { _ in .notPermitted }
        let (w, audit) = try watch(kernel)
        XCTAssertEqual(w.refresh(bounds: bounds(), generated: [], tunIndex: 7)?.tunMTU, 1400, "still the old one")
        XCTAssertTrue(try audit.lines().contains { $0.hasPrefix("tun-mtu could not set the TUN MTU to 1214") })
        kernel.answer = { _ in nil }
        XCTAssertEqual(w.refresh(bounds: bounds(), generated: [], tunIndex: 7)?.tunMTU, 1214)
    }
}
