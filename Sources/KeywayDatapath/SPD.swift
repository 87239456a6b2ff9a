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

    public init(id: Int, selector: TrafficSelector, action: Action, level: Level = .require, useESP: Bool = true, useAH: Bool = false,
                tunnel: Bool = false, saSource: UInt32 = 0, saDestination: UInt32 = 0, priority: Int = 0, dontFragment: DontFragment = .clear) {
        self.id = id; self.selector = selector; self.action = action; self.level = level
        self.useESP = useESP; self.useAH = useAH; self.tunnel = tunnel
        self.saSource = saSource; self.saDestination = saDestination; self.priority = priority; self.dontFragment = dontFragment
    }
}

/// The security policy database. Policies are ordered by priority (larger first), then by their
/// position; lookup walks a binary trie of destination prefixes, so its cost follows the
/// prefix length (at most 33 nodes), not the number of policies.
public struct SPD: Sendable {
    public private(set) var policies: [SecurityPolicy]
    private var nodes: [Node] = [Node()]

    struct Node: Sendable {
        var children: (Int32, Int32) = (-1, -1)
        /// Ranks (indices into `policies`, already in precedence order) stored at this prefix.
        var ranks: [Int32] = []
    }

    public init(_ list: [SecurityPolicy]) {
        // Stable: equal priorities keep their configured order.
        policies = list.enumerated().sorted { a, b in
            a.element.priority != b.element.priority ? a.element.priority > b.element.priority : a.offset < b.offset
        }.map(\.element)
        for (rank, p) in policies.enumerated() { insert(rank: Int32(rank), prefix: p.selector.destination) }
    }

    private mutating func insert(rank: Int32, prefix: IPv4Prefix) {
        var n = 0
        for depth in 0..<prefix.length {
            let bit = (prefix.address.value >> UInt32(31 - depth)) & 1
            var next = bit == 0 ? nodes[n].children.0 : nodes[n].children.1
            if next < 0 {
                nodes.append(Node())
                next = Int32(nodes.count - 1)
                if bit == 0 { nodes[n].children.0 = next } else { nodes[n].children.1 = next }
            }
            n = Int(next)
        }
        nodes[n].ranks.append(rank)
    }

    /// The first policy, in precedence order, that matches the packet.
    public func lookup(source: UInt32, destination: UInt32, proto: UInt8, ports: (UInt16, UInt16)?) -> SecurityPolicy? {
        var best = Int32.max
        var n = 0
        var depth = 0
        while true {
            // Ranks at a node are ascending, so the first match there is the node's best.
            for r in nodes[n].ranks where r < best {
                if policies[Int(r)].selector.matches(source: source, destination: destination, proto: proto, ports: ports) {
                    best = r
                    break
                }
            }
            guard depth < 32 else { break }
            let bit = (destination >> UInt32(31 - depth)) & 1
            let next = bit == 0 ? nodes[n].children.0 : nodes[n].children.1
            if next < 0 { break }
            n = Int(next)
            depth += 1
        }
        return best == Int32.max ? nil : policies[Int(best)]
    }

    /// Inbound check: a packet from the network is matched with source and destination swapped,
    /// the way the peer's outbound policy mirrors ours.
    public func lookupInbound(source: UInt32, destination: UInt32, proto: UInt8, ports: (UInt16, UInt16)?) -> SecurityPolicy? {
        lookup(source: destination, destination: source, proto: proto, ports: ports.map { ($0.1, $0.0) })
    }
}
