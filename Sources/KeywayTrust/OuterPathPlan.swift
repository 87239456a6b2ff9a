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
        func add(_ d: IPv4Address) {
            if d != .any && out.count < OuterPaths.maximumPaths && seen.insert(d).inserted { out.append(d) }
        }
        for p in bounds.policies where p.policy.action == .encrypt { add(p.policy.saDestination) }
        for p in generated where p.action == .encrypt { add(p.saDestination) }
        for p in bounds.peers where p.address.length == 32 { add(p.address.address) }
        return out
    }

    /// The largest inner packet every encrypting policy can carry over its path, given the MTU
    /// toward each destination: each policy counts with the worst transform it may be keyed with
    /// (its proposal's, a manual-sa's, the default proposal for generated ones) and 8 bytes of UDP
    /// where its peer allows NAT traversal. Nil without encrypting policies.
    public static func tunMTU(_ bounds: ConfigurationBounds, generated: [PolicyRecord],
                              mtu: (IPv4Address) -> Int) -> Int? {
        var smallest: Int?
        // 100,000 policies share a few destinations and transforms: each combination is worked
        // out once (the peer search and the overhead arithmetic cost seconds per refresh otherwise).
        var pathOf: [IPv4Address: (mtu: Int, natTraversal: Bool)] = [:]
        var seen = Set<Shape>()
        func consider(_ policy: PolicyRecord, _ encryption: [EncryptionAlgorithm], _ integrity: [IntegrityAlgorithm]) {
            guard policy.action == .encrypt else { return }
            let d = policy.saDestination
            let path = pathOf[d] ?? (mtu(d), bounds.peer(for: d)?.natTraversal == true)
            pathOf[d] = path
            let shape = Shape(mtu: path.mtu, tunnel: policy.tunnel, esp: policy.esp, ah: policy.ah,
                              udp: policy.esp && !policy.ah && path.natTraversal, encryption: encryption,
                              integrity: integrity)
            guard seen.insert(shape).inserted else { return }
            let inner = IPsecOverhead.largestInner(fitting: shape.mtu, tunnel: shape.tunnel, esp: shape.esp,
                                                   ah: shape.ah,
                                                   encryption: encryption, integrity: integrity, udp: shape.udp)
            smallest = min(smallest ?? inner, inner)
        }
        for p in bounds.policies { consider(p.policy, p.encryption, p.integrity) }
        for p in generated { consider(p, bounds.generatedEncryption, bounds.generatedIntegrity) }
        return smallest.map { max(PathMTURule.minimum(.ipv4), $0) }
    }

    /// What the overhead of a policy's packets depends on.
    private struct Shape: Hashable {
        var mtu: Int, tunnel: Bool, esp: Bool, ah: Bool, udp: Bool
        var encryption: [EncryptionAlgorithm], integrity: [IntegrityAlgorithm]
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
