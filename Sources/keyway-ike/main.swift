import KeywayAudit
import KeywayCrypto
import KeywayIKE
import KeywayPrivsep
import KeywaySystem
import KeywayWire

/// keyway-ike: ISAKMP on UDP 500 (and on 4500 through the datapath, which reads that port),
/// a thin loop around the sans-IO `IKEEngine`.
final class IKEBehavior: ChildBehavior {
    var requiredDescriptors: Set<DescriptorKind> { [.udp500, .udp4500] }
    private var udp500: Descriptor?
    private var udp4500: Descriptor?
    private let engine = IKEEngine()
    private var buffer = [UInt8](repeating: 0, count: 65_536)
    private var generation: UInt64 = 0
    private var received: UInt64 = 0, sentCount: UInt64 = 0, installedPairs: UInt64 = 0

    func beforeSandbox() { CryptoProviders.preload() }

    func start(runtime: ChildRuntime) {
        udp500 = runtime.granted[.udp500]
        udp4500 = runtime.granted[.udp4500]
        try? udp500?.setNonBlocking()
    }

    private var now: UInt64 { MonotonicClock.now() / 1_000_000 }

    func pollInterests() -> [(fd: Int32, events: PollEvents)] { udp500.map { [(fd: $0.raw, events: .readable)] } ?? [] }

    func handleReady(fd: Int32, events: PollEvents, runtime: ChildRuntime) {
        guard let udp500, fd == udp500.raw else { return }
        for _ in 0..<64 {
            guard let (n, address, port, local) = Sockets.receiveUDP(udp500, into: &buffer), n > 0 else { return }
            received += 1
            perform(engine.receive(Array(buffer.prefix(n)), from: Endpoint(address: address, port: port), localPort: 500, localAddress: local, now: now), runtime)
        }
    }

    func handle(_ envelope: Envelope, from peer: Role, runtime: ChildRuntime) {
        switch envelope.message {
        case .ikeConfig(let config) where peer == .monitor:
            generation = config.generation
            perform(engine.configure(Self.configuration(config, audit: { runtime.audit.event(.warning, msgID: "ike-config", $0) }), now: now), runtime)
        case .acquire(let a) where peer == .datapath:
            perform(engine.acquire(policyID: Int(a.policyID), now: now), runtime)
        case .signReply(let reply) where peer == .monitor:
            perform(engine.signed(id: reply.id, signature: reply.signature.isEmpty ? nil : reply.signature, now: now), runtime)
        case .ikeDatagram(let d) where peer == .datapath:
            received += 1
            perform(engine.receive(d.payload, from: Endpoint(address: d.source, port: d.sourcePort), localPort: IKEEngine.natTPort,
                                   localAddress: d.destination, now: now), runtime)
        default:
            break
        }
    }

    func peerReady(_ peer: Role, runtime: ChildRuntime) {
        // A restarted datapath lost every negotiated SA: start again from the monitor's configuration.
        if peer == .datapath { perform(engine.datapathRestarted(now: now), runtime) }
    }

    private var lastReport: UInt64 = 0

    func tick(runtime: ChildRuntime) {
        let t = now
        perform(engine.tick(now: t), runtime)
        guard t / 1000 != lastReport else { return }
        lastReport = t / 1000
        let peers = engine.remotePeers(now: t).map {
            IKEState.Peer(local: $0.local, remote: $0.remote.address, remotePort: $0.remote.port, state: $0.state, side: $0.side,
                          establishedSeconds: $0.establishedSeconds, natTraversal: $0.natTraversal)
        }
        let all = engine.configuration.policies + engine.generatedPolicies.values.sorted { $0.id < $1.id }
        let established = all.filter { engine.phase2(policyID: $0.id) == .established }.map { UInt32($0.id) }
        let generated = engine.generatedPolicies.values.sorted { $0.id < $1.id }.map(Self.record)
        try? runtime.links[.monitor]?.send(.ikeState(IKEState(peers: peers, establishedPolicies: established, generatedPolicies: generated)))
    }

    private func perform(_ actions: [IKEAction], _ runtime: ChildRuntime) {
        for action in actions {
            switch action {
            case .send(let bytes, let port, let to):
                let socket = port == IKEEngine.natTPort ? udp4500 : udp500
                if let socket, Sockets.send(socket, bytes, to: to.address, port: to.port) { sentCount += 1 }
            case .install(let sas):
                installedPairs += 1
                let records = sas.map { sa in
                    var r = SARecord(policyID: UInt32(sa.policyID), inbound: sa.inbound, proto: sa.proto, spi: sa.spi, source: sa.source,
                                     destination: sa.destination, tunnel: sa.tunnel, encryption: sa.encryption.rawValue, integrity: sa.integrity.rawValue,
                                     encryptionKey: sa.encryptionKey.withUnsafeBytes { Array($0) }, integrityKey: sa.integrityKey.withUnsafeBytes { Array($0) },
                                     lifetimeSeconds: sa.lifetime.value)
                    r.hardBytes = sa.lifetimeBytes
                    r.udpLocalPort = sa.udpLocalPort ?? 0
                    r.udpRemotePort = sa.udpRemotePort ?? 0
                    r.negotiated = true
                    r.pfs = sa.pfs
                    return r
                }
                let generated = sas.first?.generatedPolicy.map { [Self.record($0)] } ?? []
                try? runtime.links[.datapath]?.send(.saInstall(SAInstall(sas: records, generatedPolicies: generated)))
            case .announceSigning:
                break  // lead: announce
            case .sign(let id, let certificate, let data, _):
                if (try? runtime.links[.monitor]?.send(.signRequest(SignRequest(id: id, certificate: certificate, data: data)))) == nil {
                    perform(engine.signed(id: id, signature: nil, now: now), runtime)
                }
            case .remove(let entries):
                try? runtime.links[.datapath]?.send(.saRemove(SARemove(entries: entries.map { SARemove.Entry(spi: $0.spi, proto: $0.proto, destination: $0.destination) })))
            case .audit(let note):
                let severity: Severity
                switch note.level {
                case .informational: severity = .informational
                case .notice: severity = .notice
                case .warning: severity = .warning
                case .error: severity = .error
                }
                let fields = note.fields.map { ($0.name, $0.value) }
                // Fixed keys only (the engine's, never text a peer shaped): the limiter's buckets stay few.
                if let key = note.rateLimitKey {
                    runtime.audit.rateLimitedEvent(key: key, severity, msgID: note.msgID, note.text, fields)
                } else {
                    runtime.audit.event(severity, msgID: note.msgID, note.text, fields)
                }
            }
        }
    }

