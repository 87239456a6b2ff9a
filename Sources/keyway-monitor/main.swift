import Glibc
import KeywayConfig
import KeywayCrypto
import KeywayMonitor
import KeywayPrivsep
import KeywaySystem
import KeywayTrust
import KeywayVocabulary
import KeywayWire

/// keyway-monitor: control socket, configuration store (issue 3), status of the process tree.
final class MonitorBehavior: ChildBehavior {
    var requiredDescriptors: Set<DescriptorKind> { [.control] }
    private var control: ControlServer?
    private let onBadStore: ConfigStore.BadStorePolicy
    private var loaded: ConfigStore?

    init(onBadStore: ConfigStore.BadStorePolicy) { self.onBadStore = onBadStore }

    func beforeSandbox() { CryptoProviders.preload() }

    /// The store is loaded before hello: an unusable one (and --on-bad-store=refuse) ends the
    /// monitor with a status keywayd recognises as "never started".
    func prepare(runtime: ChildRuntime) {
        let store = ConfigStore(audit: runtime.audit)
        // A store of 100,000 policies takes a debug build longer to load than keywayd's patience.
        store.keepAlive = { [weak runtime] in runtime?.keepAlive() }
        if let refusal = store.load(seed: runtime.granted[.configScript], onBadStore: onBadStore) {
            StandardStreams.error("keyway-monitor: \(refusal)")
            runtime.audit.event(.critical, msgID: "config-load", "refusing to start: \(refusal)")
            exit(Supervisor.storeRefusedStatus)
        }
        loaded = store
    }

    func start(runtime: ChildRuntime) {
        guard let store = loaded else { return }
        store.keepAlive = { [weak runtime] in runtime?.keepAlive() }
        store.onChange = { [weak self, weak store] in
            guard let store else { return }
            self?.pushAll(store, runtime)
        }
        store.live.requestFlush = { proto in
            guard let link = runtime.links[.datapath] else { return false }
            return (try? link.send(.flushSAs(FlushSAs(proto: proto)))) != nil
        }
        pushAll(store, runtime)
        if let listener = runtime.granted[.control] {
            control = ControlServer(listener: listener)
            control?.store = store
        }
    }

    func pollInterests() -> [(fd: Int32, events: PollEvents)] { control?.pollInterests() ?? [] }

    func handleReady(fd: Int32, events: PollEvents, runtime: ChildRuntime) {
        control?.handleReady(fd: fd, now: MonotonicClock.now(), runtime: runtime) { status(runtime) }
    }

    func tick(runtime: ChildRuntime) {
        control?.closeIdle(now: MonotonicClock.now(), runtime: runtime)
    }

    func peerReady(_ peer: Role, runtime: ChildRuntime) {
        guard let store = control?.store else { return }
        if peer == .datapath { pushToDatapath(store, runtime) }
        if peer == .ike { pushToIKE(store, runtime) }
    }

    /// What the datapath is told of the current configuration (what may exist included), built
    /// once per generation: keywayd, the datapath and keyway-ike are all told from it.
    private var built: DatapathConfig?

    private func datapathConfig(_ store: ConfigStore) -> DatapathConfig {
        if let built, built.generation == store.generation { return built }
        let made = DatapathPush.build(store.config, generation: store.generation)
        built = made
        return made
    }

    /// keywayd first (it derives routes and the incoming check from what may exist), then the others.
    func pushAll(_ store: ConfigStore, _ runtime: ChildRuntime) {
        let authority = PolicyAuthority(generation: store.generation, bounds: datapathConfig(store).bounds)
        runtime.keepAlive()
        do { try runtime.parent.send(.policyAuthority(authority)) } catch {
            runtime.audit.event(.error, msgID: "push", "could not tell keywayd what the configuration allows: \(error)")
        }
        runtime.keepAlive()
        pushToDatapath(store, runtime)
        runtime.keepAlive()
        pushToIKE(store, runtime)
    }

    private func lookUpCertificate(_ name: String) throws -> [UInt8] { try certificates.certificate(name).der }

    /// Peers (with secrets) and the policies IKE keys, to keyway-ike; it replaces what it had.
    func pushToIKE(_ store: ConfigStore, _ runtime: ChildRuntime) {
        guard let link = runtime.links[.ike] else { return }
        let message = IKEPush.build(store.config, datapath: datapathConfig(store), generation: store.generation,
                                    certificates: lookUpCertificate)
        for reason in IKEPush.unsupported(store.config, certificates: lookUpCertificate) {
            runtime.audit.event(.warning, msgID: "ike-config", reason)
        }
        runtime.keepAlive()
        do { try link.send(.ikeConfig(message)) } catch {
            runtime.audit.event(.error, msgID: "push", "could not push the configuration to keyway-ike: \(error)")
        }
    }

