import KeywayAudit
import KeywayCrypto
import KeywayDatapath
import KeywayPrivsep
import KeywaySystem
import KeywayVocabulary
import KeywayWire

/// keyway-datapath: plaintext from the TUN device out as ESP/AH on raw sockets, and back.
final class DatapathBehavior: ChildBehavior {
    var requiredDescriptors: Set<DescriptorKind> { [.tun, .rawESP, .rawAH, .udp4500] }
    private var tun: Descriptor?
    private var rawESP: Descriptor?
    private var rawAH: Descriptor?
    private var held: Descriptor?
    /// The SPD and SAD as the monitor and keyway-ike shape them, every request from IKE checked.
    private let control = DatapathController()
    private var engine: Datapath { control.engine }
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
                // From the SA's own address (the outer header's source), as IKE answers: multihomed hosts.
                if let held, !Sockets.sendUDP(held, packet, from: offset, source: IPv4Header.u32(packet, 12),
                                              to: destination, port: port) { sendFailures += 1 }
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
                let datagram = IKEDatagram(source: IPv4Address(source), sourcePort: port,
                                           destination: IPv4Address(local), payload: Array(buffer.prefix(n)))
                if let ike = runtime.links[.ike] { try? ike.send(.ikeDatagram(datagram)) }
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

    private func isForUs(_ destination: UInt32) -> Bool { control.holdsInboundSA(for: destination) }

    func handle(_ envelope: Envelope, from peer: Role, runtime: ChildRuntime) {
        let effects: [DatapathEffect]
        switch envelope.message {
        case .datapathConfig(let config) where peer == .monitor:
            effects = control.configure(config, now: now, progress: { runtime.keepAlive() })
        case .flushSAs(let request) where peer == .monitor:
            effects = control.flush(IPsecProtocol(rawValue: request.proto))
        case .hostAddresses(let addresses) where peer == .parent: effects = control.setHostAddresses(addresses)
        case .saInstall(let request) where peer == .ike: effects = control.install(request, now: now)
        case .saRemove(let request) where peer == .ike: effects = control.remove(request)
        default: return
        }
        perform(effects, runtime)
    }

    private var sentGenerated: GeneratedPolicySet?

    private func perform(_ effects: [DatapathEffect], _ runtime: ChildRuntime) {
        for effect in effects {
            switch effect {
            case .audit(let note): runtime.audit.note(note)
            case .generatedPolicies(let set):
                // keywayd hears of every change (and of the set again after a reconnect).
                guard set != sentGenerated else { continue }
                if (try? runtime.parent.send(.generatedPolicySet(set))) != nil { sentGenerated = set }
            }
        }
    }

    private var lastState: UInt64 = 0

    /// Lifetimes, and once a second the state the monitor prints from.
    func tick(runtime: ChildRuntime) {
        let t = now
        guard t != lastState else { return }
        lastState = t
        engine.tick(now: t)
        for event in engine.takeEvents() {
            if case .expire(let spi, let proto, let hard) = event {
                runtime.audit.event(.notice, msgID: "sa-expire", "\(hard ? "hard" : "soft") lifetime reached",
                                    [("spi", String(spi, radix: 16)), ("protocol", proto == .esp ? "esp" : "ah")])
            }
        }
        guard let link = runtime.links[.monitor], t >= lastReport.saturatingAdd(reportInterval) else { return }
        lastReport = t
        var state = control.state(now: t)
        // What keyway-ike sent that was not even a request this channel allows counts too.
        state.refusedFromIKE = state.refusedFromIKE.saturatingAdd(runtime.wire.rejectedBySender[.ike] ?? 0)
        // Once a second, or less often when the report is large (about a MiB a second at most:
        // 20,000 SAs are reported every few seconds), so that reporting never crowds out packets.
        reportInterval = 1 + UInt64((state.sas.count * 160 + state.policies.count * 56) >> 20)
        try? link.send(.datapathState(state))
    }

    private var lastReport: UInt64 = 0
    private var reportInterval: UInt64 = 1

    func counters() -> [Counter] {
        engine.statistics.sorted { $0.key < $1.key }.map { Counter(name: $0.key, value: $0.value) }
            + [Counter(name: "config-generation", value: control.generation),
               Counter(name: "installed-sas", value: UInt64(control.installedCount)),
               Counter(name: "send-failures", value: sendFailures),
               Counter(name: "refused-from-ike", value: control.refusedFromIKE)]
            + engine.policyCounters.sorted { $0.key < $1.key }.flatMap { id, c in
                [("in-transformed", c.inTransformed), ("out-transformed", c.outTransformed), ("in-dropped", c.inDropped), ("out-dropped", c.outDropped)]
                    .map { Counter(name: "policy-\(id)-\($0.0)", value: $0.1) }
            }
    }
}

ChildRuntime.run(role: .datapath, behavior: DatapathBehavior())
