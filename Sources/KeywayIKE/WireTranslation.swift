import KeywayCrypto
import KeywayVocabulary
import KeywayWire

/// The wire's messages in the engine's terms and back: what keyway-ike's loop hands over.

extension IKEConfiguration {
    /// The monitor's configuration; a peer that cannot be used is reported (`report`), never guessed.
    public init(_ c: IKEConfig, report: (String) -> Void) {
        var peers: [IKEPeer] = []
        for p in c.peers {
            var peer = IKEPeer(address: p.address.address.value, prefixLength: p.address.length, port: p.port,
                               secret: Secret(p.secret), exchangeMode: p.exchangeMode, natTraversal: p.natTraversal,
                               generatePolicy: p.generatePolicy, sendInitialContact: p.sendInitialContact,
                               proposalCheck: p.proposalCheck, hash: p.hash, encryption: p.encryption, group: p.dhGroup,
                               lifetime: Seconds(p.lifetime), lifebytes: p.lifebytes)
            peer.groups = p.dhGroups.isEmpty ? [p.dhGroup] : p.dhGroups
            guard let myID = IKEIdentity(p.myID), let remoteID = IKEIdentity(p.remoteID) else {
                report("peer \(p.address) skipped: its my-id or remote-id does not parse")
                continue
            }
            peer.myID = myID
            peer.remoteID = remoteID
            peer.dpdInterval = Seconds(p.dpdInterval)
            peer.dpdMaximumFailures = Int(p.dpdMaximumFailures)
            peer.forceUDPEncapsulation = p.forceUDPEncapsulation
            if !p.certificateName.isEmpty {
                guard let remote = try? Certificate(pemOrDER: p.remoteCertificate) else {
                    report("peer \(p.address) skipped: its remote-certificate does not parse")
                    continue
                }
                peer.signature = SignatureAuthentication(certificateName: p.certificateName,
                                                         localCertificate: p.localCertificate,
                                                         remoteCertificate: remote)
            }
            peers.append(peer)
        }
        let d = c.defaultProposal
        let template = ProposalTemplate(authAlgorithms: d.authAlgorithms, encAlgorithms: d.encAlgorithms,
                                        lifetime: Seconds(d.lifetime), pfsGroup: d.pfsGroup)
        self.init(peers: peers, policies: c.policies.map(IKEPolicy.init), defaultProposal: template)
    }
}

extension IKEPolicy {
    public init(_ r: IKEPolicyRecord) {
        let p = r.policy, s = p.selector
        self.init(id: Int(p.id), source: s.source.address.value, sourceLength: s.source.length,
                  sourcePort: s.sourcePort ?? 0, destination: s.destination.address.value,
                  destinationLength: s.destination.length, destinationPort: s.destinationPort ?? 0,
                  proto: s.proto, saSource: p.saSource.value, saDestination: p.saDestination.value, tunnel: p.tunnel,
                  esp: p.esp, ah: p.ah, authAlgorithms: r.authAlgorithms, encAlgorithms: r.encAlgorithms,
                  lifetime: Seconds(r.lifetime), pfsGroup: r.pfsGroup)
    }

    /// A generated policy as the datapath and the monitor know policies: below every configured one.
    public var record: PolicyRecord {
        PolicyRecord(id: UInt32(id),
                     selector: TrafficSelector(source: IPv4Prefix(source, length: sourceLength),
                                               destination: IPv4Prefix(destination, length: destinationLength),
                                               sourcePort: sourcePort == 0 ? nil : sourcePort,
                                               destinationPort: destinationPort == 0 ? nil : destinationPort,
                                               proto: proto),
                     action: .encrypt, level: .require, esp: esp, ah: ah, tunnel: tunnel,
                     saSource: IPv4Address(saSource), saDestination: IPv4Address(saDestination), priority: Int32.min)
    }
}

extension SAInstall {
    /// One negotiated SA pair (or bundle) for the datapath, keys included, with the policy
    /// generate-policy made for it, if any.
    public init(_ sas: [NegotiatedSA]) {
        let records = sas.map { sa in
            var r = SARecord(policyID: UInt32(sa.policyID), inbound: sa.inbound,
                             proto: IPsecProtocol(rawValue: sa.proto) ?? .esp, spi: sa.spi,
                             source: IPv4Address(sa.source), destination: IPv4Address(sa.destination),
                             tunnel: sa.tunnel, encryption: sa.encryption, integrity: sa.integrity,
                             encryptionKey: sa.encryptionKey.withUnsafeBytes { Array($0) },
                             integrityKey: sa.integrityKey.withUnsafeBytes { Array($0) },
                             lifetimeSeconds: sa.lifetime.value)
            r.hardBytes = sa.lifetimeBytes
            r.udpLocalPort = sa.udpLocalPort ?? 0
            r.udpRemotePort = sa.udpRemotePort ?? 0
            r.negotiated = true
            r.pfs = sa.pfs
            return r
        }
        self.init(sas: records, generatedPolicies: sas.first?.generatedPolicy.map { [$0.record] } ?? [])
    }
}

extension SARemove {
    public init(_ entries: [(spi: UInt32, proto: UInt8, destination: UInt32)]) {
        self.init(entries: entries.compactMap { e in
            IPsecProtocol(rawValue: e.proto).map {
                Entry(spi: e.spi, proto: $0, destination: IPv4Address(e.destination))
            }
        })
    }
}