    /// Policies and manual SAs (keys included) to keyway-datapath; it replaces what it had.
    func pushToDatapath(_ store: ConfigStore, _ runtime: ChildRuntime) {
        guard let link = runtime.links[.datapath] else { return }
        let message = sequences.continuing(datapathConfig(store))
        store.live.keys = Dictionary(message.sas.map {
            (LiveRuntime.keyOf(spi: $0.spi, proto: $0.proto.rawValue, destination: $0.destination.value),
             ($0.encryptionKey, $0.integrityKey))
        }, uniquingKeysWith: { a, _ in a })
        runtime.keepAlive()
        do { try link.send(.datapathConfig(message)) } catch {
            runtime.audit.event(.error, msgID: "push", "could not push the configuration to keyway-datapath: \(error)")
        }
    }

    func handle(_ envelope: Envelope, from peer: Role, runtime: ChildRuntime) {
        switch envelope.message {
        case .reloadConfig:
            reloads += 1
            runtime.audit.event(.notice, msgID: "reload", "configuration reload requested",
                                [("reloads", String(reloads))])
            control?.store?.reload()
        case .accessPolicy(let policy):
            control?.access = policy
        case .datapathState(let state) where peer == .datapath:
            control?.store?.live.state = state
            sequences.record(state)
        case .ikeState(let state) where peer == .ike:
            control?.store?.live.ike = state
        case .signAnnounce(let announcement) where peer == .ike:
            guard let config = control?.store?.config else { return }
            do {
                try signing.announce(announcement, signers: SignGate.signers(config),
                                     now: MonotonicClock.now() / 1_000_000)
            } catch {
                refuseIKE("signing announcement", error, runtime)
            }
        case .signRequest(let request) where peer == .ike:
            sign(request, runtime)
        case .ikev2SignRequest(let request) where peer == .ike:
            sign(request, runtime)
        case .refusalReport(let report) where peer == .parent:
            refusedByParent = report.refused
        case .auditRecords(let batch) where peer == .parent:
            guard let store = control?.store ?? loaded else { return }
            let added = store.live.events.append(batch.records, masker: masker(store))
            control?.publish(added)
        case .counterReply(let reply) where peer == .datapath:
            control?.datapathCounters(reply, requestID: envelope.requestID, runtime: runtime)
        default:
            break
        }
    }

    /// The configuration's secrets prepared for /log's masking, once per generation.
    private var maskerCache: (generation: UInt64, masker: EventLog.Masker)?

    private func masker(_ store: ConfigStore) -> EventLog.Masker {
        if let c = maskerCache, c.generation == store.generation { return c.masker }
        let made = EventLog.Masker(EventLog.secrets(of: store.config))
        maskerCache = (store.generation, made)
        return made
    }

    private var reloads: UInt64 = 0
    private let certificates = CertificateStore()
    private var sequences = SequenceMemory()
    private var signing = SignGate()
    /// Requests keyway-ike sent this process that it refused; and what keywayd reported refusing.
    private var refusedFromIKE: UInt64 = 0
    private var refusedByParent: [Role: UInt64] = [:]

    /// Signs only what the gate allows; the key never leaves this process. An empty reply says no.
    private func sign(_ request: SignRequest, _ runtime: ChildRuntime) {
        var signature: [UInt8]?
        do {
            try signing.authorize(request, now: MonotonicClock.now() / 1_000_000)
            signature = certificates.sign(request.data, certificate: request.certificate)
            if signature == nil {
                runtime.audit.event(.error, msgID: "ike-sign", "could not sign for keyway-ike: no usable key",
                                    [("certificate", request.certificate)])
            } else {
                runtime.audit.event(.informational, msgID: "ike-signed", "signed a phase 1 hash for keyway-ike",
                                    [("certificate", request.certificate), ("peer", request.exchange.peer.description)])
            }
        } catch {
            refuseIKE("signing request", error, runtime)
        }
        try? runtime.links[.ike]?.send(.signReply(SignReply(id: request.id, signature: signature ?? [])))
    }

