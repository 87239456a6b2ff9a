/// A policy as the datapath needs it (the monitor resolves names and drops inactive ones).
public struct PolicyRecord: Sendable, Equatable {
    public var id: UInt32
    public var source: UInt32, sourceLength: UInt8, sourcePort: UInt16
    public var destination: UInt32, destinationLength: UInt8, destinationPort: UInt16
    /// 255: any protocol. Ports are 0 for any.
    public var proto: UInt8
    /// 0 none, 1 discard, 2 encrypt.
    public var action: UInt8
    /// 0 use, 1 require, 2 unique.
    public var level: UInt8
    public var esp: Bool, ah: Bool, tunnel: Bool
    public var saSource: UInt32, saDestination: UInt32
    public var priority: Int32
    /// 0 clear, 1 inherit, 2 set.
    public var dontFragment: UInt8

    public init(id: UInt32, source: UInt32, sourceLength: UInt8, sourcePort: UInt16, destination: UInt32, destinationLength: UInt8,
                destinationPort: UInt16, proto: UInt8, action: UInt8, level: UInt8, esp: Bool, ah: Bool, tunnel: Bool,
                saSource: UInt32, saDestination: UInt32, priority: Int32, dontFragment: UInt8) {
        self.id = id; self.source = source; self.sourceLength = sourceLength; self.sourcePort = sourcePort
        self.destination = destination; self.destinationLength = destinationLength; self.destinationPort = destinationPort
        self.proto = proto; self.action = action; self.level = level; self.esp = esp; self.ah = ah; self.tunnel = tunnel
        self.saSource = saSource; self.saDestination = saDestination; self.priority = priority; self.dontFragment = dontFragment
    }

    func encode(to w: inout WireWriter) {
        w.u32(id); w.u32(source); w.u8(sourceLength); w.u16(sourcePort); w.u32(destination); w.u8(destinationLength); w.u16(destinationPort)
        w.u8(proto); w.u8(action); w.u8(level); w.bool(esp); w.bool(ah); w.bool(tunnel); w.u32(saSource); w.u32(saDestination)
        w.u32(UInt32(bitPattern: priority)); w.u8(dontFragment)
    }

    init(from r: inout WireReader) throws(WireError) {
        id = try r.u32(); source = try r.u32(); sourceLength = try r.u8(); sourcePort = try r.u16()
        destination = try r.u32(); destinationLength = try r.u8(); destinationPort = try r.u16()
        proto = try r.u8(); action = try r.u8(); level = try r.u8()
        esp = try r.bool("policy.esp"); ah = try r.bool("policy.ah"); tunnel = try r.bool("policy.tunnel")
        saSource = try r.u32(); saDestination = try r.u32(); priority = Int32(bitPattern: try r.u32()); dontFragment = try r.u8()
        guard sourceLength <= 32, destinationLength <= 32 else { throw .invalidEnum(field: "policy.prefix-length", value: UInt32(max(sourceLength, destinationLength))) }
        guard action <= 2 else { throw .invalidEnum(field: "policy.action", value: UInt32(action)) }
        guard level <= 2 else { throw .invalidEnum(field: "policy.level", value: UInt32(level)) }
        guard dontFragment <= 2 else { throw .invalidEnum(field: "policy.dont-fragment", value: UInt32(dontFragment)) }
    }
}

/// One direction of an SA to install, with its keys (the receiver wraps them in a Secret at once).
public struct SARecord: Sendable, Hashable {
    public var policyID: UInt32
    public var inbound: Bool
    /// 50 ESP, 51 AH.
    public var proto: UInt8
    public var spi: UInt32
    public var source: UInt32, destination: UInt32
    public var tunnel: Bool
    /// RouterOS names: "aes-128", "sha1", "null".
    public var encryption: String, integrity: String
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

    public init(policyID: UInt32, inbound: Bool, proto: UInt8, spi: UInt32, source: UInt32, destination: UInt32, tunnel: Bool,
                encryption: String, integrity: String, encryptionKey: [UInt8], integrityKey: [UInt8], lifetimeSeconds: UInt64) {
        self.policyID = policyID; self.inbound = inbound; self.proto = proto; self.spi = spi; self.source = source
        self.destination = destination; self.tunnel = tunnel; self.encryption = encryption; self.integrity = integrity
        self.encryptionKey = encryptionKey; self.integrityKey = integrityKey; self.lifetimeSeconds = lifetimeSeconds
    }

