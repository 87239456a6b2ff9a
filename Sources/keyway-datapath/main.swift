import KeywayVocabulary
import KeywayCrypto
import KeywayDatapath
import KeywayPrivsep
import KeywaySystem
import KeywayWire

/// keyway-datapath: plaintext from the TUN device out as ESP/AH on raw sockets, and back.
final class DatapathBehavior: ChildBehavior {
    var requiredDescriptors: Set<DescriptorKind> { [.tun, .rawESP, .rawAH, .udp4500] }
    private var tun: Descriptor?
    private var rawESP: Descriptor?
    private var rawAH: Descriptor?
    private var held: Descriptor?
    private let engine = Datapath(policies: [])
    /// SAs by the record that made them: an unchanged record keeps its SA (and its sequence numbers).
    private var installed: [SARecord: SecurityAssociation] = [:]
    /// Flushed by the operator: not re-installed while the configuration keeps offering the same record.
    private var flushed: Set<SARecord> = []
    private var generation: UInt64 = 0
    private var buffer = [UInt8](repeating: 0, count: 65536)
    /// recvmmsg/sendmmsg slots, allocated once.
    private let inBatch = PacketBatch(capacity: 64)
    private let espOut = PacketBatch(capacity: 64)
    private let ahOut = PacketBatch(capacity: 16)
    private var sendFailures: UInt64 = 0
    /// Packets per descriptor per wake-up: the links to the other processes are never starved.
    static let batch = 64

    func beforeSandbox() { CryptoProviders.preload() }

    func start(runtime: ChildRuntime) {
        tun = runtime.granted[.tun]
        rawESP = runtime.granted[.rawESP]
        rawAH = runtime.granted[.rawAH]
        held = runtime.granted[.udp4500]
        for fd in [tun, rawESP, rawAH, held].compactMap({ $0 }) { try? fd.setNonBlocking() }
    }

    func pollInterests() -> [(fd: Int32, events: PollEvents)] {
        [tun, rawESP, rawAH, held].compactMap { $0.map { (fd: $0.raw, events: .readable) } }
    }

    private var now: UInt64 { MonotonicClock.now() / 1_000_000_000 }

    func handleReady(fd: Int32, events: PollEvents, runtime: ChildRuntime) {
        if fd == tun?.raw { outbound(runtime) } else if fd == rawESP?.raw || fd == rawAH?.raw { inbound(fd, runtime) } else if fd == held?.raw { udpInbound(runtime) }
    }

    private func outbound(_ runtime: ChildRuntime) {
        guard let tun else { return }
        defer { flushSends() }
        for _ in 0..<Self.batch {
            guard let n = tun.read(into: &buffer), n > 0 else { return }
            switch engine.processOutbound(Array(buffer.prefix(n)), now: now) {
            case .send(let outer, let destination):
                let queue = outer[9] == 51 ? ahOut : espOut
                if !queue.append(outer, to: destination) {
                    flushSends()
                    if !queue.append(outer, to: destination) { sendFailures += 1 }
                }
            case .sendUDP(let packet, let offset, let destination, let port):
                if let held, !Sockets.send(held, packet, from: offset, to: destination, port: port) { sendFailures += 1 }
            case .pass, .drop:
                // Plaintext routed into the TUN device is never sent on unprotected.
                break
            case .acquire(let policyID):
                acquire(policyID, runtime)
            }
        }
    }

    private var lastAcquire: [Int: UInt64] = [:]

    /// Asks keyway-ike for SAs, at most once a second per policy.
    private func acquire(_ policyID: Int, _ runtime: ChildRuntime) {
        let t = now
        guard lastAcquire[policyID] != t else { return }
        lastAcquire[policyID] = t
        if let ike = runtime.links[.ike] { try? ike.send(.acquire(Acquire(policyID: UInt32(policyID)))) }
        runtime.audit.rateLimitedEvent(key: "acquire-\(policyID)", .informational, msgID: "acquire", "no SA for policy; packet dropped, IKE asked",
                                       [("policy", String(policyID))])
    }

    /// UDP 4500: ESP in UDP for us; IKE's messages (behind the non-ESP marker) go to keyway-ike.
    private func udpInbound(_ runtime: ChildRuntime) {
        guard let held, let tun else { return }
        for _ in 0..<Self.batch {
            guard let (n, source, port, local) = Sockets.receiveUDP(held, into: &buffer), n > 0 else { return }
            if n == 1 && buffer[0] == 0xff { continue }  // NAT keepalive
            if n >= 4 && buffer[0] == 0 && buffer[1] == 0 && buffer[2] == 0 && buffer[3] == 0 {
                if let ike = runtime.links[.ike] { try? ike.send(.ikeDatagram(IKEDatagram(source: source, sourcePort: port, destination: local, payload: Array(buffer.prefix(n))))) }
                continue
            }
            switch engine.processInboundUDP(buffer[0..<n], source: source, now: now) {
            case .deliver(let inner): _ = try? tun.write(inner)
            case .drop(let counter):
                runtime.audit.rateLimitedEvent(key: "drop-\(counter)", .warning, msgID: "ipsec-drop", "inbound ESP-in-UDP dropped", [("reason", counter)])
            }
        }
    }

