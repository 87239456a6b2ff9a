import KeywayVocabulary
import KeywayTrust

/// generate-policy=yes: a peer may negotiate identities no configured policy covers, and Keyway
/// makes a dynamic policy for them, within KeywayTrust's GeneratedPolicyRule (never 0.0.0.0/0,
/// never the appliance's own addresses or another peer's, transport only between the two hosts)
/// and its bounds per peer and in all. keyway-datapath and keywayd apply the same rule again.
/// The policies generate-policy made, shared by the IKEv1 and IKEv2 engines: one id space (the
/// datapath refuses a second policy under an id) and one count against the bounds.
public final class GeneratedPolicyBook {
    public internal(set) var policies: [Int: IKEPolicy] = [:]
    var nextID = IKEEngine.firstGeneratedPolicyID
    /// The appliance's own addresses, which no generated policy may claim.
    var ownAddresses: [IPv4Address] = []

    public init() {}

    /// A fresh id (each negotiation its own, even concurrent ones), within
    /// [firstGeneratedPolicyID, UInt32.max] and wrapping past ids still in use.
    func takeID() -> Int {
        let last = Int(UInt32.max)
        repeat {
            let id = nextID
            nextID = id >= last ? IKEEngine.firstGeneratedPolicyID : id + 1
            if policies[id] == nil { return id }
        } while true
    }

    /// The selectors a peer claims, as a generated policy: the one already made for them, or a
    /// new one within GeneratedPolicyRule and the bounds (`pending`: ones being negotiated).
    func policy(peer: IKEPeer, configuration: IKEConfiguration, remote: UInt32, local: UInt32,
                ours: IPv4Prefix, ourPort: UInt16, theirs: IPv4Prefix, theirPort: UInt16, proto: UInt8?,
                tunnel: Bool, pending: [IKEPolicy]) throws(NegotiationError) -> IKEPolicy {
        // A rekey (or a repeated negotiation) of the same identities keeps the policy it made.
        if let existing = policies.values.first(where: { p in
            p.saDestination == remote && p.tunnel == tunnel && p.proto == proto
                && IPv4Prefix(p.source, length: p.sourceLength) == ours
                && IPv4Prefix(p.destination, length: p.destinationLength) == theirs
                && p.sourcePort == ourPort && p.destinationPort == theirPort
        }) {
            return existing
        }
        let selector = TrafficSelector(source: ours, destination: theirs, sourcePort: ourPort == 0 ? nil : ourPort,
                                       destinationPort: theirPort == 0 ? nil : theirPort, proto: proto)
        let peerAddress = IPv4Address(remote)
        let generatingPeer = IPv4Prefix(peer.address, length: peer.prefixLength)
        let otherPeers = configuration.peers.map { IPv4Prefix($0.address, length: $0.prefixLength) }
        if let reason = GeneratedPolicyRule.refusal(selector: selector, tunnel: tunnel,
                                                    localAddress: IPv4Address(local),
                                                    peerAddress: peerAddress, generatingPeer: generatingPeer,
                                                    otherPeers: otherPeers, ownAddresses: ownAddresses) {
            throw .invalidID("generate-policy refused: \(reason)")
        }
        // Those installed and those being negotiated both count.
        let all = Array(policies.values) + pending
        let forPeer = all.filter { $0.saDestination == remote }.count
        guard forPeer < GeneratedPolicyRule.maximumPerPeer else {
            throw .invalidID("generate-policy refused: peer \(peerAddress) already has \(forPeer) generated policies"
                             + " (at most \(GeneratedPolicyRule.maximumPerPeer))")
        }
        guard all.count < GeneratedPolicyRule.maximumTotal else {
            throw .invalidID("generate-policy refused: \(all.count) generated policies exist"
                             + " (at most \(GeneratedPolicyRule.maximumTotal))")
        }
        let t = configuration.defaultProposal
        var p = IKEPolicy(id: takeID(),
                          source: ours.address.value, sourceLength: ours.length, sourcePort: ourPort,
                          destination: theirs.address.value, destinationLength: theirs.length,
                          destinationPort: theirPort,
                          proto: proto, saSource: local, saDestination: remote, tunnel: tunnel,
                          authAlgorithms: t.authAlgorithms, encAlgorithms: t.encAlgorithms, lifetime: t.lifetime,
                          pfsGroup: t.pfsGroup)
        p.dynamic = true
        return p
    }
}

extension IKEEngine {
    /// The appliance's own addresses (keywayd knows them); a generated policy's far side may not
    /// cover any of them.
    public func setOwnAddresses(_ addresses: [IPv4Address]) {
        book.ownAddresses = addresses
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
        let pending = sas.values.flatMap { $0.quick.values.map(\.policy) }.filter(\.dynamic)
        return try book.policy(peer: sa.peer, configuration: configuration, remote: sa.remote.address,
                               local: sa.localAddress, ours: IPv4Prefix(cr.0, length: cr.1), ourPort: cr.3,
                               theirs: IPv4Prefix(ci.0, length: ci.1), theirPort: ci.3,
                               proto: ci.2 == 0 ? nil : ci.2, tunnel: tunnel, pending: pending)
    }
}