    public static func == (a: SARecord, b: SARecord) -> Bool { a.identity == b.identity }
    public func hash(into h: inout Hasher) { h.combine(identity) }

    private var identity: [String] {
        [String(policyID), String(inbound), String(proto), String(spi), String(source), String(destination), String(tunnel),
         encryption, integrity, encryptionKey.map(String.init).joined(separator: ","), integrityKey.map(String.init).joined(separator: ","),
         String(lifetimeSeconds), String(softSeconds), String(hardBytes), String(softBytes), String(useHardSeconds), String(replayWindow),
         String(udpLocalPort), String(udpRemotePort), String(negotiated), String(pfs)]
    }

    public func encode(to w: inout WireWriter) {
        w.u32(policyID); w.bool(inbound); w.u8(proto); w.u32(spi); w.u32(source); w.u32(destination); w.bool(tunnel)
        w.string(encryption); w.string(integrity); w.data(encryptionKey); w.data(integrityKey); w.u64(lifetimeSeconds)
        w.u64(softSeconds); w.u64(hardBytes); w.u64(softBytes); w.u64(useHardSeconds); w.u32(replayWindow)
        w.u16(udpLocalPort); w.u16(udpRemotePort); w.bool(negotiated); w.bool(pfs)
        w.u32(initialSequence)
    }

    public init(from r: inout WireReader) throws(WireError) {
        policyID = try r.u32(); inbound = try r.bool("sa.inbound"); proto = try r.u8(); spi = try r.u32()
        source = try r.u32(); destination = try r.u32(); tunnel = try r.bool("sa.tunnel")
        encryption = try r.string("sa.encryption", limit: 32); integrity = try r.string("sa.integrity", limit: 32)
        encryptionKey = try r.data(limit: 64); integrityKey = try r.data(limit: 128); lifetimeSeconds = try r.u64()
        softSeconds = try r.u64(); hardBytes = try r.u64(); softBytes = try r.u64(); useHardSeconds = try r.u64(); replayWindow = try r.u32()
        udpLocalPort = try r.u16(); udpRemotePort = try r.u16(); negotiated = try r.bool("sa.negotiated"); pfs = try r.bool("sa.pfs")
        initialSequence = try r.u32()
        guard proto == 50 || proto == 51 else { throw .invalidEnum(field: "sa.proto", value: UInt32(proto)) }
        guard replayWindow >= 32, replayWindow <= Self.maximumReplayWindow else { throw .invalidEnum(field: "sa.replay-window", value: replayWindow) }
    }
}

/// The monitor's whole view for the datapath: replaces what was there before.
public struct DatapathConfig: WireMessage {
    public static let type = MessageType.datapathConfig
    public static let maximumPolicies = 4096
    public var generation: UInt64
    public var policies: [PolicyRecord]
    public var sas: [SARecord]

    public init(generation: UInt64, policies: [PolicyRecord], sas: [SARecord]) {
        self.generation = generation; self.policies = policies; self.sas = sas
    }
    public func encode(to w: inout WireWriter) {
        w.u64(generation)
        w.count(policies.count); for p in policies { p.encode(to: &w) }
        w.count(sas.count); for s in sas { s.encode(to: &w) }
    }
    public init(from r: inout WireReader) throws(WireError) {
        generation = try r.u64()
        var ps: [PolicyRecord] = []
        for _ in 0..<(try r.count(limit: Self.maximumPolicies)) { ps.append(try PolicyRecord(from: &r)) }
        var ss: [SARecord] = []
        for _ in 0..<(try r.count(limit: 2 * Self.maximumPolicies)) { ss.append(try SARecord(from: &r)) }
        policies = ps; sas = ss
    }
}

