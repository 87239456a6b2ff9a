import KeywayTrust
import KeywayVocabulary
import KeywayWire
import XCTest

/// A compromised keyway-ike's requests to the datapath, each refused; the honest ones accepted.
final class NegotiatedSARuleTests: XCTestCase {
    func refusal(_ request: SAInstall, held: NegotiatedSARule.Held = Site.nothingHeld) -> String? {
        NegotiatedSARule.refusal(request, bounds: Site.bounds, ownAddresses: [Site.us], held: held)?.reason
    }

    func testAnHonestPairForAConfiguredPolicyIsAccepted() {
        XCTAssertNil(refusal(SAInstall(sas: Site.pair(Site.tunnel))))
        XCTAssertNil(refusal(SAInstall(sas: [Site.sa(Site.tunnel, inbound: true, encryption: .aes128gcm,
                                                     integrity: .null)])))
    }

    func testUnconfiguredOrManualPoliciesAreRefused() {
        var unknown = Site.sa(Site.tunnel, inbound: true)
        unknown.policyID = 99
        XCTAssertNotNil(refusal(SAInstall(sas: [unknown])))
        XCTAssertNotNil(refusal(SAInstall(sas: Site.pair(Site.manual))), "a manual-sa policy is never keyed by IKE")
        var notNegotiated = Site.sa(Site.tunnel, inbound: true)
        notNegotiated.negotiated = false
        XCTAssertNotNil(refusal(SAInstall(sas: [notNegotiated])))
        XCTAssertNotNil(refusal(SAInstall(sas: [])))
    }

    func testAddressesProtocolsModesAndAlgorithmsMustMatchThePolicy() {
        var elsewhere = Site.sa(Site.tunnel, inbound: false)
        elsewhere.destination = IPv4Address(0x0808_0808)
        XCTAssertNotNil(refusal(SAInstall(sas: [elsewhere])), "outbound to an address of the attacker's choice")
        var spoofedSource = Site.sa(Site.tunnel, inbound: true)
        spoofedSource.destination = IPv4Address(0x0a01_0001)
        XCTAssertNotNil(refusal(SAInstall(sas: [spoofedSource])))
        var ah = Site.sa(Site.tunnel, inbound: true)
        ah.proto = .ah
        XCTAssertNotNil(refusal(SAInstall(sas: [ah])), "the policy does not use AH")
        var transport = Site.sa(Site.tunnel, inbound: true)
        transport.tunnel = false
        XCTAssertNotNil(refusal(SAInstall(sas: [transport])))
        XCTAssertNotNil(refusal(SAInstall(sas: [Site.sa(Site.tunnel, inbound: true, encryption: .null)])),
                        "NULL encryption is not proposed")
        XCTAssertNotNil(refusal(SAInstall(sas: [Site.sa(Site.tunnel, inbound: true, encryption: .des)])))
        XCTAssertNotNil(refusal(SAInstall(sas: [Site.sa(Site.tunnel, inbound: true, integrity: .md5)])))
        XCTAssertNotNil(refusal(SAInstall(sas: [Site.sa(Site.tunnel, inbound: true, encryption: .aes128gcm,
                                                        integrity: .sha1)])),
                        "an AEAD cipher carries no separate integrity")
    }

    func testLifetimesAreBounded() {
        XCTAssertNotNil(refusal(SAInstall(sas: [Site.sa(Site.tunnel, inbound: true, lifetime: .max)])))
        XCTAssertNotNil(refusal(SAInstall(sas: [Site.sa(Site.tunnel, inbound: true, lifetime: 0)])),
                        "negotiated SAs always expire")
        XCTAssertNil(refusal(SAInstall(sas: [Site.sa(Site.tunnel, inbound: true,
                                                     lifetime: Seconds.maximumLifetime.value)])))
        var soft = Site.sa(Site.tunnel, inbound: true)
        soft.softSeconds = soft.lifetimeSeconds + 1
        XCTAssertNotNil(refusal(SAInstall(sas: [soft])))
    }

