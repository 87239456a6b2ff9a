import KeywayVocabulary
/// The datapath's decisions, sans-IO: a packet and the time in, an action out. The process
/// around it reads the TUN device and raw sockets and carries the actions out.
public final class Datapath {
    public enum Outbound: Equatable {
        /// Send this outer packet to `destination` (raw IP socket).
        case send([UInt8], destination: UInt32)
        /// Send this packet's ESP part (from `offset`, past the IP header) in UDP to
        /// `destination`:`port` (RFC 3948); the kernel's UDP socket writes the IP and UDP headers.
        case sendUDP([UInt8], offset: Int, destination: UInt32, port: UInt16)
        /// No IPsec applies: the packet goes on in plaintext.
        case pass
        case drop(counter: String)
        /// Dropped, and IKE is asked for SAs for this policy.
        case acquire(policyID: Int)
        /// Several outer packets for one inner packet (fragments, or sealed pieces), in order.
        case sendRun([[UInt8]], destination: UInt32)
        /// Too big for the path with DF: dropped; `icmp` is the "fragmentation needed" for its
        /// sender (nil when none may be sent), naming `mtu`.
        case tooBig(icmp: [UInt8]?, mtu: Int)
    }

    public enum Inbound: Equatable {
        /// Write this inner packet to the TUN device ("received once more").
        case deliver([UInt8])
        case drop(counter: String)
    }

    /// What to do with a packet processed in place in a buffer: where the result lies.
    public enum OutboundAction: Equatable {
        /// Send `buffer[start..<start+length]`, a whole outer packet, to `destination` on the raw
        /// socket of `proto` (50 ESP, 51 AH).
        case send(start: Int, length: Int, destination: UInt32, proto: UInt8)
        /// Send `buffer[start..<start+length]`, an ESP packet without its IP header, in UDP to
        /// `destination`:`port` from our address `source` (RFC 3948); the kernel writes the IP and
        /// UDP headers.
        case sendUDP(start: Int, length: Int, destination: UInt32, port: UInt16, source: UInt32)
        case pass
        case drop(counter: String)
        case acquire(policyID: Int)
        /// Several outer packets for one inner packet, each to `destination` on the raw socket of
        /// `proto`: the fragments of its outer packet (RFC 791: `dont-fragment` left DF clear and
        /// it exceeds the path), or the sealed pieces of the inner packet split first (DF set on
        /// the outer packets, clear on the inner one).
        case sendRun(PacketRun, destination: UInt32, proto: UInt8)
        /// The packet must not be fragmented (DF) and does not fit the SA's path: dropped
        /// (`out-frag-needed`). `buffer[icmpStart..<icmpStart+icmpLength]` is an ICMP
        /// "fragmentation needed" naming `mtu` for its sender, to write to the TUN device (length
        /// 0: none, rate-limited or not allowed).
        case tooBig(icmpStart: Int, icmpLength: Int, mtu: Int)
    }

    public enum InboundAction: Equatable {
        /// Write `buffer[start..<start+length]`, the inner packet, to the TUN device.
        case deliver(start: Int, length: Int)
        case drop(counter: String)
    }

    public struct PolicyCounters: Equatable, Sendable {
        public var inAccepted: UInt64 = 0, inDropped: UInt64 = 0, inTransformed: UInt64 = 0
        public var outAccepted: UInt64 = 0, outDropped: UInt64 = 0, outTransformed: UInt64 = 0
    }

    public struct SAKey: Hashable, Sendable {
        public var destination: UInt32
        public var proto: UInt8
        public var spi: UInt32
    }

    public enum Event: Equatable, Sendable {
        case expire(spi: UInt32, proto: IPsecProtocol, hard: Bool)
    }

