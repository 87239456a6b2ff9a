import KeywayVocabulary

public struct SecurityPolicy: Equatable, Sendable {
    public typealias Action = PolicyAction
    public typealias Level = PolicyLevel

    public var id: Int
    public var selector: TrafficSelector
    public var action: Action
    public var level: Level
    public var useESP: Bool
    public var useAH: Bool
    public var tunnel: Bool
    public var saSource: UInt32
    public var saDestination: UInt32
    public var priority: Int
    /// The outer header's don't-fragment bit in tunnel mode.
    public var dontFragment: DontFragment

    public init(id: Int, selector: TrafficSelector, action: Action, level: Level = .require, useESP: Bool = true,
                useAH: Bool = false,
                tunnel: Bool = false, saSource: UInt32 = 0, saDestination: UInt32 = 0, priority: Int = 0,
                dontFragment: DontFragment = .clear) {
        self.id = id; self.selector = selector; self.action = action; self.level = level
        self.useESP = useESP; self.useAH = useAH; self.tunnel = tunnel
        self.saSource = saSource; self.saDestination = saDestination; self.priority = priority
        self.dontFragment = dontFragment
    }
}

/// The security policy database. Policies are ordered by priority (larger first), then by their
/// position (their rank). Lookup hashes the packet's destination once per distinct destination
/// prefix length the policies use, in an open-addressing table with one entry per destination
/// prefix: the prefix, and the best-ranked policy with exactly that destination, its match key and
/// what it decides (and, when several share the destination, where the others' ranks are listed,
/// ascending). The first of them whose source, protocol and ports also match is the entry's
/// answer, and the lowest rank over all lengths wins. Lengths are tried in the order of their best
/// rank, so the search stops as soon as no length can beat the match in hand. An entry is 32
/// bytes, so a hit reads one cache line however many policies there are, or two for the entries
/// a 16-byte-aligned array start puts across a line boundary (the binary trie this replaced
/// chased two pointers per destination bit, a cache miss per level at 100,000 policies; README,
/// Performance). A destination several policies share also reads their overflow list and records.
/// The whole policies are never read by a lookup.
public struct SPD: Sendable {
    /// In precedence order (rank order).
    public private(set) var policies: [SecurityPolicy] = []

    /// What the datapath acts on once a policy matched: no selector, no SA addresses.
    public struct Decision: Equatable, Sendable {
        public let id: Int
        public let action: PolicyAction
        public let level: PolicyLevel
        public let useESP: Bool
        public let useAH: Bool
        public let tunnel: Bool
        public let dontFragment: DontFragment

        /// An encrypt policy that names neither ESP nor AH (no configuration makes one) would send
        /// its packets as they are: it discards them instead.
        public init(_ policy: SecurityPolicy) {
            id = policy.id; level = policy.level
            action = policy.action == .encrypt && !policy.useESP && !policy.useAH ? .discard : policy.action
            useESP = policy.useESP; useAH = policy.useAH; tunnel = policy.tunnel
            dontFragment = policy.dontFragment
        }

        init(_ e: Entry) {
            id = e.id; action = e.action; level = e.level
            useESP = e.flags & Entry.esp != 0; useAH = e.flags & Entry.ah != 0; tunnel = e.flags & Entry.tunnel != 0
            dontFragment = e.dontFragment
        }
    }

    /// What a slot has not already checked (the destination), in 11 bytes.
    struct MatchKey: Sendable {
        var sourceNetwork: UInt32 = 0
        var sourcePort: UInt16 = 0
        var destinationPort: UInt16 = 0
        var proto: UInt8 = 0
        var sourceLength: UInt8 = 0
        var checks: UInt8 = 0
        static let anyProto: UInt8 = 1, sourcePortSet: UInt8 = 2, destinationPortSet: UInt8 = 4

        init() {}
        init(_ s: TrafficSelector) {
            sourceLength = UInt8(s.source.length)
            sourceNetwork = s.source.address.value & IPv4Prefix.mask(s.source.length)
            sourcePort = s.sourcePort ?? 0
            destinationPort = s.destinationPort ?? 0
            proto = s.proto ?? 0
            checks = (s.proto == nil ? Self.anyProto : 0) | (s.sourcePort != nil ? Self.sourcePortSet : 0)
                | (s.destinationPort != nil ? Self.destinationPortSet : 0)
        }

