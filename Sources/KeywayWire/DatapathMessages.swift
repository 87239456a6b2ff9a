import KeywayVocabulary

/// One direction of an SA to install, with its keys (the receiver wraps them in a Secret at once).
public struct SARecord: Sendable, Hashable {
    public var policyID: UInt32
    public var inbound: Bool
    public var proto: IPsecProtocol
    public var spi: UInt32
    public var source: IPv4Address, destination: IPv4Address
    public var tunnel: Bool
    public var encryption: EncryptionAlgorithm, integrity: IntegrityAlgorithm
    public var encryptionKey: [UInt8], integrityKey: [UInt8]
    /// Hard add-lifetime; 0 is none.
    public var lifetimeSeconds: UInt64
    /// 0 for each: none (soft: 80% of hard).
    public var softSeconds: UInt64 = 0, hardBytes: UInt64 = 0, softBytes: UInt64 = 0, useHardSeconds: UInt64 = 0
    /// Anti-replay window in packets (RouterOS shows it in bytes: 32 packets is `replay=4`).
    public var replayWindow: UInt32 = 32
    /// ESP in UDP (RFC 3948): our port and the peer's; 0 for plain ESP/AH.
    public var udpLocalPort: UInt16 = 0, udpRemotePort: UInt16 = 0
    /// Negotiated by IKE (not from a manual-sa); PFS was used.
    public var negotiated = false, pfs = false
    /// Outbound: the first sequence number to use is this plus one (after a datapath restart the
    /// monitor starts beyond what the peer has seen). Not part of the SA's identity.
    public var initialSequence: UInt32 = 0

    public static let maximumReplayWindow: UInt32 = 1 << 16

    public init(policyID: UInt32, inbound: Bool, proto: IPsecProtocol, spi: UInt32, source: IPv4Address,
                destination: IPv4Address, tunnel: Bool, encryption: EncryptionAlgorithm, integrity: IntegrityAlgorithm,
                encryptionKey: [UInt8], integrityKey: [UInt8], lifetimeSeconds: UInt64) {
        self.policyID = policyID; self.inbound = inbound; self.proto = proto; self.spi = spi; self.source = source
        self.destination = destination; self.tunnel = tunnel; self.encryption = encryption; self.integrity = integrity
        self.encryptionKey = encryptionKey; self.integrityKey = integrityKey; self.lifetimeSeconds = lifetimeSeconds
    }

    public static func == (a: SARecord, b: SARecord) -> Bool { a.identity == b.identity }
    public func hash(into h: inout Hasher) { h.combine(identity) }

    /// Everything but the starting sequence number: an unchanged record keeps its SA.
    private var identity: [UInt64] {
        [UInt64(policyID), inbound ? 1 : 0, UInt64(proto.rawValue), UInt64(spi), UInt64(source.value),
         UInt64(destination.value), tunnel ? 1 : 0, UInt64(Self.index(encryption)), UInt64(Self.index(integrity)),
         lifetimeSeconds, softSeconds, hardBytes, softBytes, useHardSeconds, UInt64(replayWindow),
         UInt64(udpLocalPort), UInt64(udpRemotePort), negotiated ? 1 : 0, pfs ? 1 : 0]
            + [UInt64(encryptionKey.count)] + encryptionKey.map(UInt64.init)
            + [UInt64(integrityKey.count)] + integrityKey.map(UInt64.init)
    }

    private static func index<E: CaseIterable & Equatable>(_ v: E) -> Int {
        E.allCases.firstIndex(of: v).map { E.allCases.distance(from: E.allCases.startIndex, to: $0) } ?? 0
    }

    public func encode(to w: inout WireWriter) {
        w.u32(policyID); w.bool(inbound); w.u8(proto.rawValue); w.u32(spi); w.address(source); w.address(destination)
        w.bool(tunnel); w.choice(encryption); w.choice(integrity); w.data(encryptionKey); w.data(integrityKey)
        w.u64(lifetimeSeconds); w.u64(softSeconds); w.u64(hardBytes); w.u64(softBytes); w.u64(useHardSeconds)
        w.u32(replayWindow); w.u16(udpLocalPort); w.u16(udpRemotePort); w.bool(negotiated); w.bool(pfs)
        w.u32(initialSequence)
    }

    public init(from r: inout WireReader) throws(WireError) {
        policyID = try r.u32(); inbound = try r.bool("sa.inbound")
        proto = try r.enumeration("sa.proto", IPsecProtocol.self)
        spi = try r.u32(); source = try r.address(); destination = try r.address(); tunnel = try r.bool("sa.tunnel")
        encryption = try r.choice("sa.encryption", EncryptionAlgorithm.self)
        integrity = try r.choice("sa.integrity", IntegrityAlgorithm.self)
        encryptionKey = try r.data(limit: 64); integrityKey = try r.data(limit: 128); lifetimeSeconds = try r.u64()
        softSeconds = try r.u64(); hardBytes = try r.u64(); softBytes = try r.u64(); useHardSeconds = try r.u64()
        replayWindow = try r.u32()
        udpLocalPort = try r.u16(); udpRemotePort = try r.u16(); negotiated = try r.bool("sa.negotiated")
        pfs = try r.bool("sa.pfs")
        initialSequence = try r.u32()
        guard replayWindow >= 32, replayWindow <= Self.maximumReplayWindow else {
            throw .invalidEnum(field: "sa.replay-window", value: replayWindow)
        }
    }
}

