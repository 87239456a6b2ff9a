import KeywayVocabulary

/// A policy as the other processes need it (the monitor resolves names and drops inactive ones).
public struct PolicyRecord: Sendable, Equatable {
    public var id: UInt32
    public var selector: TrafficSelector
    public var action: PolicyAction
    public var level: PolicyLevel
    public var esp: Bool, ah: Bool
    public var tunnel: Bool
    public var saSource: IPv4Address, saDestination: IPv4Address
    public var priority: Int32
    public var dontFragment: DontFragment
    /// Keyway's extension: what happens to the MSS of TCP SYNs through this policy.
    public var tcpMSS: TCPMSSClamp

    public init(id: UInt32, selector: TrafficSelector, action: PolicyAction = .encrypt, level: PolicyLevel = .require,
                esp: Bool = true, ah: Bool = false, tunnel: Bool, saSource: IPv4Address, saDestination: IPv4Address,
                priority: Int32 = 0, dontFragment: DontFragment = .clear, tcpMSS: TCPMSSClamp = .clampToPathMTU) {
        self.id = id; self.selector = selector; self.action = action; self.level = level; self.esp = esp; self.ah = ah
        self.tunnel = tunnel; self.saSource = saSource; self.saDestination = saDestination; self.priority = priority
        self.dontFragment = dontFragment; self.tcpMSS = tcpMSS
    }

    func encode(to w: inout WireWriter) {
        w.u32(id); w.selector(selector); w.choice(action); w.choice(level); w.bool(esp); w.bool(ah); w.bool(tunnel)
        w.address(saSource); w.address(saDestination); w.u32(UInt32(bitPattern: priority)); w.choice(dontFragment)
        w.tcpMSS(tcpMSS)
    }

    init(from r: inout WireReader) throws(WireError) {
        id = try r.u32(); selector = try r.selector("policy")
        action = try r.choice("policy.action", PolicyAction.self)
        level = try r.choice("policy.level", PolicyLevel.self)
        esp = try r.bool("policy.esp"); ah = try r.bool("policy.ah"); tunnel = try r.bool("policy.tunnel")
        saSource = try r.address(); saDestination = try r.address()
        priority = Int32(bitPattern: try r.u32())
        dontFragment = try r.choice("policy.dont-fragment", DontFragment.self)
        tcpMSS = try r.tcpMSS("policy.tcp-mss")
    }
}

/// A configured policy and how it may be keyed: by a manual-sa (only the monitor installs its SAs)
/// or by IKE with the algorithms of its proposal.
public struct AllowedPolicy: Sendable, Equatable {
    public var policy: PolicyRecord
    public var manual: Bool
    public var encryption: [EncryptionAlgorithm]
    public var integrity: [IntegrityAlgorithm]

    public init(policy: PolicyRecord, manual: Bool, encryption: [EncryptionAlgorithm],
                integrity: [IntegrityAlgorithm]) {
        self.policy = policy; self.manual = manual; self.encryption = encryption; self.integrity = integrity
    }

    func encode(to w: inout WireWriter) {
        policy.encode(to: &w); w.bool(manual); w.choices(encryption); w.choices(integrity)
    }

    init(from r: inout WireReader) throws(WireError) {
        policy = try PolicyRecord(from: &r); manual = try r.bool("allowed.manual")
        encryption = try r.choices("allowed.encryption", EncryptionAlgorithm.self)
        integrity = try r.choices("allowed.integrity", IntegrityAlgorithm.self)
    }
}

/// An enabled `/ip ipsec peer`: its address, and whether it may make Keyway generate policies.
public struct AllowedPeer: Sendable, Equatable {
    public var address: IPv4Prefix
    public var generatePolicy: Bool
    /// ESP may travel in UDP (8 bytes more per packet: keywayd's TUN MTU counts them).
    public var natTraversal: Bool

    public init(address: IPv4Prefix, generatePolicy: Bool, natTraversal: Bool = false) {
        self.address = address; self.generatePolicy = generatePolicy; self.natTraversal = natTraversal
    }

    func encode(to w: inout WireWriter) { w.prefix(address); w.bool(generatePolicy); w.bool(natTraversal) }
    init(from r: inout WireReader) throws(WireError) {
        address = try r.prefix("peer.address"); generatePolicy = try r.bool("peer.generate")
        natTraversal = try r.bool("peer.nat-traversal")
    }
}

/// What the configuration allows to exist. keyway-monitor, the one authority on configuration,
/// sends it to keywayd and keyway-datapath, which check every other process's requests against it.
public struct ConfigurationBounds: Sendable, Equatable {
    public static let maximumPolicies = ScaleLimits.policies
    public static let maximumPeers = ScaleLimits.peers
    /// The active configured policies, in configured order.
    public var policies: [AllowedPolicy] { didSet { index = Self.index(policies) } }
    public var peers: [AllowedPeer]
    /// What generated policies are keyed with (the `default` proposal).
    public var generatedEncryption: [EncryptionAlgorithm]
    public var generatedIntegrity: [IntegrityAlgorithm]
    /// Position of each policy by id (the first, should ids repeat): checks look policies up per
    /// SA, and a linear search per SA over 100,000 policies would not do.
    private var index: [UInt32: Int]

    public init(policies: [AllowedPolicy], peers: [AllowedPeer], generatedEncryption: [EncryptionAlgorithm] = [],
                generatedIntegrity: [IntegrityAlgorithm] = []) {
        self.policies = policies; self.peers = peers
        self.generatedEncryption = generatedEncryption; self.generatedIntegrity = generatedIntegrity
        index = Self.index(policies)
    }

