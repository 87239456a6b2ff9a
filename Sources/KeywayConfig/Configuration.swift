import KeywayVocabulary

/// One entry of a menu: its properties (absent ones take the schema default) and flags.
public struct Item: Equatable, Sendable {
    public var id: Int
    public var values: [String: Value]
    public var disabled = false
    public var dynamic = false
    /// The built-in `default` proposal: can be set, never removed.
    public var builtIn = false

    public init(id: Int, values: [String: Value]) {
        self.id = id
        self.values = values
    }

    public func value(_ name: String, in schema: [PropertySpec]) -> Value {
        if let v = values[name] { return v }
        return schema.first { $0.name == name }?.defaultValue ?? .text("")
    }

    /// The same, with the menu's defaults looked up by name (for loops over many items).
    public func value(_ name: String, of kind: MenuKind) -> Value {
        values[name] ?? Schema.defaults(kind)[name] ?? .text("")
    }

    public var name: String? { values["name"]?.text }
}

/// The whole `/ip ipsec` configuration. A value type: a failed command leaves the original untouched.
/// Lists change only through `append` and `setItems`, which keep the name indexes: a policy finds
/// its manual-sa or proposal without a search (100,000 policies over 10,000 manual SAs).
public struct Configuration: Equatable, Sendable {
    public private(set) var policies: [Item] = []
    public private(set) var peers: [Item] = []
    public private(set) var proposals: [Item]
    public private(set) var manualSAs: [Item] = []
    public var nextID = 2
    private var proposalIndex: [String: Int] = [:]
    private var manualSAIndex: [String: Int] = [:]

    public init() {
        var def = Item(id: 1, values: ["name": .text("default")])
        def.builtIn = true
        proposals = [def]
        proposalIndex = Self.nameIndex(proposals)
    }

    public static func == (a: Configuration, b: Configuration) -> Bool {
        a.nextID == b.nextID && a.policies == b.policies && a.peers == b.peers && a.proposals == b.proposals
            && a.manualSAs == b.manualSAs
    }

    public func items(_ kind: MenuKind) -> [Item] {
        switch kind {
        case .policy: return policies
        case .peer: return peers
        case .proposal: return proposals
        case .manualSA: return manualSAs
        default: return []
        }
    }

    public mutating func setItems(_ kind: MenuKind, _ items: [Item]) {
        switch kind {
        case .policy: policies = items
        case .peer: peers = items
        case .proposal: proposals = items; proposalIndex = Self.nameIndex(items)
        case .manualSA: manualSAs = items; manualSAIndex = Self.nameIndex(items)
        default: break
        }
    }

    /// Adds an item at the end of its list, in place (no copy of the list).
    public mutating func append(_ item: Item, to kind: MenuKind) {
        switch kind {
        case .policy: policies.append(item)
        case .peer: peers.append(item)
        case .proposal:
            if let name = item.name, proposalIndex[name] == nil { proposalIndex[name] = proposals.count }
            proposals.append(item)
        case .manualSA:
            if let name = item.name, manualSAIndex[name] == nil { manualSAIndex[name] = manualSAs.count }
            manualSAs.append(item)
        default: break
        }
    }

    /// The first item of a named list (proposals, manual SAs) with that name.
    public func item(named name: String, in kind: MenuKind) -> Item? {
        switch kind {
        case .proposal: return proposalIndex[name].map { proposals[$0] }
        case .manualSA: return manualSAIndex[name].map { manualSAs[$0] }
        default: return items(kind).first { $0.name == name }
        }
    }

    private static func nameIndex(_ items: [Item]) -> [String: Int] {
        var index: [String: Int] = [:]
        for (i, item) in items.enumerated() { if let name = item.name, index[name] == nil { index[name] = i } }
        return index
    }

    /// Static policies first, dynamic ones (generate-policy) after them: they never override configuration.
    public var orderedPolicies: [Item] { policies.filter { !$0.dynamic } + policies.filter(\.dynamic) }

    /// Why a policy cannot be used, or nil when it can.
    public func inactiveReason(_ p: Item) -> String? {
        guard case .choice("encrypt") = p.value("action", of: .policy) else { return nil }
        let manual = p.value("manual-sa", of: .policy).text ?? "none"
        if manual != "none" {
            guard let m = item(named: manual, in: .manualSA) else { return "manual-sa \(manual) does not exist" }
            if case .choices(let protos) = p.value("ipsec-protocols", of: .policy), protos.contains("esp"),
               let why = Self.manualCipherRefusal(m) {
                return "manual-sa \(manual): \(why)"
            }
            if case .choices(let protos) = p.value("ipsec-protocols", of: .policy) {
                for proto in protos {
                    if case .pair(let a, let b) = m.value("\(proto)-spi", of: .manualSA), a == "0" || b == "0" {
                        return "manual-sa \(manual) has no \(proto)-spi for ipsec-protocols=\(proto)"
                    }
                }
            }
        } else {
            let proposal = p.value("proposal", of: .policy).text ?? "default"
            if item(named: proposal, in: .proposal) == nil { return "proposal \(proposal) does not exist" }
        }
        guard case .ip(let saSrc) = p.value("sa-src-address", of: .policy),
              case .ip(let saDst) = p.value("sa-dst-address", of: .policy) else {
            return nil
        }
        if saDst == .any { return "sa-dst-address is not set" }
        if case .boolean(false) = p.value("tunnel", of: .policy),
           case .address(let src) = p.value("src-address", of: .policy),
           case .address(let dst) = p.value("dst-address", of: .policy) {
            if src.address != saSrc || src.prefixLength != 32 || dst.address != saDst || dst.prefixLength != 32 {
                return "transport mode protects only traffic between the SA addresses: src-address must be \(saSrc)/32 "
                    + "and dst-address \(saDst)/32 (use tunnel=yes for networks)"
            }
        }
        return nil
    }
}