/// The datapath asks keywayd for routes into its TUN device: the whole wanted set each time.
/// keywayd installs only routes via Keyway's own TUN device, whatever this says. `source`, when
/// not 0, is the address the host should send from (a transport policy's sa-src-address), so
/// that routing into the TUN device does not change which address local traffic leaves with.
public struct RouteSet: WireMessage {
    public static let type = MessageType.routeSet
    public static let maximumRoutes = 4096
    public var prefixes: [(address: UInt32, length: UInt8, source: UInt32)]

    public init(prefixes: [(address: UInt32, length: UInt8, source: UInt32)]) { self.prefixes = prefixes }
    public static func == (a: RouteSet, b: RouteSet) -> Bool { a.prefixes.elementsEqual(b.prefixes, by: { $0 == $1 }) }
    public func encode(to w: inout WireWriter) { w.count(prefixes.count); for p in prefixes { w.u32(p.address); w.u8(p.length); w.u32(p.source) } }
    public init(from r: inout WireReader) throws(WireError) {
        var out: [(UInt32, UInt8, UInt32)] = []
        for _ in 0..<(try r.count(limit: Self.maximumRoutes)) {
            let a = try r.u32(), l = try r.u8(), source = try r.u32()
            guard l <= 32 else { throw .invalidEnum(field: "route.length", value: UInt32(l)) }
            out.append((a, l, source))
        }
        prefixes = out
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

    public init(spi: UInt32, proto: UInt8, source: UInt32, destination: UInt32, encryption: String, integrity: String, state: String,
                ageSeconds: UInt64, sinceFirstUse: UInt64, used: Bool, bytes: UInt64, replayWindow: UInt32,
                softSeconds: UInt64, hardSeconds: UInt64, softBytes: UInt64, hardBytes: UInt64) {
        self.spi = spi; self.proto = proto; self.source = source; self.destination = destination
        self.encryption = encryption; self.integrity = integrity; self.state = state; self.ageSeconds = ageSeconds
        self.sinceFirstUse = sinceFirstUse; self.used = used; self.bytes = bytes; self.replayWindow = replayWindow
        self.softSeconds = softSeconds; self.hardSeconds = hardSeconds; self.softBytes = softBytes; self.hardBytes = hardBytes
    }

    func encode(to w: inout WireWriter) {
        w.u32(spi); w.u8(proto); w.u32(source); w.u32(destination); w.string(encryption); w.string(integrity); w.string(state)
        w.u64(ageSeconds); w.u64(sinceFirstUse); w.bool(used); w.u64(bytes); w.u32(replayWindow)
        w.u64(softSeconds); w.u64(hardSeconds); w.u64(softBytes); w.u64(hardBytes); w.u64(useSoftSeconds); w.u64(useHardSeconds)
        w.bool(pfs); w.u32(sequence)
    }

    init(from r: inout WireReader) throws(WireError) {
        spi = try r.u32(); proto = try r.u8(); source = try r.u32(); destination = try r.u32()
        encryption = try r.string("sa.encryption", limit: 32); integrity = try r.string("sa.integrity", limit: 32)
        state = try r.string("sa.state", limit: 16); ageSeconds = try r.u64(); sinceFirstUse = try r.u64()
        used = try r.bool("sa.used"); bytes = try r.u64(); replayWindow = try r.u32()
        softSeconds = try r.u64(); hardSeconds = try r.u64(); softBytes = try r.u64(); hardBytes = try r.u64()
        useSoftSeconds = try r.u64(); useHardSeconds = try r.u64()
        pfs = try r.bool("sa.pfs"); sequence = try r.u32()
    }
}

public struct PolicyStatus: Sendable, Equatable {
    public var id: UInt32
    public var inAccepted: UInt64, inDropped: UInt64, inTransformed: UInt64
    public var outAccepted: UInt64, outDropped: UInt64, outTransformed: UInt64
    public var established: Bool

    public init(id: UInt32, inAccepted: UInt64, inDropped: UInt64, inTransformed: UInt64, outAccepted: UInt64, outDropped: UInt64,
                outTransformed: UInt64, established: Bool) {
        self.id = id; self.inAccepted = inAccepted; self.inDropped = inDropped; self.inTransformed = inTransformed
        self.outAccepted = outAccepted; self.outDropped = outDropped; self.outTransformed = outTransformed; self.established = established
    }
}

/// The datapath's live state for printouts, pushed every second and after changes.
public struct DatapathState: WireMessage {
    public static let type = MessageType.datapathState
    public var sas: [SAStatus]
    public var policies: [PolicyStatus]
    public var statistics: [Counter]