        /// TrafficSelector.matches without the destination: a port matches only packets whose ports are known.
        @inline(__always)
        func matches(source: UInt32, proto p: UInt8, ports: (UInt16, UInt16)?) -> Bool {
            // 32 ones shifted by 32 - length (at most 32, as built), the low 32 bits kept: 0 for /0.
            let mask = UInt32(truncatingIfNeeded: UInt64(UInt32.max) &<< (32 &- UInt64(sourceLength)))
            guard source & mask == sourceNetwork, checks & Self.anyProto != 0 || proto == p else { return false }
            let portChecks = checks & (Self.sourcePortSet | Self.destinationPortSet)
            guard portChecks != 0 else { return true }
            guard let ports else { return false }
            return (checks & Self.sourcePortSet == 0 || ports.0 == sourcePort)
                && (checks & Self.destinationPortSet == 0 || ports.1 == destinationPort)
        }
    }

    /// One destination prefix in 8 bytes: the network (bits 0-31), its length plus one (bits
    /// 32-37; 0: an empty entry), whether other policies share the destination (bit 38: their ranks
    /// follow `more[first]`), and the best rank (bits 39-63).
    struct Slot: Sendable {
        var bits: UInt64 = 0
        static let rankLimit = 1 << 25

        init() {}
        init(network: UInt32, length: UInt8, first: Int32, shared: Bool) {
            bits = UInt64(network) | UInt64(length + 1) << 32 | (shared ? 1 << 38 : 0) | UInt64(first) << 39
        }
        @inline(__always) var isEmpty: Bool { bits & (0x3f << 32) == 0 }
        /// Network and length, as `key(network:length:)` makes them.
        @inline(__always) var prefix: UInt64 { bits & 0x3f_ffff_ffff }
        @inline(__always) var shared: Bool { bits & (1 << 38) != 0 }
        @inline(__always) var first: Int32 { Int32(truncatingIfNeeded: bits >> 39) }
        @inline(__always) static func key(network: UInt32, length: UInt8) -> UInt64 {
            UInt64(network) | UInt64(length + 1) << 32
        }
    }

    /// A policy as a lookup reads it, 32 bytes (a test holds it to that): in the table with its
    /// destination in `slot`, in `records` (by rank, `slot` unused) for policies sharing one.
    struct Entry: Sendable {
        var slot = Slot()
        var id = 0
        var key = MatchKey()
        var action = PolicyAction.none
        var level = PolicyLevel.require
        var flags: UInt8 = 0
        var dontFragment = DontFragment.clear
        static let esp: UInt8 = 1, ah: UInt8 = 2, tunnel: UInt8 = 4

        init() {}
        init(_ policy: SecurityPolicy) {
            let d = Decision(policy)
            id = d.id; key = MatchKey(policy.selector); action = d.action; level = d.level
            flags = (d.useESP ? Self.esp : 0) | (d.useAH ? Self.ah : 0) | (d.tunnel ? Self.tunnel : 0)
            dontFragment = d.dontFragment
        }
    }

    /// A destination prefix length in use, with the best (lowest) rank stored under it.
    struct Length: Sendable {
        var length: UInt8
        var mask: UInt32
        var bestRank: Int32
    }

    private var records: [Entry] = []
    private(set) var table: [Entry] = [Entry()]
    /// For a slot's best rank r whose destination others share: `overflow[more[r]]` is how many
    /// follow, `overflow[more[r] + 1 ...]` their ranks, ascending.
    private var more: [Int32] = []
    private var overflow: [Int32] = []
    /// Ascending by best rank.
    private var lengths: [Length] = []

    public init(_ list: [SecurityPolicy]) {
        // Stable: equal priorities keep their configured order.
        policies = list.enumerated().sorted { a, b in
            a.element.priority != b.element.priority ? a.element.priority > b.element.priority : a.offset < b.offset
        }.map(\.element)
        records = policies.map(Entry.init)
        // The configuration bounds policies far below this (ConfigurationBounds.maximumPolicies).
        precondition(records.count < Slot.rankLimit, "more policies than an SPD slot can rank")
        build()
    }

    private struct Prefix: Hashable {
        var network: UInt32
        var length: UInt8
    }

