import KeywayTrust
import KeywayVocabulary
import KeywayWire
import XCTest

/// Two sites: 10.1.0.0/24 behind us (192.0.2.1), 10.2.0.0/24 behind the peer (192.0.2.2); a road
/// warrior range 198.51.100.0/24 with generate-policy=yes; 203.0.113.5, another site's peer.
enum Site {
    static let us = IPv4Address(0xc000_0201), peer = IPv4Address(0xc000_0202)
    static let warrior = IPv4Address(0xc633_6407), other = IPv4Address(0xcb00_7105)

    static func prefix(_ text: String) -> IPv4Prefix { IPv4Prefix(text) ?? .all }

    static let tunnel = PolicyRecord(id: 1, selector: TrafficSelector(source: prefix("10.1.0.0/24"),
                                                                      destination: prefix("10.2.0.0/24")),
                                     tunnel: true, saSource: us, saDestination: peer)
    static let manual = PolicyRecord(id: 2, selector: TrafficSelector(source: prefix("10.1.0.0/24"),
                                                                      destination: prefix("10.3.0.0/24")),
                                     tunnel: true, saSource: us, saDestination: other)
    static let optional = PolicyRecord(id: 3, selector: TrafficSelector(source: prefix("10.1.0.0/24"),
                                                                        destination: prefix("10.4.0.0/24")),
                                       level: .use, tunnel: true, saSource: us, saDestination: peer)

    static let bounds = ConfigurationBounds(
        policies: [AllowedPolicy(policy: tunnel, manual: false, encryption: [.aes128, .aes128gcm], integrity: [.sha1]),
                   AllowedPolicy(policy: manual, manual: true, encryption: [], integrity: []),
                   AllowedPolicy(policy: optional, manual: false, encryption: [.aes128], integrity: [.sha1])],
        peers: [AllowedPeer(address: .host(peer), generatePolicy: false),
                AllowedPeer(address: prefix("198.51.100.0/24"), generatePolicy: true),
                AllowedPeer(address: .host(other), generatePolicy: false)],
        generatedEncryption: [.tripleDES], generatedIntegrity: [.sha1])

    /// One direction of an SA for `policy`, as IKE would key it.
    static func sa(_ policy: PolicyRecord, inbound: Bool, spi: UInt32 = 0x1000,
                   encryption: EncryptionAlgorithm = .aes128,
                   integrity: IntegrityAlgorithm = .sha1, lifetime: UInt64 = 1800) -> SARecord {
        var r = SARecord(policyID: policy.id, inbound: inbound, proto: .esp, spi: spi,
                         source: inbound ? policy.saDestination : policy.saSource,
                         destination: inbound ? policy.saSource : policy.saDestination,
                         tunnel: policy.tunnel, encryption: encryption, integrity: integrity,
                         encryptionKey: Array(repeating: 1, count: encryption.keyMaterialLength),
                         integrityKey: Array(repeating: 2, count: integrity.keyLength), lifetimeSeconds: lifetime)
        r.negotiated = true
        return r
    }

    /// Both directions; generated policies (ids from 0x4000_0000) with the default proposal's 3DES.
    static func pair(_ policy: PolicyRecord, spi: UInt32 = 0x1000) -> [SARecord] {
        let encryption: EncryptionAlgorithm = policy.id >= NegotiatedSARule.firstGeneratedPolicyID
            ? .tripleDES : .aes128
        return [sa(policy, inbound: true, spi: spi, encryption: encryption),
                sa(policy, inbound: false, spi: spi + 1, encryption: encryption)]
    }

    /// A transport policy generate-policy would make for the road warrior.
    static func generated(id: UInt32 = 0x4000_0000, destination: IPv4Prefix? = nil, tunnel: Bool = false,
                          warriorAddress: IPv4Address = warrior) -> PolicyRecord {
        PolicyRecord(id: id, selector: TrafficSelector(source: tunnel ? prefix("10.1.0.0/24") : .host(us),
                                                       destination: destination ?? .host(warriorAddress)),
                     tunnel: tunnel, saSource: us, saDestination: warriorAddress, priority: Int32.min)
    }

    static let nothingHeld = NegotiatedSARule.Held(generated: [], inboundSAs: [], negotiatedCount: 0)
}