    /// One sendmmsg per protocol for everything sealed in this wake-up.
    private func flushSends() {
        if espOut.count > 0, let rawESP { sendFailures += UInt64(espOut.send(on: rawESP)) }
        if ahOut.count > 0, let rawAH { sendFailures += UInt64(ahOut.send(on: rawAH)) }
    }

    private func inbound(_ fd: Int32, _ runtime: ChildRuntime) {
        guard let socket = fd == rawESP?.raw ? rawESP : rawAH, let tun else { return }
        for _ in 0..<4 {
            let received = inBatch.receive(from: socket)
            guard received > 0 else { return }
            for i in 0..<received {
                // The engine takes this copy over and decrypts it in place.
                let packet = inBatch.packet(i)
                let destination = packet.count >= 20 ? IPv4Header.u32(packet, 16) : 0
                switch engine.processInbound(packet, now: now) {
                case .deliver(let inner):
                    _ = try? tun.write(inner)
                case .drop(let counter):
                    // Every raw socket sees all ESP/AH for this host: an unknown SPI aimed at an address
                    // we hold no SA for is someone else's traffic, counted but not worth an audit line.
                    if counter != "in-no-states" || isForUs(destination) {
                        runtime.audit.rateLimitedEvent(key: "drop-\(counter)", .warning, msgID: "ipsec-drop", "inbound packet dropped",
                                                       [("reason", counter)])
                    }
                }
            }
            if received < inBatch.capacity { return }
        }
    }

    private func isForUs(_ destination: UInt32) -> Bool {
        installed.keys.contains { $0.inbound && $0.destination == destination }
            || negotiated.contains { $0.record.inbound && $0.record.destination == destination }
    }

    func handle(_ envelope: Envelope, from peer: Role, runtime: ChildRuntime) {
        switch envelope.message {
        case .datapathConfig(let config): apply(config, runtime)
        case .flushSAs(let request): flush(request.proto, runtime)
        case .saInstall(let request) where peer == .ike:
            let known = Set(configuredPolicies.map(\.id) + generatedPolicies.map(\.id))
            let added = request.generatedPolicies.filter { !known.contains($0.id) && $0.action == 2 }
            if !added.isEmpty { generatedPolicies += added; applyPolicies(runtime) }
            installNegotiated(request.sas, runtime)
        case .saRemove(let request) where peer == .ike: removeNegotiated(request.entries, runtime)
        default: break
        }
    }

    private func flush(_ proto: UInt8, _ runtime: ChildRuntime) {
        let type = IPsecProtocol(rawValue: proto)
        let gone = installed.keys.filter { type == nil || $0.proto == proto }
        for record in gone { installed[record] = nil; flushed.insert(record) }
        negotiated.removeAll { type == nil || $0.record.proto == proto }
        let count = engine.flush(type)
        sendIncomingFilter(runtime)
        runtime.audit.event(.notice, msgID: "sa-flush", "installed SAs flushed",
                            [("sa-type", type == .esp ? "esp" : type == .ah ? "ah" : "all"), ("count", String(count))])
    }

    /// The monitor's policies, then (at the bottom, as RouterOS adds them) the generated ones.
    private var configuredPolicies: [PolicyRecord] = []
    private var generatedPolicies: [PolicyRecord] = []

    private func apply(_ config: DatapathConfig, _ runtime: ChildRuntime) {
        generation = config.generation
        configuredPolicies = config.policies
        applyPolicies(runtime)
        var next: [SARecord: SecurityAssociation] = [:]
        flushed.formIntersection(config.sas)
        for record in config.sas where !flushed.contains(record) {
            if let existing = installed[record] { next[record] = existing; continue }
            do { next[record] = try makeSA(record) } catch {
                runtime.audit.event(.error, msgID: "sa-install", "SA not installed: \(error)", [("spi", String(record.spi, radix: 16))])
            }
        }
        installed = next
        reinstall()
        sendIncomingFilter(runtime)
        runtime.audit.event(.informational, msgID: "config", "datapath configuration applied",
                            [("generation", String(config.generation)), ("policies", String(config.policies.count)), ("sas", String(installed.count))])
    }