    /// IKEv2: the gate joins the checked parts into the octets; the key's scheme is chosen here,
    /// never by keyway-ike. No scheme and no signature in the reply say no.
    private func sign(_ request: IKEv2SignRequest, _ runtime: ChildRuntime) {
        var reply = IKEv2SignReply(id: request.id, scheme: nil, signature: [])
        do {
            let octets = try signing.authorize(request, now: MonotonicClock.now() / 1_000_000)
            if let (scheme, signature) = certificates.signIKEv2(octets, certificate: request.certificate,
                                                                method: request.method,
                                                                peerHashes: request.peerHashes) {
                reply = IKEv2SignReply(id: request.id, scheme: scheme, signature: signature)
                runtime.audit.event(.informational, msgID: "ike-signed", "signed IKE_AUTH octets for keyway-ike",
                                    [("certificate", request.certificate), ("peer", request.exchange.peer.description),
                                     ("scheme", scheme.rawValue)])
            } else {
                runtime.audit.event(.error, msgID: "ike-sign",
                                    "could not sign for keyway-ike: no usable key, or none fits the auth method",
                                    [("certificate", request.certificate), ("method", String(request.method))])
            }
        } catch {
            refuseIKE("IKEv2 signing request", error, runtime)
        }
        try? runtime.links[.ike]?.send(.ikev2SignReply(reply))
    }

    private func refuseIKE(_ what: String, _ refusal: Refusal, _ runtime: ChildRuntime) {
        refusedFromIKE += 1
        runtime.audit.rateLimitedEvent(key: "refused-ike", .warning, msgID: "refused",
                                       "\(what) from keyway-ike refused: \(refusal.reason)",
                                       [("from", Role.ike.description), ("reason", refusal.reason)])
    }

    /// Everything the others refused from `role`: keywayd's report, the datapath's, this process's own.
    private func refused(_ role: Role, _ runtime: ChildRuntime) -> UInt64 {
        var n = (refusedByParent[role] ?? 0).saturatingAdd(runtime.wire.rejectedBySender[role] ?? 0)
        if role == .ike {
            n = n.saturatingAdd(refusedFromIKE).saturatingAdd(control?.store?.live.state.refusedFromIKE ?? 0)
        }
        return n
    }

    func counters() -> [Counter] {
        [Counter(name: "control-clients", value: UInt64(control?.clients.count ?? 0)),
         Counter(name: "control-refused", value: control?.refusedConnections ?? 0),
         Counter(name: "control-idle-closed", value: control?.idleClosed ?? 0)]
    }

    /// Every process of the tree: the parent and peers as their hellos said, this one from itself.
    func status(_ runtime: ChildRuntime) -> StatusReply {
        let now = MonotonicClock.now()
        func uptime(_ start: UInt64) -> UInt64 { now > start ? (now - start) / 1_000_000 : 0 }
        var list: [ProcessStatus] = []
        if let p = runtime.parentHello {
            list.append(ProcessStatus(role: .parent, pid: p.pid, uptimeMilliseconds: uptime(p.startedAt), restarts: 0,
                                      sandboxed: false, connected: true))
        }
        for role in Role.children {
            if role == runtime.role {
                list.append(ProcessStatus(role: role, pid: UInt32(Processes.currentPID),
                                          uptimeMilliseconds: uptime(runtime.startedAt),
                                          restarts: runtime.peerRestarts[role] ?? 0,
                                          sandboxed: runtime.sandboxIdentity != nil, connected: true,
                                          refused: refused(role, runtime)))
                continue
            }
            let link = runtime.links[role]
            let hello = link?.hello
            list.append(ProcessStatus(role: role, pid: hello?.pid ?? 0,
                                      uptimeMilliseconds: hello.map { uptime($0.startedAt) } ?? 0,
                                      restarts: runtime.peerRestarts[role] ?? 0, sandboxed: hello?.sandboxed ?? false,
                                      connected: link != nil && hello != nil, refused: refused(role, runtime)))
        }
        return StatusReply(processes: list, offloads: control?.store?.live.state.offloads ?? [])
    }
}

switch ConfigStore.BadStorePolicy.parse(arguments: Array(CommandLine.arguments.dropFirst())) {
case .success(let policy):
    ChildRuntime.run(role: .monitor, behavior: MonitorBehavior(onBadStore: policy))
case .failure(let error):
    StandardStreams.error("keyway-monitor: \(error)")
    exit(2)
}
