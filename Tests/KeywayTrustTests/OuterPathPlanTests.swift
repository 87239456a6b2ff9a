import KeywayTrust
import KeywayVocabulary
import KeywayWire
import XCTest

final class OuterPathPlanTests: XCTestCase {
    func testDestinationsAreTheEncryptingPoliciesAndSingleAddressPeersOnceEach() {
        var discard = Site.optional
        discard.id = 9; discard.action = .discard; discard.saDestination = IPv4Address(0x0909_0909)
        var bounds = Site.bounds
        bounds.policies.append(AllowedPolicy(policy: discard, manual: false, encryption: [], integrity: []))
        let generated = PolicyRecord(id: 0x4000_0000, selector: TrafficSelector(source: .all, destination: .all),
                                     tunnel: true, saSource: Site.us, saDestination: Site.warrior)
        XCTAssertEqual(OuterPathPlan.destinations(bounds, generated: [generated]),
                       [Site.peer, Site.other, Site.warrior])
    }

    func testTheTunMTUIsTheSmallestOverEveryPolicyAndItsWorstKeying() {
        let mtu: (IPv4Address) -> Int = { $0 == Site.peer ? 1500 : 1280 }
        // Site.tunnel (aes128 or GCM with sha1) toward 1500; the manual one (any algorithm) toward 1280.
        let worstManual = IPsecOverhead.largestInner(fitting: 1280, tunnel: true, esp: true, ah: false, encryption: [],
                                                     integrity: [], udp: false)
        XCTAssertEqual(OuterPathPlan.tunMTU(Site.bounds, generated: [], mtu: mtu), worstManual)
        let onlyTunnel = ConfigurationBounds(policies: [Site.bounds.policies[0]], peers: Site.bounds.peers)
        XCTAssertEqual(OuterPathPlan.tunMTU(onlyTunnel, generated: [], mtu: mtu), 1438)
        XCTAssertNil(OuterPathPlan.tunMTU(ConfigurationBounds(policies: [], peers: []), generated: [], mtu: mtu))
    }

    func testTheMessageIsBoundedAndSorted() {
        var paths: [IPv4Address: Int] = [:]
        for i in 0..<(OuterPaths.maximumPaths + 5) { paths[IPv4Address(UInt32(0x0a00_0000 + i))] = 1500 - i % 3 }
        paths[IPv4Address(1)] = 20
        let m = OuterPathPlan.message(paths: paths, tunMTU: 1438)
        XCTAssertEqual(m.paths.count, OuterPaths.maximumPaths)
        XCTAssertEqual(m.paths.first?.mtu, 68, "clamped to IPv4's minimum")
        XCTAssertEqual(m.defaultMTU, 68)
        XCTAssertEqual(OuterPathPlan.message(paths: [:], tunMTU: 1400).defaultMTU, 1500)
    }
}
