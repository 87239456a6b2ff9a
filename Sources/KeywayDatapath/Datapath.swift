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
    }

    public enum Inbound: Equatable {
        /// Write this inner packet to the TUN device ("received once more").
        case deliver([UInt8])
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
    public private(set) var statistics: [String: UInt64] = [:]
    public private(set) var policyCounters: [Int: PolicyCounters] = [:]
    private var outbound: [Int: (esp: SecurityAssociation?, ah: SecurityAssociation?)] = [:]
    private var inbound: [SAKey: (sa: SecurityAssociation, policyID: Int)] = [:]
    /// ESP-in-UDP arrives without our address in hand: such SAs are found by SPI.
    private var udpInbound: [UInt32: SAKey] = [:]
    public private(set) var events: [Event] = []

    public init(policies: [SecurityPolicy]) { spd = SPD(policies) }

    public func replacePolicies(_ policies: [SecurityPolicy]) { spd = SPD(policies) }

    public func installOutbound(_ sa: SecurityAssociation, policyID: Int) {
        var pair = outbound[policyID] ?? (nil, nil)
        if sa.proto == .esp { pair.esp = sa } else { pair.ah = sa }
        outbound[policyID] = pair
    }

    public func installInbound(_ sa: SecurityAssociation, policyID: Int) {
        let key = SAKey(destination: sa.destination, proto: sa.proto.rawValue, spi: sa.spi)
        inbound[key] = (sa, policyID)
        if sa.udpEncapsulation != nil { udpInbound[sa.spi] = key }
    }

    public func removeAllSAs() {
        outbound.removeAll()
        inbound.removeAll()
        udpInbound.removeAll()
    }

    /// Policies that can receive protected traffic now.
    var inboundPolicyIDsWithLiveSAs: [Int] { inbound.values.filter { $0.sa.state != .dead }.map(\.policyID) }

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
        return before - installedSAs.count
    }

    public func takeEvents() -> [Event] { defer { events.removeAll() }; return events }

    private func count(_ name: String) { statistics[name, default: 0] += 1 }

    private func note(_ e: SecurityAssociation.Event?, _ sa: SecurityAssociation) {
        if let e { events.append(.expire(spi: sa.spi, proto: sa.proto, hard: e == .hard)) }
    }

    // MARK: outbound (plaintext from the TUN device)

    public func processOutbound(_ packet: [UInt8], now: UInt64) -> Outbound {
        guard let ip = try? IPv4Header(packet) else { count("out-errors"); return .drop(counter: "out-errors") }
        let ports = ip.ports(in: packet)
        // IKE's own traffic is never subject to the SPD.
        if ip.proto == 17, let (s, d) = ports, [500, 4500].contains(s) || [500, 4500].contains(d) { return .pass }
        guard let policy = spd.lookup(source: ip.source, destination: ip.destination, proto: ip.proto, ports: ports) else { return .pass }
        switch policy.action {
        case .none:
            policyCounters[policy.id, default: PolicyCounters()].outAccepted += 1
            return .pass
        case .discard:
            policyCounters[policy.id, default: PolicyCounters()].outDropped += 1
            count("out-policy-blocked")
            return .drop(counter: "out-policy-blocked")
        case .encrypt:
            break
        }
        let pair = outbound[policy.id]
        let esp = pair?.esp.flatMap { $0.state == .dead ? nil : $0 }
        let ah = pair?.ah.flatMap { $0.state == .dead ? nil : $0 }
        guard (!policy.useESP || esp != nil) && (!policy.useAH || ah != nil) else {
            if policy.level == .use {
                policyCounters[policy.id, default: PolicyCounters()].outAccepted += 1
                return .pass
            }
            policyCounters[policy.id, default: PolicyCounters()].outDropped += 1
            count("out-no-states")
            return .acquire(policyID: policy.id)
        }
        var out = packet
        let df: Bool
        switch policy.dontFragment {
        case .clear: df = false
        case .inherit: df = ip.dontFragment
        case .set: df = true
        }
        do {
            if let esp, policy.useESP {
                out = try ESPCodec.encapsulate(out, sa: esp, dontFragment: df)
                note(esp.account(bytes: packet.count, now: now), esp)
            }
            if let ah, policy.useAH {
                // AH after ESP; with ESP in tunnel mode the AH is applied in transport mode over it.
                out = try AHCodec.encapsulate(out, sa: ah, dontFragment: df)
                note(ah.account(bytes: packet.count, now: now), ah)
            }
        } catch {
            policyCounters[policy.id, default: PolicyCounters()].outDropped += 1
            count(error == .sequenceExhausted ? "out-state-sequence-errors" : "out-errors")
            return .drop(counter: error == .sequenceExhausted ? "out-state-sequence-errors" : "out-errors")
        }
        policyCounters[policy.id, default: PolicyCounters()].outTransformed += 1
        // The outer header says where it goes: the peer in tunnel mode, the host itself in transport mode.
        let destination = IPv4Header.u32(out, 16)
        if let udp = esp?.udpEncapsulation, policy.useESP, !policy.useAH {
            return .sendUDP(out, offset: Int(out[0] & 0x0f) * 4, destination: destination, port: udp.remote)
        }
        return .send(out, destination: destination)
    }

    // MARK: inbound (ESP/AH from the raw sockets)

    /// Takes the packet over: a caller that passes a fresh array has it decrypted in place.
    public func processInbound(_ packet: consuming [UInt8], now: UInt64) -> Inbound {
        var current = consume packet
        var policyID: Int?
        // At most AH then ESP: a bundle is never deeper than two.
        for _ in 0..<2 {
            guard let ip = try? IPv4Header(current) else { return drop("in-header-errors") }
            guard ip.proto == 50 || ip.proto == 51 else { break }
            guard ip.totalLength >= ip.headerLength + 12 else { return drop("in-header-errors") }
            let spiOffset = ip.headerLength + (ip.proto == 50 ? 0 : 4)
            let spi = IPv4Header.u32(current, spiOffset)
            guard let entry = inbound[SAKey(destination: ip.destination, proto: ip.proto, spi: spi)] else { return drop("in-no-states") }
            guard entry.sa.state != .dead else { return drop("in-state-expired") }
            do {
                if ip.proto == 50 {
                    current = try ESPCodec.decapsulate(&current, sa: entry.sa)
                } else {
                    current = try AHCodec.decapsulate(current, sa: entry.sa)
                }
            } catch {
                if let p = policyID ?? Optional(entry.policyID) { policyCounters[p, default: PolicyCounters()].inDropped += 1 }
                return drop(error.counter)
            }
            note(entry.sa.account(bytes: current.count, now: now), entry.sa)
            policyID = entry.policyID
        }
        guard let policyID else { return drop("in-no-states") }
        // The decrypted packet must match the policy its SA belongs to (mirrored), or it is dropped.
        guard let inner = try? IPv4Header(current) else { return drop("in-header-errors") }
        let matched = spd.lookupInbound(source: inner.source, destination: inner.destination, proto: inner.proto, ports: inner.ports(in: current))
        guard matched?.id == policyID else {
            policyCounters[policyID, default: PolicyCounters()].inDropped += 1
            return drop("in-policy-blocked")
        }
        policyCounters[policyID, default: PolicyCounters()].inTransformed += 1
        return .deliver(current)
    }

    /// ESP that arrived in UDP (after the non-ESP marker check): found by SPI, then handled as if
    /// it had come in an IP packet from `source` to the SA's own address.
    public func processInboundUDP(_ payload: ArraySlice<UInt8>, source: UInt32, now: UInt64) -> Inbound {
        guard payload.count >= 8 else { return drop("in-header-errors") }
        let s = payload.startIndex
        let spi = UInt32(payload[s]) << 24 | UInt32(payload[s + 1]) << 16 | UInt32(payload[s + 2]) << 8 | UInt32(payload[s + 3])
        guard let key = udpInbound[spi], let entry = inbound[key] else { return drop("in-no-states") }
        let total = 20 + payload.count
        guard total <= 65_535 else { return drop("in-header-errors") }
        // One allocation: the header, then the payload straight from the receive buffer.
        var packet: [UInt8] = []
        packet.reserveCapacity(total)
        packet += [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 0, 0, 0, 64, 50, 0, 0]
        packet += [UInt8(source >> 24), UInt8(source >> 16 & 0xff), UInt8(source >> 8 & 0xff), UInt8(source & 0xff)]
        let d = entry.sa.destination
        packet += [UInt8(d >> 24), UInt8(d >> 16 & 0xff), UInt8(d >> 8 & 0xff), UInt8(d & 0xff)]
        IPv4Header.setChecksum(&packet, headerAt: 0, length: 20)
        packet += payload
        return processInbound(packet, now: now)
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
