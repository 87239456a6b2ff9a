import KeywayVocabulary
import KeywayCrypto
import KeywayTrust
@testable import KeywayIKE
import XCTest

/// generate-policy=yes within GeneratedPolicyRule: what a peer may not claim is refused with
/// INVALID-ID-INFORMATION and an audit line naming the reason; the per-peer and total bounds hold.
extension ExchangeTests {
    static let ownLAN = IPv4Address(0x0a09_0901)        // 10.9.9.1, one of the appliance's addresses
    static let otherPeer = IPv4Prefix(0xc633_6400, length: 24)  // 198.51.100.0/24, another configured peer

    /// Router 1 (`b`): a generate-policy peer for 192.0.2.0/24 and no policy. Router 2 (`a`): the
    /// given policies, all towards router 1.
    func generating(_ policies: [IKEPolicy]) -> (router1: IKEEngine, router2: IKEEngine) {
        let secret = Secret(Array("generate".utf8))
        let router1 = IKEEngine(configuration: IKEConfiguration(peers: [
            IKEPeer(address: 0xc000_0200, prefixLength: 24, secret: secret, generatePolicy: true),
            IKEPeer(address: Self.otherPeer.address.value, prefixLength: 24, secret: Secret(Array("other".utf8))),
        ]))
        router1.setOwnAddresses([Self.ownLAN, IPv4Address(b)])
        let router2 = IKEEngine(configuration: IKEConfiguration(peers: [IKEPeer(address: b, secret: secret)],
                                                                policies: policies))
        return (router1, router2)
    }

    func tunnel(_ id: Int, _ theirs: String, _ ours: String, tunnel: Bool = true) -> IKEPolicy {
        let t = IPv4Prefix(theirs) ?? .all, o = IPv4Prefix(ours) ?? .all
        return IKEPolicy(id: id, source: t.address.value, sourceLength: t.length, destination: o.address.value,
                         destinationLength: o.length, saSource: a, saDestination: b, tunnel: tunnel)
    }

    func testEachThingAGeneratePolicyPeerMayNotClaimIsRefusedWithTheReason() throws {
        // (router 2's side, router 1's side as router 2 proposes them, tunnel, the reason router 1 audits)
        let cases: [(String, String, Bool, String)] = [
            ("0.0.0.0/0", "10.2.0.0/24", true, "0.0.0.0/0 is never generated"),
            ("10.1.0.0/24", "0.0.0.0/0", true, "0.0.0.0/0 is never generated"),
            ("10.9.0.0/16", "10.2.0.0/24", true, "covers the appliance's own address 10.9.9.1"),
            ("192.0.2.0/24", "10.2.0.0/24", true, "covers the appliance's own address 192.0.2.2"),
            ("198.51.100.0/25", "10.2.0.0/24", true, "covers the addresses of peer 198.51.100.0/24"),
            ("10.1.0.0/24", "10.2.0.0/24", false, "transport mode is generated only between 192.0.2.2 and 192.0.2.1"),
        ]
        for (theirs, ours, isTunnel, reason) in cases {
            let (router1, router2) = generating([tunnel(1, theirs, ours, tunnel: isTunnel)])
            let p = run(router2, router1, start: router2.acquire(policyID: 1, now: 1_000))
            let label = "\(theirs) <=> \(ours) \(isTunnel ? "tunnel" : "transport")"
            XCTAssertNil(p.installed[b], label)
            XCTAssertNil(p.installed[a], label)
            XCTAssertTrue(router1.generatedPolicies.isEmpty, label)
            let failure = p.audits[b]?.first { $0.msgID == "ike-failed" }
            XCTAssertTrue(failure?.text.contains("generate-policy refused: ") ?? false,
                          "\(label): \(failure?.text ?? "no audit")")
            XCTAssertTrue(failure?.text.contains(reason) ?? false, "\(label): \(failure?.text ?? "no audit")")
            XCTAssertEqual(failure?.fields.first { $0.name == "notify" }?.value, "INVALID-ID-INFORMATION", label)
            XCTAssertEqual(p.audits[a]?.first { $0.msgID == "ike-peer-refused" }?.text,
                           "peer refused the negotiation: INVALID-ID-INFORMATION", label)
        }
        // What the rule allows still works: a tunnel between two LANs, and transport between the hosts.
        for policy in [tunnel(1, "10.1.0.0/24", "10.2.0.0/24"),
                       tunnel(1, "192.0.2.1/32", "192.0.2.2/32", tunnel: false)] {
            let (router1, router2) = generating([policy])
            let p = run(router2, router1, start: router2.acquire(policyID: 1, now: 1_000))
            XCTAssertNotNil(p.installed[b]?.first?.generatedPolicy, "\(policy)")
            XCTAssertEqual(router1.generatedPolicies.count, 1)
        }
    }

