import KeywayVocabulary
import KeywayWire

/// What keyway-datapath installs for keyway-ike. IKE may key only the configured policies that
/// IKE keys (never a manual-sa's), or a generated policy the generate-policy rule allows, with the
/// SA addresses, protocols and algorithms the configuration names and a bounded lifetime: a
/// compromised keyway-ike can disturb the SAs of configured policies, nothing more.
public enum NegotiatedSARule {
    /// Negotiated SAs the datapath holds at most (both directions, AH and ESP).
    public static let maximumSAs = ScaleLimits.negotiatedSAs
    /// Generated policy ids never meet configured ones (the monitor numbers those from 1).
    public static let firstGeneratedPolicyID: UInt32 = 0x4000_0000

    /// What the datapath already holds, for the checks that depend on it.
    public struct Held: Sendable {
        public var generated: [PolicyRecord]
        public var inboundSAs: Set<InboundKey>
        public var negotiatedCount: Int

        public init(generated: [PolicyRecord], inboundSAs: Set<InboundKey>, negotiatedCount: Int) {
            self.generated = generated; self.inboundSAs = inboundSAs; self.negotiatedCount = negotiatedCount
        }
    }

    /// How an inbound SA is found: destination, protocol, SPI.
    public struct InboundKey: Hashable, Sendable {
        public var destination: IPv4Address, proto: IPsecProtocol, spi: UInt32
        public init(destination: IPv4Address, proto: IPsecProtocol, spi: UInt32) {
            self.destination = destination; self.proto = proto; self.spi = spi
        }
    }

    /// Nil when the whole request may be installed; otherwise why not (nothing of it is).
    public static func refusal(_ request: SAInstall, bounds: ConfigurationBounds, ownAddresses: [IPv4Address],
                               held: Held) -> Refusal? {
        guard !request.sas.isEmpty else { return Refusal("an SA install without SAs") }
        guard held.negotiatedCount + request.sas.count <= maximumSAs else {
            return Refusal("more than \(maximumSAs) negotiated SAs")
        }
        var generated = held.generated
        for p in request.generatedPolicies {
            if let why = generatedRefusal(p, bounds: bounds, ownAddresses: ownAddresses, held: generated) {
                return Refusal(why)
            }
            generated.append(p)
        }
        var newKeys = Set<InboundKey>()
        for sa in request.sas {
            let key = InboundKey(destination: sa.destination, proto: sa.proto, spi: sa.spi)
            if sa.inbound {
                guard !held.inboundSAs.contains(key), newKeys.insert(key).inserted else {
                    return Refusal("SPI \(String(sa.spi, radix: 16)) for \(sa.destination) is already in use")
                }
            }
            if let why = saRefusal(sa, bounds: bounds, ownAddresses: ownAddresses, generated: generated) {
                return Refusal(why)
            }
        }
        return nil
    }

    /// Why a generated policy may not be added beside `held` (nil: it may).
    public static func generatedRefusal(_ p: PolicyRecord, bounds: ConfigurationBounds, ownAddresses: [IPv4Address],
                                 held: [PolicyRecord]) -> String? {
        guard p.id >= firstGeneratedPolicyID else {
            return "generated policy \(p.id) uses a configured policy's number"
        }
        guard !held.contains(where: { $0.id == p.id }) else { return "generated policy \(p.id) exists already" }
        guard p.action == .encrypt, p.esp != p.ah else {
            return "a generated policy encrypts with ESP or AH, one of them"
        }
        guard let peer = bounds.peer(for: p.saDestination), peer.generatePolicy else {
            return "no peer with generate-policy=yes covers \(p.saDestination)"
        }
        guard held.count < GeneratedPolicyRule.maximumTotal else {
            return "\(GeneratedPolicyRule.maximumTotal) generated policies exist already"
        }
        guard held.filter({ $0.saDestination == p.saDestination }).count < GeneratedPolicyRule.maximumPerPeer else {
            return "peer \(p.saDestination) holds \(GeneratedPolicyRule.maximumPerPeer) generated policies already"
        }
        let others = bounds.peers.map(\.address).filter { $0 != peer.address }
        return GeneratedPolicyRule.refusal(selector: p.selector, tunnel: p.tunnel, localAddress: p.saSource,
                                           peerAddress: p.saDestination, generatingPeer: peer.address,
                                           otherPeers: others, ownAddresses: ownAddresses)
    }

