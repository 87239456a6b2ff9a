import KeywayConfig
import KeywayVocabulary
import KeywayWire

/// What the other processes must know of the configuration, built here and nowhere else: what
/// may exist (for keywayd and the datapath to check requests against), the datapath's policies
/// and manual SAs, and, in IKEPush, what keyway-ike keys.
public enum DatapathPush {
    /// The active policies with how each is keyed, every enabled peer, and what generated
    /// policies are keyed with (the `default` proposal).
    public static func bounds(_ config: Configuration) -> ConfigurationBounds {
        bounds(config, active: activePolicies(config))
    }

    static func bounds(_ config: Configuration, active: [(Item, PolicyRecord)]) -> ConfigurationBounds {
        // Policies share a few proposals: each one's algorithms are read once.
        var algorithms: [String: ([EncryptionAlgorithm], [IntegrityAlgorithm])] = [:]
        let policies = active.map { item, record in
            let manualName = item.value("manual-sa", of: .policy).text ?? "none"
            if manualName != "none" {
                // A manual-sa's algorithms (keywayd sizes the TUN MTU by them; IKE never keys these).
                let m = config.item(named: manualName, in: .manualSA)
                return AllowedPolicy(policy: record, manual: true, encryption: m.map(manualEncryption) ?? [],
                                     integrity: m.map(manualIntegrity) ?? [])
            }
            let name = item.value("proposal", of: .policy).text ?? "default"
            if algorithms[name] == nil {
                let p = proposal(named: name, config)
                algorithms[name] = (p.map(encryption) ?? [], p.map(integrity) ?? [])
            }
            let (encryption, integrity) = algorithms[name] ?? ([], [])
            return AllowedPolicy(policy: record, manual: false, encryption: encryption, integrity: integrity)
        }
        let peers = config.peers.filter { !$0.disabled }.compactMap { item -> AllowedPeer? in
            guard case .address(let a) = item.value("address", in: Schema.peer) else { return nil }
            return AllowedPeer(address: IPv4Prefix(a.address, length: a.prefixLength),
                               generatePolicy: flag(item, "generate-policy"), natTraversal: flag(item, "nat-traversal"))
        }
        let fallback = proposal(named: "default", config)
        return ConfigurationBounds(policies: policies, peers: peers,
                                   generatedEncryption: fallback.map(encryption) ?? [.tripleDES],
                                   generatedIntegrity: fallback.map(integrity) ?? [.sha1])
    }

    /// Everything the datapath is told, what may exist (`bounds`) included: built once per change
    /// and shared by the pushes to keywayd, the datapath and keyway-ike.
    public static func build(_ config: Configuration, generation: UInt64) -> DatapathConfig {
        let active = activePolicies(config)
        var sas: [SARecord] = []
        for (item, record) in active where record.action == .encrypt {
            guard let name = item.value("manual-sa", of: .policy).text, name != "none",
                  let manual = config.item(named: name, in: .manualSA) else { continue }
            sas += manualSAs(manual, policyID: record.id, esp: record.esp, ah: record.ah, tunnel: record.tunnel,
                             local: record.saSource, remote: record.saDestination)
        }
        return DatapathConfig(generation: generation, bounds: bounds(config, active: active), sas: sas)
    }

    /// Enabled, active policies in configured order, as records.
    static func activePolicies(_ config: Configuration) -> [(Item, PolicyRecord)] {
        return config.orderedPolicies.compactMap { item in
            guard !item.disabled, !item.dynamic, config.inactiveReason(item) == nil,
                  case .address(let src) = item.value("src-address", of: .policy),
                  case .address(let dst) = item.value("dst-address", of: .policy),
                  case .ip(let saSrc) = item.value("sa-src-address", of: .policy),
                  case .ip(let saDst) = item.value("sa-dst-address", of: .policy),
                  case .choices(let protocols) = item.value("ipsec-protocols", of: .policy),
                  case .boolean(let tunnel) = item.value("tunnel", of: .policy),
                  case .integer(let priority) = item.value("priority", of: .policy)
            else { return nil }
            let selector = TrafficSelector(source: IPv4Prefix(src.address, length: src.prefixLength),
                                           destination: IPv4Prefix(dst.address, length: dst.prefixLength),
                                           sourcePort: src.port, destinationPort: dst.port,
                                           proto: Schema.protocolNumber(item.value("protocol", of: .policy).text
                                                                        ?? "all"))
            let record = PolicyRecord(
                id: UInt32(item.id), selector: selector,
                action: PolicyAction(rawValue: item.value("action", of: .policy).text ?? "") ?? .encrypt,
                level: PolicyLevel(rawValue: item.value("level", of: .policy).text ?? "") ?? .require,
                esp: protocols.contains("esp"), ah: protocols.contains("ah"), tunnel: tunnel,
                saSource: saSrc, saDestination: saDst, priority: Int32(clamping: priority),
                dontFragment: DontFragment(rawValue: item.value("dont-fragment", of: .policy).text ?? "") ?? .clear,
                tcpMSS: TCPMSSClamp(item.value("tcp-mss", of: .policy).text ?? "") ?? .clampToPathMTU)
            return (item, record)
        }
    }

