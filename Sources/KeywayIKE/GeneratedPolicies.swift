import KeywayVocabulary
import KeywayTrust

/// generate-policy=yes: a peer may negotiate identities no configured policy covers, and Keyway
/// makes a dynamic policy for them, within KeywayTrust's GeneratedPolicyRule (never 0.0.0.0/0,
/// never the appliance's own addresses or another peer's, transport only between the two hosts)
/// and its bounds per peer and in all. keyway-datapath and keywayd apply the same rule again.
extension IKEEngine {
    /// The appliance's own addresses (keywayd knows them); a generated policy's far side may not
    /// cover any of them.
    public func setOwnAddresses(_ addresses: [IPv4Address]) {
        ownAddresses = addresses
    }

    /// A dynamic policy mirroring the peer's identities (`ci` theirs, `cr` ours), with the
    /// `default` proposal, tunnel or transport as the peer proposes; kept only if its SAs get
    /// installed. nil when the peer may not generate policies; throws INVALID-ID-INFORMATION, with
    /// the reason, when the rule or a bound refuses.
    func generatePolicy(_ sa: IKESA, initiatorID ci: (UInt32, Int, UInt8, UInt16),
                        responderID cr: (UInt32, Int, UInt8, UInt16),
                        proposals: [Proposal]) throws(NegotiationError) -> IKEPolicy? {
        guard sa.peer.generatePolicy else { return nil }
        let tunnel = proposals.first?.transforms.first.flatMap { t -> Bool? in
            guard case .success(let c) = Phase2Choice.parse(t, proto: .esp) else { return nil }
            return c.mode.isTunnel
        } ?? true
        let ours = IPv4Prefix(cr.0, length: cr.1), theirs = IPv4Prefix(ci.0, length: ci.1)
        let proto: UInt8? = ci.2 == 0 ? nil : ci.2
        // A rekey (or a repeated negotiation) of the same identities keeps the policy it made.
        if let existing = generatedPolicies.values.first(where: { p in
            p.saDestination == sa.remote.address && p.tunnel == tunnel && p.proto == proto
                && IPv4Prefix(p.source, length: p.sourceLength) == ours
                && IPv4Prefix(p.destination, length: p.destinationLength) == theirs
                && p.sourcePort == cr.3 && p.destinationPort == ci.3
        }) {
            return existing
        }
        let selector = TrafficSelector(source: ours, destination: theirs, sourcePort: cr.3 == 0 ? nil : cr.3,
                                       destinationPort: ci.3 == 0 ? nil : ci.3, proto: proto)
        let peerAddress = IPv4Address(sa.remote.address)
        let generatingPeer = IPv4Prefix(sa.peer.address, length: sa.peer.prefixLength)
        let otherPeers = configuration.peers.map { IPv4Prefix($0.address, length: $0.prefixLength) }
        if let reason = GeneratedPolicyRule.refusal(selector: selector, tunnel: tunnel,
                                                    localAddress: IPv4Address(sa.localAddress),
                                                    peerAddress: peerAddress, generatingPeer: generatingPeer,
                                                    otherPeers: otherPeers, ownAddresses: ownAddresses) {
            throw .invalidID("generate-policy refused: \(reason)")
        }
        // Those installed and those being negotiated both count.
        let pending = sas.values.flatMap { $0.quick.values.map(\.policy) }.filter(\.dynamic)
        let all = Array(generatedPolicies.values) + pending
        let forPeer = all.filter { $0.saDestination == sa.remote.address }.count
        guard forPeer < GeneratedPolicyRule.maximumPerPeer else {
            throw .invalidID("generate-policy refused: peer \(peerAddress) already has \(forPeer) generated policies"
                             + " (at most \(GeneratedPolicyRule.maximumPerPeer))")
        }
        guard all.count < GeneratedPolicyRule.maximumTotal else {
            throw .invalidID("generate-policy refused: \(all.count) generated policies exist"
                             + " (at most \(GeneratedPolicyRule.maximumTotal))")
        }
        let t = configuration.defaultProposal
        var p = IKEPolicy(id: takeGeneratedID(),
                          source: ours.address.value, sourceLength: ours.length, sourcePort: cr.3,
                          destination: theirs.address.value, destinationLength: theirs.length, destinationPort: ci.3,
                          proto: proto, saSource: sa.localAddress, saDestination: sa.remote.address, tunnel: tunnel,
                          authAlgorithms: t.authAlgorithms, encAlgorithms: t.encAlgorithms, lifetime: t.lifetime,
                          pfsGroup: t.pfsGroup)
        p.dynamic = true
        return p
    }

    /// A fresh id for a generated policy (each negotiation its own, even concurrent ones), within
    /// [firstGeneratedPolicyID, UInt32.max] and wrapping past ids still in use.
    func takeGeneratedID() -> Int {
        let last = Int(UInt32.max)
        repeat {
            let id = nextGeneratedID
            nextGeneratedID = id >= last ? Self.firstGeneratedPolicyID : id + 1
            if generatedPolicies[id] == nil { return id }
        } while true
    }
}
