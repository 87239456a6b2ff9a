import KeywayAudit
import KeywayCrypto
import KeywayDatapath
import KeywayPrivsep
import KeywaySystem
import KeywayVocabulary
import KeywayWire

/// keyway-datapath: plaintext from the TUN device out as ESP/AH on raw sockets, and back. A thin
/// loop: the packet work is PacketPipeline's, the tables DatapathController's.
final class DatapathBehavior: ChildBehavior {
    var requiredDescriptors: Set<DescriptorKind> { [.rawESP, .rawAH, .udp4500] }
    private var tun: Descriptor?
    private var rawESP: Descriptor?
    private var rawAH: Descriptor?
    private var held: Descriptor?
    /// ICMP "destination unreachable" for path MTU discovery
    /// (optional: without it, paths only shrink to the interface).
    private var icmp: Descriptor?
    /// The SPD and SAD as the monitor and keyway-ike shape them, every request from IKE checked.
    private let control = DatapathController()
    private var engine: Datapath { control.engine }
    /// Buffers, segmentation and coalescing; made once the TUN device's kind is known.
    private var pipeline: PacketPipeline?
    /// recvmmsg/sendmmsg vectors into the pipeline's buffers, allocated once.
    private let received = PacketVector(capacity: 64)
    private let espOut = PacketVector(capacity: 128)
    private let ahOut = PacketVector(capacity: 32)
    private let udpOut = PacketVector(capacity: 128)
    private var sendFailures: UInt64 = 0, tunWriteFailures: UInt64 = 0
    /// ESP in UDP of one size to one peer goes as one message the kernel cuts apart (UDP GSO),
    /// until the kernel refuses it.
    private var udpSegmentation = false
    private var udpMessages: UInt64 = 0, udpPackets: UInt64 = 0
    /// TUN reads (and network batches) per wake-up: the links to the other processes are never starved.
    static let batch = 64

    func beforeSandbox() { CryptoProviders.preload() }

    func start(runtime: ChildRuntime) {
        let offloads = runtime.granted[.tunWithOffloads] != nil
        tun = runtime.granted[.tunWithOffloads] ?? runtime.granted[.tun]
        if tun == nil { runtime.fail("start-up: keywayd did not pass the TUN device") }
        rawESP = runtime.granted[.rawESP]
        rawAH = runtime.granted[.rawAH]
        held = runtime.granted[.udp4500]
        icmp = runtime.granted[.rawICMP]
        for fd in [tun, rawESP, rawAH, held, icmp].compactMap({ $0 }) { try? fd.setNonBlocking() }
        interests = [tun, rawESP, rawAH, held, icmp].compactMap { $0.map { (fd: $0.raw, events: .readable) } }
        pipeline = PacketPipeline(engine: control.engine, offloads: offloads)
        // keywayd turns UDP GRO on with the TUN offloads; segmentation (UDP GSO) is ours to try.
        udpSegmentation = offloads
        reportOffloads()
    }

    /// Made once at start: the loop asks every turn.
    private var interests: [(fd: Int32, events: PollEvents)] = []
    func pollInterests() -> [(fd: Int32, events: PollEvents)] { interests }

    private var now: UInt64 { MonotonicClock.now() / 1_000_000_000 }

    func handleReady(fd: Int32, events: PollEvents, runtime: ChildRuntime) {
        if fd == tun?.raw {
            outbound(runtime)
        } else if fd == rawESP?.raw || fd == rawAH?.raw {
            inbound(fd, runtime)
        } else if fd == held?.raw {
            udpInbound(runtime)
        }
        else if fd == icmp?.raw { icmpInbound(runtime) }
    }

    /// TUN reads, each split, sealed in place and queued; one sendmmsg per socket for the lot.
    private func outbound(_ runtime: ChildRuntime) {
        guard let tun, let pipeline else { return }
        let t = now
        defer { flushSends() }
        for _ in 0..<Self.batch {
            if pipeline.nextRead() == nil { flushSends() }
            guard let (offset, maximum) = pipeline.nextRead(),
                  let n = PacketIO.read(tun, into: &pipeline.outbound.bytes, at: offset, maximum: maximum),
                  n > 0 else { return }
            pipeline.processRead(length: n, now: t) { action in
                switch action {
                case .send(let start, let length, let destination, let proto):
                    if !(proto == 51 ? ahOut : espOut).append(start: start, length: length, to: destination) {
                        sendFailures += 1
                    }
                case .sendUDP(let start, let length, let destination, let port, let source):
                    if !udpOut.append(start: start, length: length, to: destination, port: port, from: source) {
                        sendFailures += 1
                    }
                case .sendRun(let run, let destination, let proto):
                    for i in 0..<run.count {
                        queue(proto == 51 ? ahOut : espOut, run.start(i), run.length(i), destination)
                    }
                case .tooBig(let icmpStart, let icmpLength, let mtu):
                    tooBig(icmpStart, icmpLength, mtu: mtu, runtime)
                case .pass, .drop:
                    // Plaintext routed into the TUN device is never sent on unprotected.
                    if case .drop("out-frag-errors") = action { tooBig(0, 0, mtu: 0, runtime) }
                case .acquire(let policyID):
                    acquire(policyID, runtime)
                }
            }
        }
    }