    public private(set) var spd: SPD
    public internal(set) var statistics: [String: UInt64] = [:]
    public internal(set) var policyCounters: [Int: PolicyCounters] = [:]
    private(set) var outbound: [Int: (esp: SecurityAssociation?, ah: SecurityAssociation?)] = [:]
    /// Outbound SAs by what an ICMP error quotes of them (PathMTUDiscovery.swift).
    private(set) var outboundByKey: [SAKey: SecurityAssociation] = [:]
    /// Our addresses that outbound SAs start at: an ICMP quoting another is not about us.
    private(set) var outboundSources: Set<UInt32> = []
    /// What each outer path allows (keywayd's local MTUs, validated ICMP).
    public internal(set) var paths = PathMTUTable()
    /// `tcp-mss` per policy; a policy not named clamps to its path.
    public var tcpMSS: [Int: TCPMSSClamp] = [:]
    var icmpLimit = ICMPRateLimit()
    /// The identification of outer headers Keyway writes without DF: never an inner packet's,
    /// which another inner host may repeat (a router may fragment them, and reassembly goes by it).
    private var identification: UInt16 = 0
    private var inbound: [SAKey: (sa: SecurityAssociation, policyID: Int)] = [:]
    /// ESP-in-UDP arrives without our address in hand: such SAs are found by SPI.
    private var udpInbound: [UInt32: SAKey] = [:]
    public private(set) var events: [Event] = []

    public init(policies: [SecurityPolicy]) { spd = SPD(policies) }

    public func replacePolicies(_ policies: [SecurityPolicy]) {
        spd = SPD(policies)
        lastLookup = nil
    }

    /// The last outbound SPD decision: the segments split from one TSO read share their selector,
    /// so a run of them costs one lookup.
    private var lastLookup: (key: LookupKey, decision: SPD.Decision?)?
    private struct LookupKey: Equatable {
        var source: UInt32, destination: UInt32, ports: UInt32, proto: UInt8, hasPorts: Bool
    }

    private func outboundDecision(_ ip: IPv4Header, ports: (UInt16, UInt16)?) -> SPD.Decision? {
        let key = LookupKey(source: ip.source, destination: ip.destination,
                            ports: ports.map { UInt32($0.0) << 16 | UInt32($0.1) } ?? 0, proto: ip.proto,
                            hasPorts: ports != nil)
        if let last = lastLookup, last.key == key { return last.decision }
        let decision = spd.lookup(source: ip.source, destination: ip.destination, proto: ip.proto, ports: ports)
        lastLookup = (key, decision)
        return decision
    }

    public func installOutbound(_ sa: SecurityAssociation, policyID: Int) {
        var pair = outbound[policyID] ?? (nil, nil)
        if sa.proto == .esp { pair.esp = sa } else { pair.ah = sa }
        outbound[policyID] = pair
        outboundByKey[SAKey(destination: sa.destination, proto: sa.proto.rawValue, spi: sa.spi)] = sa
        outboundSources.insert(sa.source)
    }

    public func installInbound(_ sa: SecurityAssociation, policyID: Int) {
        let key = SAKey(destination: sa.destination, proto: sa.proto.rawValue, spi: sa.spi)
        inbound[key] = (sa, policyID)
        if sa.udpEncapsulation != nil { udpInbound[sa.spi] = key }
    }

    public func removeAllSAs() {
        outbound.removeAll()
        outboundByKey.removeAll()
        outboundSources.removeAll()
        inbound.removeAll()
        udpInbound.removeAll()
    }

    public var installedSAs: [SecurityAssociation] {
        outbound.values.flatMap { [$0.esp, $0.ah].compactMap { $0 } } + inbound.values.map(\.sa)
    }

    /// `/ip ipsec installed-sa flush sa-type=...`; returns how many SAs went.
    public func flush(_ type: IPsecProtocol?) -> Int {
        let before = installedSAs.count
        inbound = inbound.filter { type != nil && $0.value.sa.proto != type }
        udpInbound = udpInbound.filter { inbound[$0.value] != nil }
        outbound = outbound.mapValues { pair in
            (type == nil || type == .esp ? nil : pair.esp, type == nil || type == .ah ? nil : pair.ah)
        }
        outboundByKey = outboundByKey.filter { type != nil && $0.value.proto != type }
        outboundSources = Set(outboundByKey.values.map(\.source))
        return before - installedSAs.count
    }

    public func takeEvents() -> [Event] { defer { events.removeAll() }; return events }

    func count(_ name: String) { statistics[name, default: 0] += 1 }

    func nextIdentification() -> UInt16 {
        identification = identification == .max ? 1 : identification + 1
        return identification
    }

    func note(_ e: SecurityAssociation.Event?, _ sa: SecurityAssociation) {
        if let e { events.append(.expire(spi: sa.spi, proto: sa.proto, hard: e == .hard)) }
    }