    /// The SPD and the routes it needs, from the configured and generated policies.
    private func applyPolicies(_ runtime: ChildRuntime) {
        let records = configuredPolicies + generatedPolicies
        let policies = records.map { p in
            SecurityPolicy(id: Int(p.id),
                           selector: TrafficSelector(source: IPv4Prefix(p.source, length: Int(p.sourceLength)),
                                                     destination: IPv4Prefix(p.destination, length: Int(p.destinationLength)),
                                                     sourcePort: p.sourcePort == 0 ? nil : p.sourcePort,
                                                     destinationPort: p.destinationPort == 0 ? nil : p.destinationPort,
                                                     proto: p.proto == 255 ? nil : p.proto),
                           action: [.none, .discard, .encrypt][Int(min(p.action, 2))],
                           level: [.use, .require, .unique][Int(min(p.level, 2))],
                           useESP: p.esp, useAH: p.ah, tunnel: p.tunnel, saSource: p.saSource, saDestination: p.saDestination,
                           priority: Int(p.priority), dontFragment: [.clear, .inherit, .set][Int(min(p.dontFragment, 2))])
        }
        engine.replacePolicies(policies)
        // Plaintext for protected destinations must come to us: ask keywayd for the routes.
        var routes: [(address: UInt32, length: UInt8, source: UInt32)] = []
        for p in records where p.action == 2 {
            let route = p.tunnel ? (p.destination, p.destinationLength, UInt32(0)) : (p.saDestination, UInt8(32), p.saSource)
            if !routes.contains(where: { $0.address == route.0 && $0.length == route.1 }) { routes.append(route) }
        }
        try? runtime.parent.send(.routeSet(RouteSet(prefixes: routes)))
    }

    /// SAs keyed by IKE, oldest first (the newest outbound SA of a policy is the one used).
    private var negotiated: [(record: SARecord, sa: SecurityAssociation)] = []

    private func reinstall() {
        engine.removeAllSAs()
        for (record, sa) in installed.map({ ($0.key, $0.value) }) + negotiated.map({ ($0.record, $0.sa) }) {
            if record.inbound { engine.installInbound(sa, policyID: Int(record.policyID)) } else { engine.installOutbound(sa, policyID: Int(record.policyID)) }
        }
    }

    private func installNegotiated(_ records: [SARecord], _ runtime: ChildRuntime) {
        for record in records {
            do { negotiated.append((record, try makeSA(record))) } catch {
                runtime.audit.event(.error, msgID: "sa-install", "negotiated SA not installed: \(error)", [("spi", String(record.spi, radix: 16))])
            }
        }
        reinstall()
        sendIncomingFilter(runtime)
    }

    private func removeNegotiated(_ entries: [SARemove.Entry], _ runtime: ChildRuntime) {
        negotiated.removeAll { n in entries.contains { $0.spi == n.record.spi && $0.proto == n.record.proto && $0.destination == n.record.destination } }
        // A generated policy goes with its last SA.
        let used = Set(negotiated.map(\.record.policyID))
        let before = generatedPolicies.count
        generatedPolicies.removeAll { !used.contains($0.id) }
        if generatedPolicies.count != before { applyPolicies(runtime) }
        reinstall()
        sendIncomingFilter(runtime)
    }

    private func makeSA(_ r: SARecord) throws -> SecurityAssociation {
        let now = self.now
        func limit(_ v: UInt64) -> UInt64? { v == 0 ? nil : v }
        let lifetime = Lifetime(hardSeconds: limit(r.lifetimeSeconds), hardBytes: limit(r.hardBytes), softSeconds: limit(r.softSeconds),
                                softBytes: limit(r.softBytes), useHardSeconds: limit(r.useHardSeconds))
        if r.proto == 51 {
            guard let integ = IntegrityAlgorithm(rawValue: r.integrity) else { throw CryptoError.badKey("unknown integrity \(r.integrity)") }
            return SecurityAssociation(spi: r.spi, proto: .ah, source: r.source, destination: r.destination, tunnel: r.tunnel,
                                       ah: try AHTransform(integrity: integ, key: Secret(r.integrityKey)), lifetime: lifetime,
                                       replayWindow: r.replayWindow, initialSequence: r.inbound ? 0 : r.initialSequence, now: now)
        }
        guard let enc = EncryptionAlgorithm(rawValue: r.encryption), let integ = IntegrityAlgorithm(rawValue: r.integrity) else {
            throw CryptoError.badKey("unknown algorithm \(r.encryption)/\(r.integrity)")
        }
        let transform = try ESPTransform(encryption: enc, encryptionKey: Secret(r.encryptionKey), integrity: integ,
                                         integrityKey: integ == .null ? nil : Secret(r.integrityKey), encrypt: !r.inbound)
        return SecurityAssociation(spi: r.spi, proto: .esp, source: r.source, destination: r.destination, tunnel: r.tunnel,
                                   esp: transform, lifetime: lifetime, replayWindow: r.replayWindow, initialSequence: r.inbound ? 0 : r.initialSequence,
                                   udpEncapsulation: r.udpRemotePort == 0 ? nil : (r.udpLocalPort, r.udpRemotePort), now: now)
    }

