import KeywayTrust
import KeywayVocabulary
import XCTest

final class GeneratedPolicyRuleTests: XCTestCase {
    let local = IPv4Address(0xc000_0201)        // 192.0.2.1
    let peer = IPv4Address(0xc000_0202)         // 192.0.2.2
    let roadWarriors = IPv4Prefix(0xc000_0200, length: 24)

    func selector(_ source: String, _ destination: String) throws -> TrafficSelector {
        TrafficSelector(source: try XCTUnwrap(IPv4Prefix(source)), destination: try XCTUnwrap(IPv4Prefix(destination)))
    }

    func refusal(_ s: TrafficSelector, tunnel: Bool, others: [IPv4Prefix] = [], own: [IPv4Address] = []) -> String? {
        GeneratedPolicyRule.refusal(selector: s, tunnel: tunnel, localAddress: local, peerAddress: peer,
                                    generatingPeer: roadWarriors, otherPeers: others, ownAddresses: own)
    }

    func testTransportModeOnlyBetweenTheTwoEndpoints() throws {
        XCTAssertNil(refusal(try selector("192.0.2.1/32", "192.0.2.2/32"), tunnel: false))
        XCTAssertNotNil(refusal(try selector("192.0.2.1/32", "192.0.2.0/24"), tunnel: false))
        XCTAssertNotNil(refusal(try selector("192.0.2.9/32", "192.0.2.2/32"), tunnel: false))
    }

    func testZeroSlashZeroIsNeverGeneratedOnEitherSide() throws {
        XCTAssertNotNil(refusal(try selector("10.1.0.0/24", "0.0.0.0/0"), tunnel: true))
        XCTAssertNotNil(refusal(try selector("0.0.0.0/0", "10.9.0.0/24"), tunnel: true))
        XCTAssertNotNil(refusal(try selector("0.0.0.0/0", "0.0.0.0/0"), tunnel: false))
    }

    func testTunnelSideMayNotCoverOurAddressesOrAnotherPeers() throws {
        XCTAssertNil(refusal(try selector("10.1.0.0/24", "10.9.0.0/24"), tunnel: true))
        XCTAssertNotNil(refusal(try selector("10.1.0.0/24", "192.0.0.0/8"), tunnel: true),
                        "covers the local SA address")
        XCTAssertNotNil(refusal(try selector("10.1.0.0/24", "10.1.0.0/16"), tunnel: true,
                                own: [IPv4Address(0x0a01_0001)]),
                        "covers an address of the appliance's LAN")
        let site = IPv4Prefix(0xcb00_7105, length: 32)   // 203.0.113.5, another configured peer
        XCTAssertNotNil(refusal(try selector("10.1.0.0/24", "203.0.113.0/24"), tunnel: true, others: [site]))
        XCTAssertNil(refusal(try selector("10.1.0.0/24", "10.9.0.0/24"), tunnel: true, others: [site, .all]),
                     "a catch-all peer entry does not forbid everything")
    }

    func testThePeerMustBeInsideItsEntry() throws {
        let outside = GeneratedPolicyRule.refusal(selector: try selector("10.1.0.0/24", "10.9.0.0/24"), tunnel: true,
                                                  localAddress: local, peerAddress: IPv4Address(0xc633_6402),
                                                  generatingPeer: roadWarriors,
                                                  otherPeers: [], ownAddresses: [])
        XCTAssertNotNil(outside)
    }
}