    // MARK: outbound (plaintext from the TUN device)

    /// Applies the SPD to the packet at `buffer[start..<start+length]` and, where it says so,
    /// seals it in place (the buffer keeps PacketRoom's headroom and tailroom around it).
    /// `capacity` bytes from `start` on are the packet's to use (fragments go after it); nil:
    /// the rest of the buffer.
    public func processOutbound(_ buffer: inout [UInt8], start: Int, length: Int, capacity: Int? = nil,
                                now: UInt64) -> OutboundAction {
        guard let ip = try? IPv4Header(buffer, at: start, length: length) else {
            count("out-errors"); return .drop(counter: "out-errors")
        }
        let ports = ip.ports(in: buffer, at: start)
        // IKE's own traffic is never subject to the SPD.
        if ip.proto == 17, let (s, d) = ports, s == 500 || s == 4500 || d == 500 || d == 4500 { return .pass }
        guard let decision = outboundDecision(ip, ports: ports) else { return .pass }
        switch decision.action {
        case .none:
            policyCounters[decision.id, default: PolicyCounters()].outAccepted += 1
            return .pass
        case .discard:
            policyCounters[decision.id, default: PolicyCounters()].outDropped += 1
            count("out-policy-blocked")
            return .drop(counter: "out-policy-blocked")
        case .encrypt:
            break
        }
        let pair = outbound[decision.id]
        let esp = pair?.esp.flatMap { $0.state == .dead ? nil : $0 }
        let ah = pair?.ah.flatMap { $0.state == .dead ? nil : $0 }
        guard (!decision.useESP || esp != nil) && (!decision.useAH || ah != nil) else {
            if decision.level == .use {
                policyCounters[decision.id, default: PolicyCounters()].outAccepted += 1
                return .pass
            }
            policyCounters[decision.id, default: PolicyCounters()].outDropped += 1
            count("out-no-states")
            return .acquire(policyID: decision.id)
        }
        // Tunnel mode writes the outer header as dont-fragment says; transport mode keeps the host's.
        let df: Bool
        switch decision.dontFragment {
        case _ where !decision.tunnel: df = ip.dontFragment
        case .clear: df = false
        case .inherit: df = ip.dontFragment
        case .set: df = true
        }
        // The path (PathMTUDiscovery.swift): a SYN's MSS is clamped to it; what does not fit is
        // fragmented, split or refused as dont-fragment says. ESP in UDP without DF is the
        // kernel's to fragment (the socket never sets DF).
        let path = pathFit(decision: decision, esp: esp, ah: ah, now: now)
        if ip.proto == 6 { clampMSS(&buffer, start: start, header: ip, policyID: decision.id, path: path) }
        let udp = decision.useESP && !decision.useAH ? esp?.udpEncapsulation : nil
        if path.overhead.outerLength(inner: ip.totalLength, innerHeaderLength: ip.headerLength) > path.mtu,
           udp == nil || df {
            return oversize(&buffer, start: start, header: ip, decision: decision, esp: esp, ah: ah, outerDF: df,
                            path: path,
                            capacity: capacity ?? buffer.count - start, now: now)
        }
        let span: (start: Int, length: Int)
        do {
            span = try seal(&buffer, start: start, header: ip, decision: decision, esp: esp, ah: ah, outerDF: df,
                            identification: decision.tunnel && !df ? nextIdentification() : nil, now: now)
        } catch {
            return sealFailed(error, policyID: decision.id)
        }
        policyCounters[decision.id, default: PolicyCounters()].outTransformed += 1
        // The outer header says where it goes: the peer in tunnel mode, the host itself in transport mode.
        let destination = IPv4Header.u32(buffer, span.start + 16)
        if let udp {
            // DF on ESP in UDP: the raw socket carries it with a UDP header of ours (the UDP socket never sets DF).
            if df, let wrapped = wrapInUDP(&buffer, span, ports: udp) {
                return .send(start: wrapped.start, length: wrapped.length, destination: destination, proto: 50)
            }
            let headerLength = Int(buffer[span.start] & 0x0f) * 4
            // From the SA's own address (the outer header's source), as IKE answers: multihomed hosts.
            return .sendUDP(start: span.start + headerLength, length: span.length - headerLength,
                            destination: destination, port: udp.remote, source: IPv4Header.u32(buffer, span.start + 12))
        }
        return .send(start: span.start, length: span.length, destination: destination, proto: decision.useAH ? 51 : 50)
    }

