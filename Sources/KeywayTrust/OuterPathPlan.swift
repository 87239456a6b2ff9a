import KeywayVocabulary
import KeywayWire

/// keywayd's decisions about outer paths (pure, from the configuration the monitor sent and the
/// route look-ups keywayd makes): which destinations to look up, the TUN device's MTU — the
/// outer interface's MTU less the largest overhead any configured transform may add — and what
/// the datapath is told.
public enum OuterPathPlan {
    /// Where encrypted packets may go: each encrypting policy's SA destination (configured and
    /// generated) and each peer given as one address, at most OuterPaths.maximumPaths of them.
    public static func destinations(_ bounds: ConfigurationBounds, generated: [PolicyRecord]) -> [IPv4Address] {
        var seen = Set<IPv4Address>(), out: [IPv4Address] = []
        let policies = bounds.policies.map(\.policy) + generated
        let candidates = policies.filter { $0.action == .encrypt }.map(\.saDestination)
            + bounds.peers.filter { $0.address.length == 32 }.map(\.address.address)
        for d in candidates where d != .any && out.count < OuterPaths.maximumPaths && seen.insert(d).inserted {
            out.append(d)
        }
        return out
    }

    /// The largest inner packet every encrypting policy can carry over its path, given the MTU
    /// toward each destination: each policy counts with the worst transform it may be keyed with
    /// (its proposal's, a manual-sa's, the default proposal for generated ones) and 8 bytes of UDP
    /// where its peer allows NAT traversal. Nil without encrypting policies.
    public static func tunMTU(_ bounds: ConfigurationBounds, generated: [PolicyRecord], mtu: (IPv4Address) -> Int) -> Int? {
        var smallest: Int?
        let keyed = bounds.policies.map { ($0.policy, $0.encryption, $0.integrity) }
            + generated.map { ($0, bounds.generatedEncryption, bounds.generatedIntegrity) }
        for (policy, encryption, integrity) in keyed where policy.action == .encrypt {
            let udp = policy.esp && !policy.ah && bounds.peer(for: policy.saDestination)?.natTraversal == true
            let inner = IPsecOverhead.largestInner(fitting: mtu(policy.saDestination), tunnel: policy.tunnel, esp: policy.esp,
                                                   ah: policy.ah, encryption: encryption, integrity: integrity, udp: udp)
            smallest = min(smallest ?? inner, inner)
        }
        return smallest.map { max(PathMTURule.minimum(.ipv4), $0) }
    }

    /// The datapath's message: every looked-up path, the smallest of them for destinations not
    /// listed (1500 without any), and the TUN MTU.
    public static func message(paths: [IPv4Address: Int], tunMTU: Int) -> OuterPaths {
        func clamp(_ v: Int) -> UInt16 { UInt16(clamping: max(Int(OuterPaths.smallestMTU), min(65_535, v))) }
        let list = paths.sorted { $0.key < $1.key }.prefix(OuterPaths.maximumPaths)
            .map { OuterPath(destination: .v4($0.key), mtu: clamp($0.value)) }
        return OuterPaths(defaultMTU: clamp(paths.values.min() ?? 1500), paths: list, tunMTU: clamp(tunMTU))
    }
}