    func testAPeerGetsAtMostItsShareOfGeneratedPolicies() throws {
        let limit = GeneratedPolicyRule.maximumPerPeer
        let policies = (0...limit).map { i in tunnel(i + 1, "10.1.\(i).0/24", "10.2.0.0/24") }
        let (router1, router2) = generating(policies)
        var refusals: [IKEAudit] = []
        for policy in policies {
            let p = run(router2, router1, start: router2.acquire(policyID: policy.id, now: 1_000))
            refusals += p.audits[b]?.filter { $0.msgID == "ike-failed" } ?? []
        }
        XCTAssertEqual(router1.generatedPolicies.count, limit)
        XCTAssertEqual(refusals.count, 1)
        XCTAssertTrue(refusals.first?.text.contains("peer 192.0.2.1 already has \(limit) generated policies") ?? false,
                      refusals.first?.text ?? "")
        XCTAssertEqual(Set(router1.generatedPolicies.keys).count, limit, "each its own id")
    }

    func testGeneratedPoliciesAreBoundedInAll() throws {
        let (router1, router2) = generating([tunnel(1, "10.1.0.0/24", "10.2.0.0/24")])
        // As if other peers already held the total (ids and addresses of their own).
        for i in 0..<GeneratedPolicyRule.maximumTotal {
            var p = IKEPolicy(id: IKEEngine.firstGeneratedPolicyID + 100_000 + i, source: 0x0a02_0000, sourceLength: 24,
                              destination: 0x0a40_0000 + UInt32(i) << 8, destinationLength: 24, saSource: b,
                              saDestination: 0xcb00_7100 + UInt32(i % 200), tunnel: true)
            p.dynamic = true
            router1.generatedPolicies[p.id] = p
        }
        let p = run(router2, router1, start: router2.acquire(policyID: 1, now: 1_000))
        XCTAssertNil(p.installed[b])
        let failure = p.audits[b]?.first { $0.msgID == "ike-failed" }
        XCTAssertTrue(failure?.text.contains("\(GeneratedPolicyRule.maximumTotal) generated policies exist") ?? false,
                      failure?.text ?? "")
        XCTAssertEqual(failure?.fields.first { $0.name == "notify" }?.value, "INVALID-ID-INFORMATION")
    }

    /// A rekey of the same identities keeps the generated policy (and does not count twice).
    func testARekeyKeepsTheGeneratedPolicy() throws {
        let (router1, router2) = generating([tunnel(1, "10.1.0.0/24", "10.2.0.0/24")])
        let first = run(router2, router1, start: router2.acquire(policyID: 1, now: 1_000))
        let id = try XCTUnwrap(first.installed[b]?.first?.generatedPolicy?.id)
        let rekeyAt: UInt64 = 1_000 + Seconds(1_800).eightyPercent.milliseconds
        let rekey = run(router2, router1, start: router2.tick(now: rekeyAt), now: rekeyAt)
        XCTAssertEqual(rekey.installed[b]?.first?.generatedPolicy?.id, id)
        XCTAssertEqual(Array(router1.generatedPolicies.keys), [id])
        XCTAssertFalse(rekey.audits[b]?.contains { $0.msgID == "ike-generated-policy" } ?? true, "not announced again")
        // The first pair's end leaves the policy with the second pair.
        _ = router1.tick(now: 1_000 + 1_800_000)
        XCTAssertEqual(Array(router1.generatedPolicies.keys), [id])
        XCTAssertEqual(router1.phase2(policyID: id), .established)
    }
}