    static func proposal(named name: String, _ config: Configuration) -> Item? {
        config.item(named: name, in: .proposal)
    }

    static func encryption(_ proposal: Item) -> [EncryptionAlgorithm] {
        guard case .choices(let c) = proposal.value("enc-algorithms", in: Schema.proposal) else { return [] }
        return c.compactMap(EncryptionAlgorithm.init(rawValue:))
    }

    static func integrity(_ proposal: Item) -> [IntegrityAlgorithm] {
        guard case .choices(let c) = proposal.value("auth-algorithms", in: Schema.proposal) else { return [] }
        return c.compactMap(IntegrityAlgorithm.init(rawValue:))
    }

    static func manualEncryption(_ m: Item) -> [EncryptionAlgorithm] {
        [EncryptionAlgorithm(rawValue: m.value("esp-enc-algorithm", in: Schema.manualSA).text ?? "")].compactMap { $0 }
    }

    static func manualIntegrity(_ m: Item) -> [IntegrityAlgorithm] {
        ["esp-auth-algorithm", "ah-algorithm"].compactMap {
            IntegrityAlgorithm(rawValue: m.value($0, in: Schema.manualSA).text ?? "")
        }
    }

    static func flag(_ item: Item, _ name: String) -> Bool {
        if case .boolean(let b) = item.value(name, in: Schema.peer) { return b } else { return false }
    }

    /// Manual SPIs and keys are `incoming/outgoing` pairs; outbound runs local -> remote.
    static func manualSAs(_ m: Item, policyID: UInt32, esp useESP: Bool, ah useAH: Bool, tunnel: Bool,
                          local: IPv4Address, remote: IPv4Address) -> [SARecord] {
        let s = Schema.manualSA
        var out: [SARecord] = []
        let lifetime: UInt64 = {
            if case .duration(let d) = m.value("lifetime", in: s) { return d } else { return 0 }
        }()
        func pair(_ name: String) -> (String, String) {
            if case .pair(let a, let b) = m.value(name, in: s) { return (a, b) } else { return ("", "") }
        }
        for proto in [IPsecProtocol.esp, .ah] where proto == .esp ? useESP : useAH {
            let esp = proto == .esp
            let (spiIn, spiOut) = pair(esp ? "esp-spi" : "ah-spi")
            let (encIn, encOut) = esp ? pair("esp-enc-key") : ("", "")
            let (authIn, authOut) = pair(esp ? "esp-auth-key" : "ah-key")
            let encryption = esp
                ? EncryptionAlgorithm(rawValue: m.value("esp-enc-algorithm", in: s).text ?? "3des") : .null
            let integrity = IntegrityAlgorithm(
                rawValue: m.value(esp ? "esp-auth-algorithm" : "ah-algorithm", in: s).text ?? "sha1")
            guard let encryption, let integrity else { continue }
            // With ESP in tunnel mode, AH protects the ESP packet in transport mode.
            let saTunnel = esp ? tunnel : (tunnel && !useESP)
            for (inbound, spi, enc, auth) in [(false, spiOut, encOut, authOut), (true, spiIn, encIn, authIn)] {
                guard let number = Schema.parseSPI(spi), number != 0 else { continue }
                out.append(SARecord(policyID: policyID, inbound: inbound, proto: proto, spi: number,
                                    source: inbound ? remote : local, destination: inbound ? local : remote,
                                    tunnel: saTunnel, encryption: encryption, integrity: integrity,
                                    encryptionKey: Hex.decode(enc) ?? [], integrityKey: Hex.decode(auth) ?? [],
                                    lifetimeSeconds: lifetime))
            }
        }
        return out
    }
}