    private static func index(_ policies: [AllowedPolicy]) -> [UInt32: Int] {
        var out: [UInt32: Int] = [:]
        out.reserveCapacity(policies.count)
        for (i, p) in policies.enumerated() where out[p.policy.id] == nil { out[p.policy.id] = i }
        return out
    }

    /// The configured policy with this id.
    public func policy(id: UInt32) -> AllowedPolicy? { index[id].map { policies[$0] } }

    public static func == (a: ConfigurationBounds, b: ConfigurationBounds) -> Bool {
        a.policies == b.policies && a.peers == b.peers && a.generatedEncryption == b.generatedEncryption
            && a.generatedIntegrity == b.generatedIntegrity
    }

    /// The peer entry IKE would use for `address`: the most specific one containing it.
    public func peer(for address: IPv4Address) -> AllowedPeer? {
        peers.filter { $0.address.contains(address) }.max { $0.address.length < $1.address.length }
    }

    func encode(to w: inout WireWriter) {
        w.count32(policies.count); for p in policies { p.encode(to: &w) }
        w.count32(peers.count); for p in peers { p.encode(to: &w) }
        w.choices(generatedEncryption); w.choices(generatedIntegrity)
    }

    init(from r: inout WireReader) throws(WireError) {
        var ps: [AllowedPolicy] = [], peerList: [AllowedPeer] = []
        let n = try r.count32(limit: Self.maximumPolicies)
        ps.reserveCapacity(n)
        for _ in 0..<n { ps.append(try AllowedPolicy(from: &r)) }
        for _ in 0..<(try r.count32(limit: Self.maximumPeers)) { peerList.append(try AllowedPeer(from: &r)) }
        policies = ps; peers = peerList
        generatedEncryption = try r.choices("bounds.generated-encryption", EncryptionAlgorithm.self)
        generatedIntegrity = try r.choices("bounds.generated-integrity", IntegrityAlgorithm.self)
        index = Self.index(ps)
    }
}

/// keyway-monitor to keywayd, before it pushes a configuration anywhere else: what may exist.
/// keywayd derives its routes and the incoming-check firewall table from this alone.
public struct PolicyAuthority: WireMessage {
    public static let type = MessageType.policyAuthority
    public var generation: UInt64
    public var bounds: ConfigurationBounds

    public init(generation: UInt64, bounds: ConfigurationBounds) { self.generation = generation; self.bounds = bounds }
    public func encode(to w: inout WireWriter) { w.u64(generation); bounds.encode(to: &w) }
    public init(from r: inout WireReader) throws(WireError) {
        generation = try r.u64(); bounds = try ConfigurationBounds(from: &r)
    }
}

/// keywayd to keyway-ike and keyway-datapath: the appliance's own addresses, which no generated
/// policy may cover.
public struct HostAddresses: WireMessage {
    public static let type = MessageType.hostAddresses
    public static let maximumAddresses = 1024
    public var addresses: [IPAddress]

    public init(addresses: [IPAddress]) { self.addresses = addresses }
    public func encode(to w: inout WireWriter) { w.count(addresses.count); for a in addresses { w.ipAddress(a) } }
    public init(from r: inout WireReader) throws(WireError) {
        var out: [IPAddress] = []
        for _ in 0..<(try r.count(limit: Self.maximumAddresses)) { out.append(try r.ipAddress("host-address")) }
        addresses = out
    }

    public var ipv4: [IPv4Address] { addresses.map { switch $0 { case .v4(let a): return a } } }
}

/// keyway-datapath to keywayd: the generated policies it holds now (the whole set). keywayd checks
/// each against the configuration and routes the far side of the ones it accepts into the TUN
/// device; routes for configured policies it derives itself.
public struct GeneratedPolicySet: WireMessage {
    public static let type = MessageType.generatedPolicySet
    public var policies: [PolicyRecord]

    public init(policies: [PolicyRecord]) { self.policies = policies }
    public func encode(to w: inout WireWriter) { w.count32(policies.count); for p in policies { p.encode(to: &w) } }
    public init(from r: inout WireReader) throws(WireError) {
        var out: [PolicyRecord] = []
        for _ in 0..<(try r.count32(limit: ScaleLimits.generatedPolicies)) {
            out.append(try PolicyRecord(from: &r))
        }
        policies = out
    }
}

/// keywayd to keyway-monitor: how many requests (and malformed or unexpected messages) it refused
/// from each child, for `keyway status`.
public struct RefusalReport: WireMessage {
    public static let type = MessageType.refusalReport
    public var refused: [Role: UInt64]

    public init(refused: [Role: UInt64]) { self.refused = refused }
    public func encode(to w: inout WireWriter) {
        let list = refused.sorted { $0.key.rawValue < $1.key.rawValue }
        w.count(list.count); for (role, n) in list { w.u8(role.rawValue); w.u64(n) }
    }
    public init(from r: inout WireReader) throws(WireError) {
        var out: [Role: UInt64] = [:]
        var previous: Role?
        for _ in 0..<(try r.count(limit: Role.allCases.count)) {
            let role = try r.enumeration("refusal.role", Role.self)
            if let previous, role.rawValue <= previous.rawValue { throw .unorderedKey(field: "refusal.role") }
            out[role] = try r.u64()
            previous = role
        }
        refused = out
    }
}
