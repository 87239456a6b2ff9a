import KeywayConfig
import KeywayVocabulary
import KeywayWire

/// Certificates by name, as DER: how the monitor's certificate store answers IKEPush (a name the
/// store does not hold throws, with a message for the operator).
public typealias CertificateLookup = (String) throws -> [UInt8]

/// What keyway-ike must know of the configuration: the peers (with their secrets) and the
/// active encrypt policies without a manual-sa, each with its proposal.
public enum IKEPush {
    /// Peers keyway-ike cannot serve, with the reason (they are left out, never keyed with a guess).
    public static func unsupported(_ config: Configuration, certificates: CertificateLookup) -> [String] {
        config.peers.filter { !$0.disabled }.compactMap { item in
            let address = Schema.format(item.value("address", in: Schema.peer), Schema.peer[0], showSensitive: false)
            if let reason = config.peerUnusableReason(item) { return "peer \(address) left out: \(reason)" }
            guard case .failure(let error) = signature(item, certificates) else { return nil }
            return "peer \(address) left out: \(error.reason)"
        }
    }

    /// For auth-method=rsa-signature: the certificate name and both certificates (DER).
    static func signature(_ item: Item,
                          _ certificates: CertificateLookup) -> Result<(String, [UInt8], [UInt8])?, PushError> {
        let s = Schema.peer
        guard item.value("auth-method", in: s).text == "rsa-signature" else { return .success(nil) }
        let local = item.value("certificate", in: s).text ?? "none",
            remote = item.value("remote-certificate", in: s).text ?? "none"
        guard local != "none", remote != "none" else {
            return .failure(PushError("auth-method=rsa-signature needs certificate= and remote-certificate="))
        }
        do {
            return .success((local, try certificates(local), try certificates(remote)))
        } catch {
            return .failure(PushError("\(error)"))
        }
    }

    public struct PushError: Error {
        public let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    public static func build(_ config: Configuration, datapath: DatapathConfig, generation: UInt64,
                             certificates: CertificateLookup) -> IKEConfig {
        let s = Schema.peer
        var peers: [IKEPeerRecord] = []
        for item in config.peers where !item.disabled && config.peerUnusableReason(item) == nil {
            guard case .success(let signature) = signature(item, certificates) else { continue }
            guard case .address(let address) = item.value("address", in: s) else { continue }
            func text(_ n: String) -> String { item.value(n, in: s).text ?? "" }
            func seconds(_ n: String, _ fallback: UInt64) -> UInt64 {
                if case .duration(let d) = item.value(n, in: s) { return d } else { return fallback }
            }
            let lifebytes: UInt64 = {
                if case .integer(let i) = item.value("lifebytes", in: s) { return UInt64(max(0, i)) } else { return 0 }
            }()
            let failures: UInt8 = {
                if case .integer(let i) = item.value("dpd-maximum-failures", in: s) {
                    return UInt8(clamping: i)
                } else {
                    return 5
                }
            }()
            var record = IKEPeerRecord(
                address: IPv4Prefix(address.address, length: address.prefixLength), port: address.port ?? 500,
                secret: Array(text("secret").utf8),
                exchangeMode: ExchangeMode(rawValue: text("exchange-mode")) ?? .main,
                natTraversal: DatapathPush.flag(item, "nat-traversal"),
                generatePolicy: DatapathPush.flag(item, "generate-policy"),
                sendInitialContact: DatapathPush.flag(item, "send-initial-contact"),
                proposalCheck: ProposalCheck(rawValue: text("proposal-check")) ?? .strict,
                hash: HashAlgorithm(rawValue: text("hash-algorithm")) ?? .md5,
                encryption: EncryptionAlgorithm(rawValue: text("enc-algorithm")) ?? .tripleDES,
                dhGroup: .modp1024,
                lifetime: seconds("lifetime", 86_400), lifebytes: lifebytes)
            if case .choices(let names) = item.value("dh-group", in: s) {
                let groups = names.compactMap(DHGroup.init(name:))
                if !groups.isEmpty { record.dhGroups = groups }
            }
            record.myID = text("my-id").isEmpty ? "auto" : text("my-id")
            record.remoteID = text("remote-id").isEmpty ? "auto" : text("remote-id")
            record.dpdInterval = seconds("dpd-interval", 120)
            record.dpdMaximumFailures = failures
            record.forceUDPEncapsulation = DatapathPush.flag(item, "force-udp-encapsulation")
            if let (name, mine, theirs) = signature {
                record.certificateName = name; record.localCertificate = mine; record.remoteCertificate = theirs
            }
            peers.append(record)
        }
        func proposalRecord(_ proposal: Item, policy: PolicyRecord) -> IKEPolicyRecord {
            let lifetime: UInt64 = {
                if case .duration(let d) = proposal.value("lifetime", in: Schema.proposal) {
                    return d
                } else {
                    return 1_800
                }
            }()
            let pfs = proposal.value("pfs-group", in: Schema.proposal).text ?? "none"
            return IKEPolicyRecord(policy: policy, authAlgorithms: DatapathPush.integrity(proposal),
                                   encAlgorithms: DatapathPush.encryption(proposal),
                                   lifetime: lifetime, pfsGroup: DHGroup(name: pfs))
        }
        var policies: [IKEPolicyRecord] = []
        let items = Dictionary(config.policies.map { (UInt32($0.id), $0) }, uniquingKeysWith: { a, _ in a })
        // Most policies share a few proposals: each proposal's record part is made once.
        var made: [String: IKEPolicyRecord] = [:]
        for allowed in datapath.bounds.policies where allowed.policy.action == .encrypt && !allowed.manual {
            guard let item = items[allowed.policy.id] else { continue }
            let name = item.value("proposal", in: Schema.policy).text ?? "default"
            var record: IKEPolicyRecord
            if let known = made[name] {
                record = known
            } else {
                guard let proposal = DatapathPush.proposal(named: name, config) else { continue }
                record = proposalRecord(proposal, policy: allowed.policy)
                made[name] = record
            }
            record.policy = allowed.policy
            policies.append(record)
        }
        // Generated policies (peer generate-policy=yes) negotiate with the default proposal.
        let empty = PolicyRecord(id: 0, selector: TrafficSelector(source: .all, destination: .all), tunnel: false,
                                 saSource: .any, saDestination: .any)
        let fallback = IKEPolicyRecord(policy: empty, authAlgorithms: [.sha1], encAlgorithms: [.tripleDES],
                                       lifetime: 1_800, pfsGroup: .modp1024)
        let defaultProposal = DatapathPush.proposal(named: "default", config)
            .map { proposalRecord($0, policy: empty) } ?? fallback
        return IKEConfig(generation: generation, peers: peers, policies: policies, defaultProposal: defaultProposal)
    }
}
