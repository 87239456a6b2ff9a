import KeywayVocabulary

/// What a `generate-policy=yes` peer may make Keyway create. RouterOS trusts such a peer blindly
/// (its manual says so); Keyway bounds it, and keyway-ike, keyway-datapath and keywayd each apply
/// this same rule, so that a compromised process in between gains nothing.
public enum GeneratedPolicyRule {
    /// Generated policies one remote peer address may hold at once.
    public static let maximumPerPeer = 16
    /// Generated policies in all.
    public static let maximumTotal = ScaleLimits.generatedPolicies

    /// Why a policy with `selector` (our side as source, the peer's side as destination) may not be
    /// generated for the peer at `peerAddress`, negotiated from `localAddress`; nil when it may.
    /// `generatingPeer` is the address of the `/ip ipsec peer` entry that allowed it, `otherPeers`
    /// every other enabled peer entry's address, `ownAddresses` the appliance's own addresses.
    public static func refusal(selector: TrafficSelector, tunnel: Bool, localAddress: IPv4Address,
                               peerAddress: IPv4Address, generatingPeer: IPv4Prefix, otherPeers: [IPv4Prefix],
                               ownAddresses: [IPv4Address]) -> String? {
        guard generatingPeer.contains(peerAddress) else {
            return "the peer \(peerAddress) is outside the peer entry \(generatingPeer)"
        }
        if selector.source.isAll || selector.destination.isAll {
            return "0.0.0.0/0 is never generated (claimed \(selector))"
        }
        guard tunnel else {
            // Transport mode protects the two hosts only, as the manual's L2TP example needs.
            guard selector.source == .host(localAddress), selector.destination == .host(peerAddress) else {
                return "transport mode is generated only between \(localAddress) and \(peerAddress) "
                    + "(claimed \(selector))"
            }
            return nil
        }
        for own in ownAddresses + [localAddress] where selector.destination.contains(own) {
            return "the peer's side \(selector.destination) covers the appliance's own address \(own)"
        }
        for other in otherPeers where !other.isAll && other != generatingPeer && selector.destination.overlaps(other) {
            return "the peer's side \(selector.destination) covers the addresses of peer \(other)"
        }
        return nil
    }
}