    /// Why one negotiated SA may not exist under the configuration (nil: it may).
    public static func saRefusal(_ sa: SARecord, bounds: ConfigurationBounds, ownAddresses: [IPv4Address],
                                 generated: [PolicyRecord]) -> String? {
        guard sa.negotiated else { return "IKE may not install manual SAs" }
        let policy: PolicyRecord, encryption: [EncryptionAlgorithm], integrity: [IntegrityAlgorithm]
        if let configured = bounds.policy(id: sa.policyID) {
            guard !configured.manual else { return "policy \(sa.policyID) is keyed by a manual-sa, not by IKE" }
            guard configured.policy.action == .encrypt else { return "policy \(sa.policyID) does not encrypt" }
            (policy, encryption, integrity) = (configured.policy, configured.encryption, configured.integrity)
        } else if let g = generated.first(where: { $0.id == sa.policyID }) {
            (policy, encryption, integrity) = (g, bounds.generatedEncryption, bounds.generatedIntegrity)
        } else {
            return "no policy \(sa.policyID) is configured or generated"
        }
        let ours = sa.inbound ? sa.destination : sa.source, theirs = sa.inbound ? sa.source : sa.destination
        guard theirs == policy.saDestination else {
            return "SA for policy \(policy.id) goes to \(theirs), not its sa-dst-address"
        }
        if policy.saSource == .any {
            guard ownAddresses.contains(ours) else {
                return "SA for policy \(policy.id) starts at \(ours), not an address of ours"
            }
        } else if ours != policy.saSource {
            return "SA for policy \(policy.id) starts at \(ours), not its sa-src-address"
        }
        switch sa.proto {
        case .esp:
            guard policy.esp else { return "policy \(policy.id) does not use ESP" }
            guard sa.tunnel == policy.tunnel else { return "SA mode differs from policy \(policy.id)'s" }
            guard encryption.contains(sa.encryption) else {
                return "\(sa.encryption) is not in policy \(policy.id)'s proposal"
            }
            let aead = sa.encryption.isAEAD
            guard aead ? sa.integrity == .null : integrity.contains(sa.integrity) else {
                return "\(sa.integrity) is not in policy \(policy.id)'s proposal"
            }
        case .ah:
            guard policy.ah else { return "policy \(policy.id) does not use AH" }
            // AH over an ESP tunnel protects the ESP packet in transport mode.
            guard sa.tunnel == (policy.tunnel && !policy.esp) else {
                return "AH mode differs from policy \(policy.id)'s"
            }
            guard sa.integrity != .null, integrity.contains(sa.integrity) else {
                return "\(sa.integrity) is not in policy \(policy.id)'s proposal"
            }
        }
        guard sa.spi >= 256 else { return "SPI \(sa.spi) is reserved" }
        guard sa.lifetimeSeconds > 0, Seconds(sa.lifetimeSeconds) <= .maximumLifetime else {
            return "lifetime \(sa.lifetimeSeconds)s is outside 1s...\(Seconds.maximumLifetime)"
        }
        guard sa.softSeconds <= sa.lifetimeSeconds, sa.useHardSeconds <= Seconds.maximumLifetime.value,
              sa.softBytes <= sa.hardBytes || sa.hardBytes == 0 else { return "inconsistent lifetimes" }
        guard (sa.udpLocalPort == 0) == (sa.udpRemotePort == 0), sa.udpLocalPort == 0 || sa.udpLocalPort == 4500 else {
            return "ESP in UDP must run from our port 4500"
        }
        guard sa.udpLocalPort == 0 || sa.proto == .esp else { return "only ESP runs in UDP" }
        return nil
    }
}