    private var lastState: UInt64 = 0
    private var sentFilter: IncomingFilter?

    /// keywayd enforces the incoming policy check in the firewall; it hears of every change.
    private func sendIncomingFilter(_ runtime: ChildRuntime) {
        let filter = IncomingFilter(rules: engine.incomingRules().prefix(IncomingFilter.maximumRules).map { r in
            IncomingFilter.Rule(source: r.selector.source.address.value, sourceLength: UInt8(r.selector.source.length),
                                destination: r.selector.destination.address.value, destinationLength: UInt8(r.selector.destination.length),
                                proto: r.selector.proto ?? 255, sourcePort: r.selector.sourcePort ?? 0,
                                destinationPort: r.selector.destinationPort ?? 0, drop: r.drop)
        })
        guard filter != sentFilter else { return }
        if (try? runtime.parent.send(.incomingFilter(filter))) != nil { sentFilter = filter }
    }

    /// Lifetimes, and once a second the state the monitor prints from.
    func tick(runtime: ChildRuntime) {
        let t = now
        guard t != lastState else { return }
        lastState = t
        engine.tick(now: t)
        sendIncomingFilter(runtime)
        for event in engine.takeEvents() {
            if case .expire(let spi, let proto, let hard) = event {
                runtime.audit.event(.notice, msgID: "sa-expire", "\(hard ? "hard" : "soft") lifetime reached",
                                    [("spi", String(spi, radix: 16)), ("protocol", proto == .esp ? "esp" : "ah")])
            }
        }
        guard let link = runtime.links[.monitor] else { return }
        try? link.send(.datapathState(state(now: t)))
    }

    private func state(now t: UInt64) -> DatapathState {
        let sas = (installed.map { ($0.key, $0.value) } + negotiated.map { ($0.record, $0.sa) }).map { record, sa in
            var status = SAStatus(spi: sa.spi, proto: sa.proto.rawValue, source: sa.source, destination: sa.destination,
                     encryption: sa.esp?.encryption.rawValue ?? "none", integrity: sa.esp?.integrity.rawValue ?? sa.ah?.integrity.rawValue ?? "none",
                     state: sa.state.rawValue, ageSeconds: t &- sa.addTime, sinceFirstUse: sa.firstUse.map { t &- $0 } ?? 0,
                     used: sa.firstUse != nil, bytes: sa.bytes, replayWindow: sa.replay.size,
                     softSeconds: sa.lifetime.softSeconds ?? 0, hardSeconds: sa.lifetime.hardSeconds ?? 0,
                     softBytes: sa.lifetime.softBytes ?? 0, hardBytes: sa.lifetime.hardBytes ?? 0)
            status.pfs = record.pfs
            status.useSoftSeconds = sa.lifetime.useSoftSeconds ?? 0
            status.useHardSeconds = sa.lifetime.useHardSeconds ?? 0
            status.sequence = record.inbound ? 0 : sa.sequence
            return status
        }.sorted { ($0.destination, $0.spi) < ($1.destination, $1.spi) }
        let withSAs = Set(installed.keys.map(\.policyID) + negotiated.map(\.record.policyID))
        let policies = engine.policyCounters.map { id, c in
            PolicyStatus(id: UInt32(id), inAccepted: c.inAccepted, inDropped: c.inDropped, inTransformed: c.inTransformed,
                         outAccepted: c.outAccepted, outDropped: c.outDropped, outTransformed: c.outTransformed, established: withSAs.contains(UInt32(id)))
        } + withSAs.filter { engine.policyCounters[Int($0)] == nil }.map {
            PolicyStatus(id: $0, inAccepted: 0, inDropped: 0, inTransformed: 0, outAccepted: 0, outDropped: 0, outTransformed: 0, established: true)
        }
        return DatapathState(sas: sas, policies: policies, statistics: engine.statistics.map { Counter(name: $0.key, value: $0.value) })
    }

    func counters() -> [Counter] {
        engine.statistics.sorted { $0.key < $1.key }.map { Counter(name: $0.key, value: $0.value) }
            + [Counter(name: "config-generation", value: generation), Counter(name: "installed-sas", value: UInt64(installed.count)),
               Counter(name: "send-failures", value: sendFailures)]
            + engine.policyCounters.sorted { $0.key < $1.key }.flatMap { id, c in
                [("in-transformed", c.inTransformed), ("out-transformed", c.outTransformed), ("in-dropped", c.inDropped), ("out-dropped", c.outDropped)]
                    .map { Counter(name: "policy-\(id)-\($0.0)", value: $0.1) }
            }
    }
}

ChildRuntime.run(role: .datapath, behavior: DatapathBehavior())