/// The monitor's whole view for the datapath: what may exist (and the configured policies, the
/// datapath's SPD), and the manual SAs with their keys. Replaces what was there before.
public struct DatapathConfig: WireMessage {
    public static let type = MessageType.datapathConfig
    public var generation: UInt64
    public var bounds: ConfigurationBounds
    public var sas: [SARecord]

    public init(generation: UInt64, bounds: ConfigurationBounds, sas: [SARecord]) {
        self.generation = generation; self.bounds = bounds; self.sas = sas
    }

    public var policies: [PolicyRecord] { bounds.policies.map(\.policy) }

    public func encode(to w: inout WireWriter) {
        w.u64(generation)
        bounds.encode(to: &w)
        w.count32(sas.count); for s in sas { s.encode(to: &w) }
    }
    public init(from r: inout WireReader) throws(WireError) {
        generation = try r.u64()
        bounds = try ConfigurationBounds(from: &r)
        var ss: [SARecord] = []
        for _ in 0..<(try r.count32(limit: ScaleLimits.manualSARecords)) { ss.append(try SARecord(from: &r)) }
        sas = ss
    }
}

/// One installed SA as `installed-sa print` shows it (no keys: the monitor has those).
public struct SAStatus: Sendable, Equatable {
    public var spi: UInt32
    public var proto: UInt8
    public var source: UInt32, destination: UInt32
    public var encryption: String, integrity: String
    /// larval, mature, dying, dead.
    public var state: String
    public var ageSeconds: UInt64
    /// 0: never used. Otherwise seconds since first use.
    public var sinceFirstUse: UInt64
    public var used: Bool
    public var bytes: UInt64
    public var replayWindow: UInt32
    public var softSeconds: UInt64, hardSeconds: UInt64, softBytes: UInt64, hardBytes: UInt64
    public var useSoftSeconds: UInt64 = 0, useHardSeconds: UInt64 = 0
    /// Keyed by IKE with perfect forward secrecy (flag P).
    public var pfs = false
    /// Outbound SAs: the last sequence number sent.
    public var sequence: UInt32 = 0
    /// Bytes IPsec adds to the largest packet that fits the path (SAStatus.maximumOverhead at most).
    public var overhead: UInt16 = 0
    /// Outbound SAs: the path MTU toward the destination now (0: not known, inbound SAs).
    public var pathMTU: UInt16 = 0

    /// Larger than any transform adds (ESP tunnel with the largest IV, padding and ICV, UDP, AH).
    public static let maximumOverhead: UInt16 = 512

    public init(spi: UInt32, proto: UInt8, source: UInt32, destination: UInt32, encryption: String, integrity: String,
                state: String,
                ageSeconds: UInt64, sinceFirstUse: UInt64, used: Bool, bytes: UInt64, replayWindow: UInt32,
                softSeconds: UInt64, hardSeconds: UInt64, softBytes: UInt64, hardBytes: UInt64, overhead: UInt16 = 0,
                pathMTU: UInt16 = 0) {
        self.spi = spi; self.proto = proto; self.source = source; self.destination = destination
        self.encryption = encryption; self.integrity = integrity; self.state = state; self.ageSeconds = ageSeconds
        self.sinceFirstUse = sinceFirstUse; self.used = used; self.bytes = bytes; self.replayWindow = replayWindow
        self.softSeconds = softSeconds; self.hardSeconds = hardSeconds; self.softBytes = softBytes
        self.hardBytes = hardBytes
        self.overhead = overhead; self.pathMTU = pathMTU
    }

    func encode(to w: inout WireWriter) {
        w.u32(spi); w.u8(proto); w.u32(source); w.u32(destination); w.string(encryption); w.string(integrity)
        w.string(state)
        w.u64(ageSeconds); w.u64(sinceFirstUse); w.bool(used); w.u64(bytes); w.u32(replayWindow)
        w.u64(softSeconds); w.u64(hardSeconds); w.u64(softBytes); w.u64(hardBytes); w.u64(useSoftSeconds)
        w.u64(useHardSeconds)
        w.bool(pfs); w.u32(sequence); w.u16(overhead); w.u16(pathMTU)
    }

