import KeywayAudit
import KeywayCrypto
import KeywayIKE
import KeywayPrivsep
import KeywaySystem
import KeywayWire

/// keyway-ike: IKEv1 and IKEv2 on UDP 500 (and on 4500 through the datapath, which reads that
/// port), a thin loop around the sans-IO engines (`IKEService` routes to each).
final class IKEBehavior: ChildBehavior {
    var requiredDescriptors: Set<DescriptorKind> { [.udp500, .udp4500] }
    private var udp500: Descriptor?
    private var udp4500: Descriptor?
    private let engine = IKEService()
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
            perform(engine.receive(Array(buffer.prefix(n)), from: Endpoint(address: address, port: port),
                                   localPort: 500, localAddress: local, now: now), runtime)
        }
    }

    func handle(_ envelope: Envelope, from peer: Role, runtime: ChildRuntime) {
        switch envelope.message {
        case .ikeConfig(let config) where peer == .monitor:
            generation = config.generation
            let configuration = IKEConfiguration(config) { runtime.audit.event(.warning, msgID: "ike-config", $0) }
            perform(engine.configure(configuration, now: now), runtime)
        case .hostAddresses(let addresses) where peer == .parent:
            engine.setOwnAddresses(addresses.ipv4)
        case .acquire(let a) where peer == .datapath:
            perform(engine.acquire(policyID: Int(a.policyID), now: now), runtime)
        case .signReply(let reply) where peer == .monitor:
            perform(engine.signed(id: reply.id, signature: reply.signature.isEmpty ? nil : reply.signature, now: now),
                    runtime)
        case .ikev2SignReply(let reply) where peer == .monitor:
            perform(engine.signedIKEv2(id: reply.id, scheme: reply.scheme, signature: reply.signature, now: now),
                    runtime)
        case .ikeDatagram(let d) where peer == .datapath:
            received += 1
            perform(engine.receive(d.payload, from: Endpoint(address: d.source.value, port: d.sourcePort),
                                   localPort: IKEEngine.natTPort, localAddress: d.destination.value, now: now), runtime)
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
            IKEState.Peer(local: $0.local, remote: $0.remote.address, remotePort: $0.remote.port, state: $0.state,
                          side: $0.side,
                          establishedSeconds: $0.establishedSeconds, natTraversal: $0.natTraversal,
                          version: UInt8(clamping: $0.version))
        }
        let established = engine.establishedPolicyIDs.map { UInt32($0) }
        let generated = engine.generatedPolicies.values.sorted { $0.id < $1.id }.map(\.record)
        try? runtime.links[.monitor]?.send(.ikeState(IKEState(peers: peers, establishedPolicies: established,
                                                              generatedPolicies: generated)))
    }

    private func perform(_ actions: [IKEAction], _ runtime: ChildRuntime) {
        for action in actions {
            switch action {
            case .send(let bytes, let port, let to, let source):
                // From the address the peer used: a multihomed responder must not answer from another.
                let socket = port == IKEEngine.natTPort ? udp4500 : udp500
                if let socket, Sockets.sendUDP(socket, bytes, source: source, to: to.address, port: to.port) {
                    sentCount += 1
                }
            case .install(let sas):
                installedPairs += 1
                try? runtime.links[.datapath]?.send(.saInstall(SAInstall(sas)))
            case .announceSigning(let exchange, let certificate):
                try? runtime.links[.monitor]?.send(.signAnnounce(SignAnnounce(exchange: exchange,
                                                                              certificate: certificate)))
            case .sign(let id, let certificate, let data, let exchange):
                let request = SignRequest(id: id, exchange: exchange, certificate: certificate, data: data)
                if (try? runtime.links[.monitor]?.send(.signRequest(request))) == nil {
                    perform(engine.signed(id: id, signature: nil, now: now), runtime)
                }
            case .signIKEv2(let request):
                if (try? runtime.links[.monitor]?.send(.ikev2SignRequest(request))) == nil {
                    perform(engine.signedIKEv2(id: request.id, scheme: nil, signature: [], now: now), runtime)
                }
            case .remove(let entries):
                try? runtime.links[.datapath]?.send(.saRemove(SARemove(entries)))
            case .audit(let note):
                // Fixed keys only (the engine's, never text a peer shaped): the limiter's buckets stay few.
                runtime.audit.note(note)
            }
        }
    }

    /// How unverified first messages are being handled (evictions and refusals show a flood).
    private var responderCounters: [Counter] {
        let load = engine.responderLoad
        return [Counter(name: "responder-unverified", value: UInt64(load.unverified)),
                Counter(name: "responder-verified-half-open", value: UInt64(load.verifiedHalfOpen)),
                Counter(name: "responder-evicted", value: load.evicted),
                Counter(name: "responder-refused-busy", value: load.refusedBusy),
                Counter(name: "responder-dh-refused", value: load.diffieHellmanRefused),
                Counter(name: "responder-cookies-sent", value: load.cookiesSent)]
    }

    func counters() -> [Counter] {
        [Counter(name: "config-generation", value: generation), Counter(name: "datagrams-received", value: received),
         Counter(name: "datagrams-sent", value: sentCount), Counter(name: "sa-pairs-installed", value: installedPairs)]
            + responderCounters
    }
}

ChildRuntime.run(role: .ike, behavior: IKEBehavior())