    /// Queues a sealed packet; a full vector goes out first (a run of fragments may not fit what is left).
    private func queue(_ vector: PacketVector, _ start: Int, _ length: Int, _ destination: UInt32) {
        if vector.append(start: start, length: length, to: destination) { return }
        if let socket = vector === ahOut ? rawAH : rawESP, let pipeline {
            sendFailures += UInt64(vector.send(on: socket, from: pipeline.outbound.bytes))
        }
        if !vector.append(start: start, length: length, to: destination) { sendFailures += 1 }
    }

    /// A packet too big for its SA's path: the ICMP for its sender goes back into the TUN device,
    /// and the drop is audited (rate-limited; counted as out-frag-needed or out-frag-errors).
    private func tooBig(_ start: Int, _ length: Int, mtu: Int, _ runtime: ChildRuntime) {
        if length > 0, let pipeline, let write = pipeline.replyWrite(start: start, length: length) {
            writeTun(write, pipeline.outbound.bytes)
        }
        runtime.audit.rateLimitedEvent(key: "too-big", .notice, msgID: "packet-too-big",
                                       mtu > 0 ? "packet with DF too big for the SA's path: dropped, sender told"
                                           : "packet too big for the SA's path could not be fragmented: dropped",
                                       [("mtu", String(mtu))])
    }

    private var lastAcquire: [Int: UInt64] = [:]

    /// Asks keyway-ike for SAs, at most once a second per policy.
    private func acquire(_ policyID: Int, _ runtime: ChildRuntime) {
        let t = now
        guard lastAcquire[policyID] != t else { return }
        lastAcquire[policyID] = t
        if let ike = runtime.links[.ike] { try? ike.send(.acquire(Acquire(policyID: UInt32(policyID)))) }
        runtime.audit.rateLimitedEvent(key: "acquire", .informational, msgID: "acquire",
                                       "no SA for policy; packet dropped, IKE asked",
                                       [("policy", String(policyID))])
    }

    /// Everything sealed since the last flush, one sendmmsg per socket; the slots are free again.
    private func flushSends() {
        guard let pipeline else { return }
        let bytes = pipeline.outbound.bytes
        if espOut.count > 0, let rawESP { sendFailures += UInt64(espOut.send(on: rawESP, from: bytes)) }
        if ahOut.count > 0, let rawAH { sendFailures += UInt64(ahOut.send(on: rawAH, from: bytes)) }
        if udpOut.count > 0, let held {
            udpPackets &+= UInt64(udpOut.count)
            let result = udpOut.sendUDP(on: held, from: bytes, segmenting: udpSegmentation)
            sendFailures += UInt64(result.refused)
            udpMessages &+= UInt64(result.messages)
            if result.segmentationRefused {
                udpSegmentation = false
                reportOffloads()
            }
        }
        pipeline.sendsFlushed()
    }

    private func reportOffloads() {
        guard pipeline?.offloads == true else { return control.offloads = [] }
        control.offloads = ["tun-csum", "tun-tso4", "tun-gro", "udp-gro"] + (udpSegmentation ? ["udp-gso"] : [])
    }

    private func writeTun(_ w: PacketPipeline.TunWrite, _ bytes: [UInt8]) {
        guard let tun else { return }
        if !PacketIO.write(tun, bytes, at: w.offset, count: w.count) { tunWriteFailures += 1 }
    }