    /// ESP, then AH (over ESP in transport mode), in place; each SA accounts the inner bytes.
    /// The first header Keyway writes takes `identification` when given.
    func seal(_ buffer: inout [UInt8], start: Int, header ip: IPv4Header, decision: SPD.Decision,
              esp: SecurityAssociation?,
              ah: SecurityAssociation?, outerDF: Bool, identification: UInt16?,
              now: UInt64) throws(DatapathDrop) -> (start: Int, length: Int) {
        var span = (start: start, length: ip.totalLength)
        var chosen = identification
        if let esp, decision.useESP {
            span = try ESPCodec.seal(&buffer, start: span.start, length: span.length, sa: esp, dontFragment: outerDF,
                                     identification: chosen)
            chosen = nil
            note(esp.account(bytes: ip.totalLength, now: now), esp)
        }
        if let ah, decision.useAH {
            // AH after ESP; with ESP in tunnel mode the AH is applied in transport mode over it.
            span = try AHCodec.seal(&buffer, start: span.start, length: span.length, sa: ah, dontFragment: outerDF,
                                    identification: chosen)
            note(ah.account(bytes: ip.totalLength, now: now), ah)
        }
        return span
    }

    func sealFailed(_ error: DatapathDrop, policyID: Int) -> OutboundAction {
        policyCounters[policyID, default: PolicyCounters()].outDropped += 1
        let counter = error == .sequenceExhausted ? "out-state-sequence-errors" : "out-errors"
        count(counter)
        return .drop(counter: counter)
    }

    /// `processOutbound` on a packet of its own (tests and slow paths; the process works in place),
    /// with room after it for fragments.
    public func processOutbound(_ packet: [UInt8], now: UInt64) -> Outbound {
        let room = max(PacketRoom.tailroom, 4 * packet.count + 4 * (PacketRoom.headroom + PacketRoom.tailroom))
        var buffer = [UInt8](repeating: 0, count: PacketRoom.headroom + packet.count + room)
        for i in packet.indices { buffer[PacketRoom.headroom + i] = packet[i] }
        switch processOutbound(&buffer, start: PacketRoom.headroom, length: packet.count, now: now) {
        case .send(let s, let n, let destination, _): return .send(Array(buffer[s..<(s + n)]), destination: destination)
        case .sendUDP(let s, let n, let destination, let port, _):
            // The whole outer packet, its ESP part from `offset` (the IP header is just before it).
            let headerStart = s - 20
            return .sendUDP(Array(buffer[headerStart..<(s + n)]), offset: s - headerStart, destination: destination,
                            port: port)
        case .pass: return .pass
        case .drop(let counter): return .drop(counter: counter)
        case .acquire(let id): return .acquire(policyID: id)
        case .sendRun(let run, let destination, _):
            return .sendRun((0..<run.count).map { Array(buffer[run.start($0)..<(run.start($0) + run.length($0))]) },
                            destination: destination)
        case .tooBig(let s, let n, let mtu): return .tooBig(icmp: n > 0 ? Array(buffer[s..<(s + n)]) : nil, mtu: mtu)
        }
    }

    // MARK: inbound (ESP/AH from the raw sockets)