    private mutating func build() {
        // Ranks per destination prefix, in rank order; prefixes in the order first seen.
        var index: [Prefix: Int] = [:]
        var groups: [(Prefix, [Int32])] = []
        var best: [UInt8: Int32] = [:]
        for (rank, policy) in policies.enumerated() {
            let d = policy.selector.destination
            let key = Prefix(network: d.address.value & IPv4Prefix.mask(d.length), length: UInt8(d.length))
            if let i = index[key] {
                groups[i].1.append(Int32(rank))
            } else {
                index[key] = groups.count
                groups.append((key, [Int32(rank)]))
            }
            if best[key.length] == nil { best[key.length] = Int32(rank) }
        }
        lengths = best.map { Length(length: $0.key, mask: IPv4Prefix.mask(Int($0.key)), bestRank: $0.value) }
            .sorted { $0.bestRank < $1.bestRank }
        // Two thirds full at most, so that a miss ends after five entries on average (about three
        // lines, adjacent), and never full: a probe stops at the first empty entry. Any size, not a
        // power of two, so that the table grows with the policies and not by doubling (measured at
        // 100,000 policies: half full, 6.4 MB, was no faster than the slots and records apart).
        table = Array(repeating: Entry(), count: groups.count + groups.count / 2 + 1)
        more = Array(repeating: -1, count: records.count)
        for (prefix, ranks) in groups {
            var i = probeStart(Slot.key(network: prefix.network, length: prefix.length))
            while !table[i].slot.isEmpty { i = i + 1 == table.count ? 0 : i + 1 }
            table[i] = records[Int(ranks[0])]
            table[i].slot = Slot(network: prefix.network, length: prefix.length, first: ranks[0],
                                 shared: ranks.count > 1)
            if ranks.count > 1 {
                more[Int(ranks[0])] = Int32(overflow.count)
                overflow.append(Int32(ranks.count - 1))
                overflow += ranks.dropFirst()
            }
        }
    }

    /// Where a prefix's probe starts: a multiplicative hash, its high 32 bits scaled to the table.
    @inline(__always)
    func probeStart(_ key: UInt64) -> Int {
        let hash = (key &* 0x9E37_79B9_7F4A_7C15) >> 32
        return Int(truncatingIfNeeded: (hash &* UInt64(table.count)) >> 32)
    }

    /// What the first policy, in precedence order, that matches the packet decides.
    public func lookup(source: UInt32, destination: UInt32, proto: UInt8, ports: (UInt16, UInt16)?) -> Decision? {
        var best = Int32.max
        var answer = Entry()
        for l in lengths {
            // Every rank under this length, and under the ones after it, is worse than the match in hand.
            if l.bestRank >= best { break }
            let key = Slot.key(network: destination & l.mask, length: l.length)
            var i = probeStart(key)
            while true {
                let entry = table[i]
                if entry.slot.isEmpty { break }
                if entry.slot.prefix == key {
                    let first = entry.slot.first
                    if first < best, entry.key.matches(source: source, proto: proto, ports: ports) {
                        best = first
                        answer = entry
                    } else if entry.slot.shared,
                              let rank = sharedMatch(after: first, beating: best, source: source, proto: proto,
                                                     ports: ports) {
                        best = rank
                        answer = records[Int(rank)]
                    }
                    break
                }
                i = i + 1 == table.count ? 0 : i + 1
            }
        }
        return best == Int32.max ? nil : Decision(answer)
    }

    /// The best of the ranks that share `first`'s destination, if one beats `best` and matches.
    @inline(__always)
    private func sharedMatch(after first: Int32, beating best: Int32, source: UInt32, proto: UInt8,
                             ports: (UInt16, UInt16)?) -> Int32? {
        let start = Int(more[Int(first)])
        // Ascending: the first match is this prefix's best.
        for c in (start + 1)..<(start + 1 + Int(overflow[start])) {
            let rank = overflow[c]
            if rank >= best { return nil }
            if records[Int(rank)].key.matches(source: source, proto: proto, ports: ports) { return rank }
        }
        return nil
    }

    /// Inbound check: a packet from the network is matched with source and destination swapped,
    /// the way the peer's outbound policy mirrors ours.
    public func lookupInbound(source: UInt32, destination: UInt32, proto: UInt8,
                              ports: (UInt16, UInt16)?) -> Decision? {
        lookup(source: destination, destination: source, proto: proto, ports: ports.map { ($0.1, $0.0) })
    }
}