    /// UDP 4500: ESP in UDP for us (several at once when the kernel joined them); IKE's messages
    /// (behind the non-ESP marker) go to keyway-ike.
    private func udpInbound(_ runtime: ChildRuntime) {
        guard let held, let pipeline else { return }
        let t = now
        for _ in 0..<4 {
            // Read before the buffer is lent out: an overlapping access would trap.
            let starts = pipeline.receiveStarts, room = pipeline.inbound.packetCapacity
            let n = received.receiveUDPCoalesced(from: held, into: &pipeline.inbound.bytes, slotStarts: starts,
                                                 room: room)
            guard n > 0 else { return }
            for i in 0..<n {
                let source = received.source(i), port = received.sourcePort(i), local = received.local(i)
                pipeline.processUDP(start: received.start(i), length: received.length(i),
                                    segmentSize: received.segmentSize(i), source: source, now: t,
                                    ike: { start, length in
                    let payload = Array(pipeline.inbound.bytes[start..<(start + length)])
                    let datagram = IKEDatagram(source: IPv4Address(source), sourcePort: port,
                                               destination: IPv4Address(local), payload: payload)
                    if let ike = runtime.links[.ike] { try? ike.send(.ikeDatagram(datagram)) }
                }, write: { self.writeTun($0, $1) }) { counter in
                    runtime.audit.rateLimitedEvent(key: "ipsec-drop", .warning, msgID: "ipsec-drop",
                                                   "inbound ESP-in-UDP dropped", [("reason", counter)])
                }
            }
            pipeline.finishInbound(write: { self.writeTun($0, $1) })
            if n < received.capacity { return }
        }
    }

    private func inbound(_ fd: Int32, _ runtime: ChildRuntime) {
        guard let socket = fd == rawESP?.raw ? rawESP : rawAH, let pipeline else { return }
        let t = now
        for _ in 0..<4 {
            let starts = pipeline.receiveStarts, room = pipeline.inbound.packetCapacity
            let n = received.receive(from: socket, into: &pipeline.inbound.bytes, slotStarts: starts, room: room)
            guard n > 0 else { return }
            for i in 0..<n {
                let start = received.start(i), length = received.length(i)
                let destination = length >= 20 ? IPv4Header.u32(pipeline.inbound.bytes, start + 16) : 0
                pipeline.processInbound(start: start, length: length, now: t,
                                        write: { self.writeTun($0, $1) }) { counter in
                    // Every raw socket sees all ESP/AH for this host: an unknown SPI aimed at an address
                    // we hold no SA for is someone else's traffic, counted but not worth an audit line.
                    if counter != "in-no-states" || isForUs(destination) {
                        runtime.audit.rateLimitedEvent(key: "ipsec-drop", .warning, msgID: "ipsec-drop",
                                                       "inbound packet dropped",
                                                       [("reason", counter)])
                    }
                }
            }
            pipeline.finishInbound(write: { self.writeTun($0, $1) })
            if n < received.capacity { return }
        }
    }

    private func isForUs(_ destination: UInt32) -> Bool { control.holdsInboundSA(for: destination) }

    private var icmpBuffer = [UInt8](repeating: 0, count: 2048)

    /// ICMP errors from the network (untrusted): a validated "fragmentation needed" lowers a path.
    private func icmpInbound(_ runtime: ChildRuntime) {
        guard let icmp else { return }
        for _ in 0..<64 {
            guard let n = Sockets.receive(icmp, into: &icmpBuffer) else { return }
            perform(control.icmp(icmpBuffer, start: 0, length: n, now: now), runtime)
        }
    }

    func handle(_ envelope: Envelope, from peer: Role, runtime: ChildRuntime) {
        let effects: [DatapathEffect]
        switch envelope.message {
        case .datapathConfig(let config) where peer == .monitor:
            effects = control.configure(config, now: now, progress: { runtime.keepAlive() })
        case .flushSAs(let request) where peer == .monitor:
            effects = control.flush(IPsecProtocol(rawValue: request.proto))
        case .hostAddresses(let addresses) where peer == .parent: effects = control.setHostAddresses(addresses)
        case .outerPaths(let paths) where peer == .parent: effects = control.setOuterPaths(paths)
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
        engine.agePaths(now: t)
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
               Counter(name: "tun-write-failures", value: tunWriteFailures),
               Counter(name: "coalesced-segments", value: pipeline?.coalescer.coalescedSegments ?? 0),
               Counter(name: "tso-split-segments", value: pipeline?.splitSegments ?? 0),
               Counter(name: "udp-joined-datagrams", value: pipeline?.joinedDatagrams ?? 0),
               Counter(name: "udp-sent-packets", value: udpPackets),
               Counter(name: "udp-sent-messages", value: udpMessages),
               Counter(name: "refused-from-ike", value: control.refusedFromIKE),
               Counter(name: "tun-mtu", value: UInt64(control.tunMTU))]
            + engine.policyCounters.sorted { $0.key < $1.key }.flatMap { id, c in
                [("in-transformed", c.inTransformed), ("out-transformed", c.outTransformed),
                 ("in-dropped", c.inDropped), ("out-dropped", c.outDropped)]
                    .map { Counter(name: "policy-\(id)-\($0.0)", value: $0.1) }
            }
    }
}

ChildRuntime.run(role: .datapath, behavior: DatapathBehavior())
