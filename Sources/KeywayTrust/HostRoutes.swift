import KeywayVocabulary
import KeywayWire

/// A route into the TUN device, in Keyway's own table: plaintext for `destination` goes to the
/// datapath. `source`, when set, is the address the host should send from (a transport policy's
/// sa-src-address), so routing into the TUN device does not change which address local traffic uses.
public struct HostRoute: Hashable, Sendable, CustomStringConvertible {
    public var destination: IPv4Prefix
    public var source: IPv4Address?

    public init(destination: IPv4Prefix, source: IPv4Address? = nil) {
        self.destination = destination; self.source = source
    }

    public var description: String { destination.description + (source.map { " src \($0)" } ?? "") }
}

/// keywayd's routes: derived from the configuration the monitor sent, never from a prefix another
/// process names. The datapath only says which generated policies it holds; each is checked.
public enum HostRoutePlan {
    /// Routes for the configured encrypt policies: a tunnel's far network, a transport policy's peer.
    public static func configured(_ bounds: ConfigurationBounds) -> [HostRoute] {
        deduplicated(bounds.policies.map(\.policy).filter { $0.action == .encrypt }.map(route))
    }

    /// Routes for generated policies, or why the set is refused (then nothing of it is used).
    public static func generated(_ policies: [PolicyRecord], bounds: ConfigurationBounds,
                                 ownAddresses: [IPv4Address]) -> Result<[HostRoute], Refusal> {
        var accepted: [PolicyRecord] = []
        for p in policies {
            if let why = NegotiatedSARule.generatedRefusal(p, bounds: bounds, ownAddresses: ownAddresses,
                                                           held: accepted) {
                return .failure(Refusal(why))
            }
            accepted.append(p)
        }
        return .success(deduplicated(accepted.map(route)))
    }

    static func route(_ p: PolicyRecord) -> HostRoute {
        p.tunnel ? HostRoute(destination: p.selector.destination)
                 : HostRoute(destination: .host(p.saDestination), source: p.saSource == .any ? nil : p.saSource)
    }

    /// One route per destination: the first policy naming it wins, as in the SPD.
    public static func deduplicated(_ routes: [HostRoute]) -> [HostRoute] {
        var seen = Set<IPv4Prefix>()
        return routes.filter { seen.insert($0.destination).inserted }
    }
}