    /// Opens the ESP/AH packet at `buffer[start..<start+length]` in place and checks the inner
    /// packet against its SA's policy.
    public func processInbound(_ buffer: inout [UInt8], start: Int, length: Int, now: UInt64) -> InboundAction {
        var span = (start: start, length: length)
        var policyID: Int?
        // At most AH then ESP: a bundle is never deeper than two.
        for _ in 0..<2 {
            guard let ip = try? IPv4Header(buffer, at: span.start, length: span.length) else {
                return dropIn("in-header-errors")
            }
            guard ip.proto == 50 || ip.proto == 51 else { break }
            guard ip.totalLength >= ip.headerLength + 12 else { return dropIn("in-header-errors") }
            let spiOffset = span.start + ip.headerLength + (ip.proto == 50 ? 0 : 4)
            let spi = IPv4Header.u32(buffer, spiOffset)
            guard let entry = inbound[SAKey(destination: ip.destination, proto: ip.proto, spi: spi)] else {
                return dropIn("in-no-states")
            }
            guard entry.sa.state != .dead else { return dropIn("in-state-expired") }
            do {
                if ip.proto == 50 {
                    span = try ESPCodec.open(&buffer, start: span.start, length: span.length, sa: entry.sa)
                } else {
                    span = try AHCodec.open(&buffer, start: span.start, length: span.length, sa: entry.sa)
                }
            } catch {
                if let p = policyID ?? Optional(entry.policyID) {
                    policyCounters[p, default: PolicyCounters()].inDropped += 1
                }
                return dropIn(error.counter)
            }
            note(entry.sa.account(bytes: span.length, now: now), entry.sa)
            policyID = entry.policyID
        }
        guard let policyID else { return dropIn("in-no-states") }
        // The decrypted packet must match the policy its SA belongs to (mirrored), or it is dropped.
        guard let inner = try? IPv4Header(buffer, at: span.start, length: span.length) else {
            return dropIn("in-header-errors")
        }
        let matched = spd.lookupInbound(source: inner.source, destination: inner.destination, proto: inner.proto,
                                        ports: inner.ports(in: buffer, at: span.start))
        guard matched?.id == policyID else {
            policyCounters[policyID, default: PolicyCounters()].inDropped += 1
            return dropIn("in-policy-blocked")
        }
        // A SYN from the far side learns what our path toward it carries (PathMTUDiscovery.swift).
        if inner.proto == 6 { clampInboundMSS(&buffer, start: span.start, header: inner, policyID: policyID, now: now) }
        policyCounters[policyID, default: PolicyCounters()].inTransformed += 1
        return .deliver(start: span.start, length: span.length)
    }

    /// ESP that arrived in UDP at `buffer[start..<start+length]` (after the non-ESP marker check):
    /// found by SPI, then handled as if it had come in an IP packet from `source` to the SA's own
    /// address. The 20 bytes before `start` take that header.
    public func processInboundUDP(_ buffer: inout [UInt8], start: Int, length: Int, source: UInt32,
                                  now: UInt64) -> InboundAction {
        guard length >= 8, start >= 20 else { return dropIn("in-header-errors") }
        let spi = IPv4Header.u32(buffer, start)
        guard let key = udpInbound[spi], let entry = inbound[key] else { return dropIn("in-no-states") }
        let total = 20 + length
        guard total <= 65_535 else { return dropIn("in-header-errors") }
        IPv4Header.write(into: &buffer, at: start - 20, tos: 0, totalLength: total, identification: 0,
                         flagsAndOffset: 0, ttl: 64,
                         proto: 50, source: source, destination: entry.sa.destination)
        return processInbound(&buffer, start: start - 20, length: total, now: now)
    }

    /// `processInbound` on a packet of its own (tests and slow paths).
    public func processInbound(_ packet: consuming [UInt8], now: UInt64) -> Inbound {
        var buffer = consume packet
        switch processInbound(&buffer, start: 0, length: buffer.count, now: now) {
        case .deliver(let s, let n): return .deliver(Array(buffer[s..<(s + n)]))
        case .drop(let counter): return .drop(counter: counter)
        }
    }

    /// `processInboundUDP` on a payload of its own (tests and slow paths).
    public func processInboundUDP(_ payload: ArraySlice<UInt8>, source: UInt32, now: UInt64) -> Inbound {
        var buffer = [UInt8](repeating: 0, count: 20 + payload.count)
        for (i, b) in payload.enumerated() { buffer[20 + i] = b }
        switch processInboundUDP(&buffer, start: 20, length: payload.count, source: source, now: now) {
        case .deliver(let s, let n): return .deliver(Array(buffer[s..<(s + n)]))
        case .drop(let counter): return .drop(counter: counter)
        }
    }

    private func dropIn(_ counter: String) -> InboundAction {
        count(counter)
        return .drop(counter: counter)
    }

    private func drop(_ counter: String) -> Inbound {
        count(counter)
        return .drop(counter: counter)
    }

    /// Periodic lifetime checks; expiries are queued as events for IKE.
    public func tick(now: UInt64) {
        for sa in installedSAs { note(sa.check(now: now), sa) }
    }
}
