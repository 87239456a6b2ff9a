import KeywayVocabulary
import KeywayWire

/// keywayd's decisions about the host: which routes into the TUN device and which incoming-check
/// rules exist. Derived from the configuration the monitor sent alone; the datapath may only name
/// generated policies, each checked by the generate-policy rule. Pure, so it is tested directly.
public struct HostPlan: Sendable {
    public private(set) var bounds: ConfigurationBounds?
    /// Generated policies the datapath named and the configuration allows.
    public private(set) var generated: [PolicyRecord] = []
    public var ownAddresses: [IPv4Address] = []

    public init() {}

    /// A new configuration from the monitor: generated policies it no longer allows are dropped.
    public mutating func authorize(_ bounds: ConfigurationBounds) {
        self.bounds = bounds
        var kept: [PolicyRecord] = []
        for p in generated
        where NegotiatedSARule.generatedRefusal(p, bounds: bounds, ownAddresses: ownAddresses, held: kept) == nil {
            kept.append(p)
        }
        generated = kept
    }

    /// The datapath's generated policies (the whole set). Refused as a whole if any is not allowed.
    public mutating func offer(_ set: GeneratedPolicySet) throws(Refusal) {
        guard let bounds else {
            if set.policies.isEmpty { return }
            throw Refusal("generated policies before any configuration")
        }
        if case .failure(let refusal) = HostRoutePlan.generated(set.policies, bounds: bounds,
                                                                ownAddresses: ownAddresses) {
            throw refusal
        }
        generated = set.policies
    }

    /// Every route into the TUN device: the configured policies' first, then the generated ones'.
    public var routes: [HostRoute] {
        guard let bounds else { return [] }
        let generatedRoutes = (try? HostRoutePlan.generated(generated, bounds: bounds,
                                                            ownAddresses: ownAddresses).get()) ?? []
        return HostRoutePlan.deduplicated(HostRoutePlan.configured(bounds) + generatedRoutes)
    }

    /// The incoming-check rules; nil until the monitor has said what is configured (a table left
    /// from before stays in place meanwhile: fail closed).
    public var incomingRules: [IncomingCheckRule]? { bounds.map(IncomingCheckPlan.rules) }
}