extension Configuration {
    /// Why a peer cannot be used for IKE, or nil when it can: a pre-shared-key peer with an empty
    /// secret (refused on add and set; a store written before that rule may still hold one). The
    /// monitor leaves such peers out of what it pushes to keyway-ike, with this reason in the audit.
    public func peerUnusableReason(_ peer: Item) -> String? {
        let s = Schema.peer
        guard case .choice("pre-shared-key") = peer.value("auth-method", in: s) else { return nil }
        if peer.value("secret", in: s).text?.isEmpty ?? true {
            return "auth-method=pre-shared-key with an empty secret: set secret= (a long random one)"
        }
        return nil
    }

    /// Why a manual-sa's ESP cipher cannot be manual-keyed, or nil. Counter-mode ciphers (AES-CTR,
    /// AES-GCM) take their IV from the sequence number, which restarts at 1 under the same key
    /// after any restart: the keystream repeats (RFC 8221 forbids them with manual keys).
    static func manualCipherRefusal(_ manualSA: Item) -> String? {
        guard case .choice(let name) = manualSA.value("esp-enc-algorithm", in: Schema.manualSA),
              let algorithm = EncryptionAlgorithm(rawValue: name), algorithm.isCounterMode else { return nil }
        return "esp-enc-algorithm=\(name) is a counter-mode cipher, which manual keys cannot use: its IV is the "
            + "sequence number, which restarts at 1 under the same key after any restart (RFC 8221); "
            + "use a CBC cipher such as aes-128, or let IKE key the policy"
    }
}

/// Live state the monitor fetches from keyway-datapath and keyway-ike for printouts.
public protocol RuntimeView {
    /// Rows of `name=value` for installed-sa print, with their flags (A, E, P).
    func installedSAs(showSensitive: Bool) -> [(flags: String, fields: [(String, String)])]
    func remotePeers() -> [[(String, String)]]
    func policyStats(id: Int) -> [(String, String)]
    func statistics() -> [(String, UInt64)]
    /// Flushes SAs of a type (ah, esp, all); returns how many went.
    mutating func flush(saType: String) -> Int
    /// Policies IKE generated (peer generate-policy=yes): printed after the configured ones, flag D.
    func generatedPolicies() -> [Item]
    /// Recent audit events of every process, oldest first (`/log`).
    func logEntries() -> [LogEntry]
}

extension RuntimeView {
    public func generatedPolicies() -> [Item] { [] }
    public func logEntries() -> [LogEntry] { [] }
}

/// What a freshly started appliance shows before the datapath and IKE report anything.
public struct EmptyRuntime: RuntimeView {
    public init() {}
    public func installedSAs(showSensitive: Bool) -> [(flags: String, fields: [(String, String)])] { [] }
    public func remotePeers() -> [[(String, String)]] { [] }
    public func policyStats(id: Int) -> [(String, String)] {
        [("ph2-state", "no-phase2")] + ["in-accepted", "in-dropped", "in-transformed", "out-accepted", "out-dropped",
                                        "out-transformed"].map { ($0, "0") }
    }
    public func statistics() -> [(String, UInt64)] { Statistics.names.map { ($0, 0) } }
    public mutating func flush(saType: String) -> Int { 0 }
}

/// `/ip ipsec statistics` counter names (RouterOS v6/v7, Linux xfrm_stat).
public enum Statistics {
    public static let names = ["in-errors", "in-buffer-errors", "in-header-errors", "in-no-states",
                               "in-state-protocol-errors",
                               "in-state-mode-errors", "in-state-sequence-errors", "in-state-expired",
                               "in-state-mismatches",
                               "in-state-invalid", "in-template-mismatches", "in-no-policies", "in-policy-blocked",
                               "in-policy-errors",
                               "out-errors", "out-bundle-errors", "out-bundle-check-errors", "out-no-states",
                               "out-state-protocol-errors",
                               "out-state-mode-errors", "out-state-sequence-errors", "out-state-expired",
                               "out-policy-blocked",
                               "out-policy-dead", "out-policy-errors",
                               // Keyway's, for paths smaller than the packets (README, Paths with a smaller MTU).
                               "out-frag-needed", "out-frag-errors", "out-fragmented", "out-prefragmented",
                               "mss-clamped",
                               "icmp-frag-needed-sent", "icmp-frag-needed-limited", "pmtu-lowered", "pmtu-icmp-refused"]
}
