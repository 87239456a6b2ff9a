import KeywayConfig
import KeywayCrypto
import KeywayWire

/// What keyway-ike must know of the configuration: the peers (with their secrets) and the
/// active encrypt policies without a manual-sa, each with its proposal.
enum IKEPush {
    /// Peers keyway-ike cannot serve, with the reason (they are left out, never keyed with a guess).
    static func unsupported(_ config: Configuration, certificates: CertificateStore) -> [String] {
        config.peers.filter { !$0.disabled }.compactMap { item in
            guard case .failure(let error) = signature(item, certificates) else { return nil }
            let address = Schema.format(item.value("address", in: Schema.peer), Schema.peer[0], showSensitive: false)
            return "peer \(address) left out: \(error)"
        }
    }

    /// For auth-method=rsa-signature: the certificate name and both certificates (DER).
    static func signature(_ item: Item, _ store: CertificateStore) -> Result<(String, [UInt8], [UInt8])?, CertificateStore.StoreError> {
        let s = Schema.peer
        guard item.value("auth-method", in: s).text == "rsa-signature" else { return .success(nil) }
        let local = item.value("certificate", in: s).text ?? "none", remote = item.value("remote-certificate", in: s).text ?? "none"
        guard local != "none", remote != "none" else { return .failure(.init("auth-method=rsa-signature needs certificate= and remote-certificate=")) }
        do {
            let mine = try store.certificate(local), theirs = try store.certificate(remote)
            return .success((local, mine.der, theirs.der))
        } catch {
            return .failure(.init("\(error)"))
        }
    }

    static func build(_ config: Configuration, datapath: DatapathConfig, generation: UInt64, certificates: CertificateStore) -> IKEConfig {
        let s = Schema.peer
        var peers: [IKEPeerRecord] = []
        for item in config.peers where !item.disabled {
            guard case .success(let signature) = signature(item, certificates) else { continue }
            guard case .address(let address) = item.value("address", in: s) else { continue }
            func text(_ n: String) -> String { item.value(n, in: s).text ?? "" }
            func flag(_ n: String) -> Bool { if case .boolean(let b) = item.value(n, in: s) { return b } else { return false } }
            let lifetime: UInt64 = { if case .duration(let d) = item.value("lifetime", in: s) { return d } else { return 86_400 } }()
            let lifebytes: UInt64 = { if case .integer(let i) = item.value("lifebytes", in: s) { return UInt64(max(0, i)) } else { return 0 } }()
            let dpd: UInt64 = { if case .duration(let d) = item.value("dpd-interval", in: s) { return d } else { return 120 } }()
            let failures: UInt8 = { if case .integer(let i) = item.value("dpd-maximum-failures", in: s) { return UInt8(clamping: i) } else { return 5 } }()
            var record = IKEPeerRecord(
                address: address.network.value, prefixLength: UInt8(address.prefixLength), port: address.port ?? 500,
                secret: Array(text("secret").utf8), exchangeMode: ["main": 0, "aggressive": 1, "base": 2][text("exchange-mode")] ?? 0,
                natTraversal: flag("nat-traversal"), generatePolicy: flag("generate-policy"), sendInitialContact: flag("send-initial-contact"),
                proposalCheck: text("proposal-check"), hash: text("hash-algorithm"), encryption: text("enc-algorithm"),
                dhGroup: UInt16(DHGroup(name: text("dh-group"))?.rawValue ?? 2), lifetime: lifetime, lifebytes: lifebytes)
            record.dpdInterval = dpd
            record.dpdMaximumFailures = failures
            if let (name, mine, theirs) = signature {
                record.certificateName = name; record.localCertificate = mine; record.remoteCertificate = theirs
            }
            peers.append(record)
        }
        let emptyPolicy = PolicyRecord(id: 0, source: 0, sourceLength: 0, sourcePort: 0, destination: 0, destinationLength: 0, destinationPort: 0,
                                       proto: 255, action: 2, level: 1, esp: true, ah: false, tunnel: false, saSource: 0, saDestination: 0,
                                       priority: 0, dontFragment: 0)
        func proposalRecord(_ proposal: Item, policy: PolicyRecord) -> IKEPolicyRecord {
            let p = Schema.proposal
            func list(_ n: String) -> [String] { if case .choices(let c) = proposal.value(n, in: p) { return c } else { return [] } }
            let lifetime: UInt64 = { if case .duration(let d) = proposal.value("lifetime", in: p) { return d } else { return 1_800 } }()
            let pfs = proposal.value("pfs-group", in: p).text ?? "none"
            return IKEPolicyRecord(policy: policy, authAlgorithms: list("auth-algorithms"), encAlgorithms: list("enc-algorithms"),
                                   lifetime: lifetime, pfsGroup: UInt16(DHGroup(name: pfs)?.rawValue ?? 0))
        }
        var policies: [IKEPolicyRecord] = []
        let keyed = Set(datapath.sas.map(\.policyID))
        for record in datapath.policies where record.action == 2 && !keyed.contains(record.id) {
            guard let item = config.policies.first(where: { UInt32($0.id) == record.id }),
                  let name = item.value("proposal", in: Schema.policy).text,
                  let proposal = config.proposals.first(where: { $0.name == name }) else { continue }
            policies.append(proposalRecord(proposal, policy: record))
        }
        // Generated policies (peer generate-policy=yes) negotiate with the default proposal.
        let fallback = IKEPolicyRecord(policy: emptyPolicy, authAlgorithms: ["sha1"], encAlgorithms: ["3des"], lifetime: 1_800, pfsGroup: 2)
        let defaultProposal = config.proposals.first(where: { $0.name == "default" }).map { proposalRecord($0, policy: emptyPolicy) } ?? fallback
        return IKEConfig(generation: generation, peers: peers, policies: policies, defaultProposal: defaultProposal)
    }
}