    /// A generated policy as the datapath and the monitor know policies.
    static func record(_ p: IKEPolicy) -> PolicyRecord {
        PolicyRecord(id: UInt32(p.id), source: p.source, sourceLength: UInt8(p.sourceLength), sourcePort: p.sourcePort,
                     destination: p.destination, destinationLength: UInt8(p.destinationLength), destinationPort: p.destinationPort,
                     proto: p.proto ?? 255, action: 2, level: 1, esp: p.esp, ah: p.ah, tunnel: p.tunnel, saSource: p.saSource,
                     saDestination: p.saDestination, priority: 0, dontFragment: 0)
    }

    /// The wire's configuration in the engine's terms; what cannot be used is reported, not guessed.
    static func configuration(_ c: IKEConfig, audit: (String) -> Void) -> IKEConfiguration {
        var peers: [IKEPeer] = []
        for p in c.peers {
            guard let hash = HashAlgorithm(rawValue: p.hash), let enc = EncryptionAlgorithm(rawValue: p.encryption),
                  let group = DHGroup(rawValue: Int(p.dhGroup)), let check = IKEPeer.ProposalCheck(rawValue: p.proposalCheck) else {
                audit("peer \(IPv4Address.text(p.address)) skipped: unknown algorithm"); continue
            }
            var peer = IKEPeer(address: p.address, prefixLength: Int(p.prefixLength), port: p.port, secret: Secret(p.secret),
                               exchangeMode: [.main, .aggressive, .base][Int(min(p.exchangeMode, 2))], natTraversal: p.natTraversal,
                               generatePolicy: p.generatePolicy, sendInitialContact: p.sendInitialContact, proposalCheck: check,
                               hash: hash, encryption: enc, group: group, lifetime: Seconds(p.lifetime), lifebytes: p.lifebytes)
            peer.dpdInterval = Seconds(p.dpdInterval)
            peer.dpdMaximumFailures = Int(p.dpdMaximumFailures)
            if !p.certificateName.isEmpty {
                guard let remote = try? Certificate(pemOrDER: p.remoteCertificate) else {
                    audit("peer \(IPv4Address.text(p.address)) skipped: its remote-certificate does not parse"); continue
                }
                peer.signature = SignatureAuthentication(certificateName: p.certificateName, localCertificate: p.localCertificate, remoteCertificate: remote)
            }
            peers.append(peer)
        }
        var policies: [IKEPolicy] = []
        let d = c.defaultProposal
        let template = ProposalTemplate(authAlgorithms: d.authAlgorithms.compactMap(IntegrityAlgorithm.init(rawValue:)),
                                        encAlgorithms: d.encAlgorithms.compactMap(EncryptionAlgorithm.init(rawValue:)), lifetime: Seconds(d.lifetime),
                                        pfsGroup: d.pfsGroup == 0 ? nil : DHGroup(rawValue: Int(d.pfsGroup)))
        for r in c.policies {
            let p = r.policy
            let auth = r.authAlgorithms.compactMap(IntegrityAlgorithm.init(rawValue:))
            let enc = r.encAlgorithms.compactMap(EncryptionAlgorithm.init(rawValue:))
            policies.append(IKEPolicy(id: Int(p.id), source: p.source, sourceLength: Int(p.sourceLength), sourcePort: p.sourcePort,
                                      destination: p.destination, destinationLength: Int(p.destinationLength), destinationPort: p.destinationPort,
                                      proto: p.proto == 255 ? nil : p.proto, saSource: p.saSource, saDestination: p.saDestination, tunnel: p.tunnel,
                                      esp: p.esp, ah: p.ah, authAlgorithms: auth, encAlgorithms: enc, lifetime: Seconds(r.lifetime),
                                      pfsGroup: r.pfsGroup == 0 ? nil : DHGroup(rawValue: Int(r.pfsGroup))))
        }
        return IKEConfiguration(peers: peers, policies: policies, defaultProposal: template)
    }

    func counters() -> [Counter] {
        [Counter(name: "config-generation", value: generation), Counter(name: "datagrams-received", value: received),
         Counter(name: "datagrams-sent", value: sentCount), Counter(name: "sa-pairs-installed", value: installedPairs)]
    }
}

ChildRuntime.run(role: .ike, behavior: IKEBehavior())