    init(from r: inout WireReader) throws(WireError) {
        spi = try r.u32(); proto = try r.u8(); source = try r.u32(); destination = try r.u32()
        encryption = try r.string("sa.encryption", limit: 32); integrity = try r.string("sa.integrity", limit: 32)
        state = try r.string("sa.state", limit: 16); ageSeconds = try r.u64(); sinceFirstUse = try r.u64()
        used = try r.bool("sa.used"); bytes = try r.u64(); replayWindow = try r.u32()
        softSeconds = try r.u64(); hardSeconds = try r.u64(); softBytes = try r.u64(); hardBytes = try r.u64()
        useSoftSeconds = try r.u64(); useHardSeconds = try r.u64()
        pfs = try r.bool("sa.pfs"); sequence = try r.u32()
        overhead = try r.u16(); pathMTU = try r.u16()
        guard overhead <= Self.maximumOverhead else {
            throw .invalidEnum(field: "sa.overhead", value: UInt32(overhead))
        }
        guard pathMTU == 0 || pathMTU >= 68 else { throw .invalidEnum(field: "sa.path-mtu", value: UInt32(pathMTU)) }
    }
}

public struct PolicyStatus: Sendable, Equatable {
    public var id: UInt32
    public var inAccepted: UInt64, inDropped: UInt64, inTransformed: UInt64
    public var outAccepted: UInt64, outDropped: UInt64, outTransformed: UInt64
    public var established: Bool

    public init(id: UInt32, inAccepted: UInt64, inDropped: UInt64, inTransformed: UInt64, outAccepted: UInt64,
                outDropped: UInt64,
                outTransformed: UInt64, established: Bool) {
        self.id = id; self.inAccepted = inAccepted; self.inDropped = inDropped; self.inTransformed = inTransformed
        self.outAccepted = outAccepted; self.outDropped = outDropped; self.outTransformed = outTransformed
        self.established = established
    }
}

/// The datapath's live state for printouts, pushed every second and after changes.
public struct DatapathState: WireMessage {
    public static let type = MessageType.datapathState
    public var sas: [SAStatus]
    public var policies: [PolicyStatus]
    public var statistics: [Counter]
    /// Requests from keyway-ike the datapath refused (checked against the configuration).
    public var refusedFromIKE: UInt64 = 0
    /// The TUN device's offloads in use ("csum", "tso4", "gro"); empty: none.
    public var offloads: [String] = []

    public init(sas: [SAStatus], policies: [PolicyStatus], statistics: [Counter], refusedFromIKE: UInt64 = 0) {
        self.sas = sas; self.policies = policies; self.statistics = statistics; self.refusedFromIKE = refusedFromIKE
    }
    public func encode(to w: inout WireWriter) {
        w.count32(sas.count); for s in sas { s.encode(to: &w) }
        w.count32(policies.count)
        for p in policies {
            w.u32(p.id)
            for v in [p.inAccepted, p.inDropped, p.inTransformed, p.outAccepted, p.outDropped, p.outTransformed] {
                w.u64(v)
            }
            w.bool(p.established)
        }
        w.count(statistics.count); for c in statistics { w.string(c.name); w.u64(c.value) }
        w.u64(refusedFromIKE)
        w.count(offloads.count); for o in offloads { w.string(o) }
    }
    public init(from r: inout WireReader) throws(WireError) {
        var ss: [SAStatus] = []
        for _ in 0..<(try r.count32(limit: ScaleLimits.installedSAs)) { ss.append(try SAStatus(from: &r)) }
        var ps: [PolicyStatus] = []
        for _ in 0..<(try r.count32(limit: ScaleLimits.policies + ScaleLimits.generatedPolicies)) {
            let id = try r.u32()
            ps.append(PolicyStatus(id: id, inAccepted: try r.u64(), inDropped: try r.u64(), inTransformed: try r.u64(),
                                   outAccepted: try r.u64(), outDropped: try r.u64(), outTransformed: try r.u64(),
                                   established: try r.bool("policy.established")))
        }
        var cs: [Counter] = []
        for _ in 0..<(try r.count(limit: 256)) {
            cs.append(Counter(name: try r.string("statistic", limit: 64), value: try r.u64()))
        }
        sas = ss; policies = ps; statistics = cs
        refusedFromIKE = try r.u64()
        var list: [String] = []
        for _ in 0..<(try r.count(limit: 16)) { list.append(try r.string("datapath.offload", limit: 16)) }
        offloads = list
    }
}

/// `/ip ipsec installed-sa flush`: the monitor asks the datapath to drop installed SAs.
public struct FlushSAs: WireMessage {
    public static let type = MessageType.flushSAs
    /// 0: all; 50: ESP; 51: AH.
    public var proto: UInt8

    public init(proto: UInt8) { self.proto = proto }

    public func encode(to w: inout WireWriter) { w.u8(proto) }

    public init(from r: inout WireReader) throws(WireError) {
        proto = try r.u8()
        guard [0, 50, 51].contains(proto) else { throw .invalidEnum(field: "flush.proto", value: UInt32(proto)) }
    }
}