    func testSPIsCannotCollideOrBeReserved() {
        let held = NegotiatedSARule.Held(generated: [],
                                         inboundSAs: [.init(destination: Site.us, proto: .esp, spi: 0x1000)],
                                         negotiatedCount: 2)
        XCTAssertNotNil(refusal(SAInstall(sas: Site.pair(Site.tunnel)), held: held),
                        "would take over an installed SA's SPI")
        XCTAssertNotNil(refusal(SAInstall(sas: [Site.sa(Site.tunnel, inbound: true),
                                                Site.sa(Site.tunnel, inbound: true)])))
        XCTAssertNotNil(refusal(SAInstall(sas: [Site.sa(Site.tunnel, inbound: true, spi: 7)])))
        let full = NegotiatedSARule.Held(generated: [], inboundSAs: [], negotiatedCount: NegotiatedSARule.maximumSAs)
        XCTAssertNotNil(refusal(SAInstall(sas: Site.pair(Site.tunnel)), held: full))
    }

    func testUDPEncapsulationOnlyFromOurNATTraversalPort() {
        var udp = Site.sa(Site.tunnel, inbound: true)
        udp.udpLocalPort = 4500; udp.udpRemotePort = 4500
        XCTAssertNil(refusal(SAInstall(sas: [udp])))
        udp.udpLocalPort = 22
        XCTAssertNotNil(refusal(SAInstall(sas: [udp])))
    }

    func testGeneratedPoliciesWithinTheGeneratePolicyPeersBounds() {
        let honest = Site.generated()
        XCTAssertNil(refusal(SAInstall(sas: Site.pair(honest), generatedPolicies: [honest])))
        // 0.0.0.0/0 at the top, tunnelled to an address of the attacker's choice.
        var everything = Site.generated(destination: .all, tunnel: true)
        everything.priority = Int32.max
        XCTAssertNotNil(refusal(SAInstall(sas: Site.pair(everything), generatedPolicies: [everything])))
        let notAllowedPeer = Site.generated(warriorAddress: Site.peer)
        XCTAssertNotNil(refusal(SAInstall(sas: Site.pair(notAllowedPeer), generatedPolicies: [notAllowedPeer])),
                        "192.0.2.2's peer entry has generate-policy=no")
        var configuredNumber = Site.generated()
        configuredNumber.id = 1
        XCTAssertNotNil(refusal(SAInstall(sas: Site.pair(configuredNumber), generatedPolicies: [configuredNumber])))
        let ourLAN = Site.generated(destination: Site.prefix("10.1.0.0/16"), tunnel: true)
        XCTAssertNotNil(NegotiatedSARule.refusal(SAInstall(sas: Site.pair(ourLAN), generatedPolicies: [ourLAN]),
                                                 bounds: Site.bounds, ownAddresses: [Site.us, IPv4Address(0x0a01_0001)],
                                                 held: Site.nothingHeld))
        let theOtherSite = Site.generated(destination: Site.prefix("203.0.113.0/24"), tunnel: true)
        XCTAssertNotNil(refusal(SAInstall(sas: Site.pair(theOtherSite), generatedPolicies: [theOtherSite])))
        XCTAssertNotNil(refusal(SAInstall(sas: Site.pair(honest), generatedPolicies: [])),
                        "SAs for a policy nobody generated")
    }

    func testGeneratedPoliciesAreBoundedPerPeer() {
        let held = (0..<UInt32(GeneratedPolicyRule.maximumPerPeer)).map {
            Site.generated(id: 0x4000_0100 + $0, destination: IPv4Prefix(0x0a09_0000 + $0 << 8, length: 24),
                           tunnel: true)
        }
        let one = Site.generated(id: 0x4000_0001, destination: Site.prefix("10.8.0.0/24"), tunnel: true)
        XCTAssertNotNil(refusal(SAInstall(sas: Site.pair(one), generatedPolicies: [one]),
                                held: NegotiatedSARule.Held(generated: held, inboundSAs: [], negotiatedCount: 0)))
        XCTAssertNil(refusal(SAInstall(sas: Site.pair(one), generatedPolicies: [one]),
                             held: NegotiatedSARule.Held(generated: Array(held.dropLast()), inboundSAs: [],
                                                         negotiatedCount: 0)))
    }
}
