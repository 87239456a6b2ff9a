import KeywayVocabulary

/// The manual's "incoming policy check": a packet that arrives in plaintext but that the SPD,
/// matched in reverse, says must be encrypted (its policy has a valid SA) is dropped. Such packets
/// never reach the datapath, so the check is exported as an ordered rule list for the firewall.
public struct IncomingRule: Equatable, Sendable {
    /// Matched against the arriving packet as it is (the policy's selector mirrored).
    public var selector: TrafficSelector
    /// True: drop. False: the first matching policy lets it through, and later rules never apply.
    public var drop: Bool

    public init(selector: TrafficSelector, drop: Bool) {
        self.selector = selector
        self.drop = drop
    }
}

extension Datapath {
    /// In SPD precedence order, so the firewall's first match is the SPD's first match. Rules
    /// after the last drop could change nothing and are left out.
    public func incomingRules() -> [IncomingRule] {
        let protected = Set(inboundPolicyIDsWithLiveSAs)
        var rules = spd.policies.map { p in
            IncomingRule(selector: p.selector.mirrored, drop: p.action == .encrypt && protected.contains(p.id))
        }
        while let last = rules.last, !last.drop { rules.removeLast() }
        return rules
    }
}
