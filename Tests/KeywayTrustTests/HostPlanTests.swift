import KeywayTrust
import KeywayVocabulary
import KeywayWire
import XCTest

/// keywayd's routes and incoming-check rules come from the configuration; a compromised
/// datapath can only name generated policies, and the hostile ones change nothing.
final class HostPlanTests: XCTestCase {
    func testRoutesComeFromConfiguredEncryptPoliciesOnly() {
        var plan = HostPlan()
        XCTAssertEqual(plan.routes, [], "nothing before the monitor says what is configured")
        XCTAssertNil(plan.incomingRules, "an existing table stays until then")
        plan.authorize(Site.bounds)
        XCTAssertEqual(plan.routes.map(\.description), ["10.2.0.0/24", "10.3.0.0/24", "10.4.0.0/24"])
        var transport = Site.bounds
        transport.policies = [AllowedPolicy(
            policy: PolicyRecord(id: 9,
                                 selector: TrafficSelector(source: .host(Site.us), destination: .host(Site.peer)),
                                 tunnel: false, saSource: Site.us, saDestination: Site.peer),
            manual: false, encryption: [.aes128], integrity: [.sha1])]
        plan.authorize(transport)
        XCTAssertEqual(plan.routes, [HostRoute(destination: .host(Site.peer), source: Site.us)])
    }

    func testHostileGeneratedSetsAreRefusedWhole() throws {
        var plan = HostPlan()
        plan.ownAddresses = [Site.us]
        plan.authorize(Site.bounds)
        let before = plan.routes
        var everything = Site.generated(destination: .all, tunnel: true)
        everything.priority = Int32.max
        // The host's own default route, or a route to anything it names, is never the datapath's to ask for.
        for hostile in [[everything], [Site.generated(), everything],
                        [Site.generated(destination: Site.prefix("192.0.2.0/24"), tunnel: true)],
                        [Site.generated(warriorAddress: Site.peer)]] {
            XCTAssertThrowsError(try plan.offer(GeneratedPolicySet(policies: hostile)))
            XCTAssertEqual(plan.routes, before, "a refused set changes nothing")
        }
        try plan.offer(GeneratedPolicySet(policies: [Site.generated()]))
        XCTAssertEqual(plan.routes, before + [HostRoute(destination: .host(Site.warrior), source: Site.us)])
        // The peer entry loses generate-policy: its generated route goes with the new configuration.
        var stricter = Site.bounds
        stricter.peers[1].generatePolicy = false
        plan.authorize(stricter)
        XCTAssertEqual(plan.routes, before)
        XCTAssertEqual(plan.generated, [])
    }

    func testIncomingCheckFailsClosedForRequireAndUniqueAndFollowsSPDOrder() {
        var bounds = Site.bounds
        let bypass = PolicyRecord(id: 7, selector: TrafficSelector(source: Site.prefix("10.1.0.9/32"),
                                                                   destination: Site.prefix("10.2.0.0/24")),
                                  action: .none, tunnel: false, saSource: .any, saDestination: .any, priority: 10)
        bounds.policies.append(AllowedPolicy(policy: bypass, manual: false, encryption: [], integrity: []))
        let rules = IncomingCheckPlan.rules(bounds)
        XCTAssertEqual(rules.map(\.drop), [false, true, true],
                       "the bypass first (priority 10), then the two require policies")
        XCTAssertEqual(rules[0].selector, bypass.selector.mirrored)
        XCTAssertEqual(rules[1].selector.source, Site.prefix("10.2.0.0/24"), "mirrored: the peer's side is the source")
        XCTAssertFalse(rules.contains { $0.selector.source == Site.prefix("10.4.0.0/24") },
                       "level=use stays permissive and trails")
        var unique = Site.bounds
        unique.policies = [AllowedPolicy(policy: { var p = Site.tunnel; p.level = .unique; return p }(), manual: false,
                                         encryption: [], integrity: [])]
        XCTAssertEqual(IncomingCheckPlan.rules(unique).map(\.drop), [true])
        XCTAssertEqual(IncomingCheckPlan.rules(ConfigurationBounds(policies: [], peers: [])), [])
    }
}
