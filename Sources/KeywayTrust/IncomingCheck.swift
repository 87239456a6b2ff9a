import KeywayVocabulary
import KeywayWire

/// One rule of the incoming policy check: plaintext from the network matching `selector` (the
/// policy's own selector mirrored) is dropped, or let through with no later rule applying.
public struct IncomingCheckRule: Hashable, Sendable {
    public var selector: TrafficSelector
    public var drop: Bool

    public init(selector: TrafficSelector, drop: Bool) { self.selector = selector; self.drop = drop }
}

/// The manual's incoming policy check, failing closed (routeros-semantics.md, Decisions): plaintext
/// that a `require` or `unique` encrypt policy covers is dropped whether or not an SA exists, so no
/// negotiation gap, expiry, flush or restart lets it through; `use` stays permissive. Derived by
/// keywayd from the configured policies alone, in SPD precedence order, so the firewall's first
/// match is the SPD's first match.
public enum IncomingCheckPlan {
    public static func rules(_ bounds: ConfigurationBounds) -> [IncomingCheckRule] {
        let ordered = bounds.policies.map(\.policy).enumerated().sorted { a, b in
            a.element.priority != b.element.priority ? a.element.priority > b.element.priority : a.offset < b.offset
        }.map(\.element)
        var rules = ordered.map { p in
            IncomingCheckRule(selector: p.selector.mirrored, drop: p.action == .encrypt && p.level != .use)
        }
        // Rules after the last drop could change nothing.
        while let last = rules.last, !last.drop { rules.removeLast() }
        return rules
    }
}