    public init(sas: [SAStatus], policies: [PolicyStatus], statistics: [Counter]) {
        self.sas = sas; self.policies = policies; self.statistics = statistics
    }
    public func encode(to w: inout WireWriter) {
        w.count(sas.count); for s in sas { s.encode(to: &w) }
        w.count(policies.count)
        for p in policies {
            w.u32(p.id)
            for v in [p.inAccepted, p.inDropped, p.inTransformed, p.outAccepted, p.outDropped, p.outTransformed] { w.u64(v) }
            w.bool(p.established)
        }
        w.count(statistics.count); for c in statistics { w.string(c.name); w.u64(c.value) }
    }
    public init(from r: inout WireReader) throws(WireError) {
        var ss: [SAStatus] = []
        for _ in 0..<(try r.count(limit: 2 * DatapathConfig.maximumPolicies)) { ss.append(try SAStatus(from: &r)) }
        var ps: [PolicyStatus] = []
        for _ in 0..<(try r.count(limit: DatapathConfig.maximumPolicies)) {
            let id = try r.u32()
            ps.append(PolicyStatus(id: id, inAccepted: try r.u64(), inDropped: try r.u64(), inTransformed: try r.u64(),
                                   outAccepted: try r.u64(), outDropped: try r.u64(), outTransformed: try r.u64(),
                                   established: try r.bool("policy.established")))
        }
        var cs: [Counter] = []
        for _ in 0..<(try r.count(limit: 256)) { cs.append(Counter(name: try r.string("statistic", limit: 64), value: try r.u64())) }
        sas = ss; policies = ps; statistics = cs
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

/// The datapath's incoming policy check, for keywayd to enforce in the firewall: in order, the
/// first rule a plaintext packet from the network matches decides whether it is dropped.
public struct IncomingFilter: WireMessage {
    public static let type = MessageType.incomingFilter
    public static let maximumRules = 4096

    public struct Rule: Sendable, Equatable {
        public var source: UInt32, sourceLength: UInt8
        public var destination: UInt32, destinationLength: UInt8
        /// 255: any protocol. Ports 0: any.
        public var proto: UInt8
        public var sourcePort: UInt16, destinationPort: UInt16
        public var drop: Bool

        public init(source: UInt32, sourceLength: UInt8, destination: UInt32, destinationLength: UInt8, proto: UInt8,
                    sourcePort: UInt16, destinationPort: UInt16, drop: Bool) {
            self.source = source; self.sourceLength = sourceLength; self.destination = destination
            self.destinationLength = destinationLength; self.proto = proto; self.sourcePort = sourcePort
            self.destinationPort = destinationPort; self.drop = drop
        }
    }

    public var rules: [Rule]

    public init(rules: [Rule]) { self.rules = rules }

    public func encode(to w: inout WireWriter) {
        w.count(rules.count)
        for r in rules {
            w.u32(r.source); w.u8(r.sourceLength); w.u32(r.destination); w.u8(r.destinationLength)
            w.u8(r.proto); w.u16(r.sourcePort); w.u16(r.destinationPort); w.bool(r.drop)
        }
    }

    public init(from r: inout WireReader) throws(WireError) {
        var out: [Rule] = []
        for _ in 0..<(try r.count(limit: Self.maximumRules)) {
            let rule = Rule(source: try r.u32(), sourceLength: try r.u8(), destination: try r.u32(), destinationLength: try r.u8(),
                            proto: try r.u8(), sourcePort: try r.u16(), destinationPort: try r.u16(), drop: try r.bool("filter.drop"))
            guard rule.sourceLength <= 32 else { throw .invalidEnum(field: "filter.source-length", value: UInt32(rule.sourceLength)) }
            guard rule.destinationLength <= 32 else { throw .invalidEnum(field: "filter.destination-length", value: UInt32(rule.destinationLength)) }
            out.append(rule)
        }
        rules = out
    }
}
