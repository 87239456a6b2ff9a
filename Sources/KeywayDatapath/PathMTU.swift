import KeywayVocabulary

/// What the datapath knows of each outer path (RFC 4301 §8.2): the MTU of the local interface
/// toward a destination (keywayd looks it up and says so), and what validated ICMP "fragmentation
/// needed" has taught since — never below the family's floor, and forgotten after
/// PathMTURule.ageingSeconds so that a path that grew back is used again. Sans-IO: time (seconds)
/// is passed in. Kept per destination, not per SA: every SA to a peer shares the path, and a
/// rekeyed SA need not learn it again.
public struct PathMTUTable: Sendable {
    public struct Learned: Equatable, Sendable {
        public var mtu: Int
        /// When it was last lowered.
        public var at: UInt64
    }

    /// Learned entries kept at once; the oldest gives way.
    public static let maximumLearned = 4096
    /// For destinations keywayd has not named (before its first word, or a peer it has not looked up yet).
    public private(set) var defaultLocalMTU = 1500
    private var local: [IPAddress: Int] = [:]
    private var learned: [IPAddress: Learned] = [:]

    public init() {}

    /// keywayd's view of the local interfaces toward each destination; replaces the previous one.
    public mutating func setLocal(defaultMTU: Int, paths: [(IPAddress, Int)]) {
        defaultLocalMTU = Self.sane(defaultMTU, .ipv4)
        local = Dictionary(paths.map { ($0.0, Self.sane($0.1, $0.0.family)) }, uniquingKeysWith: min)
    }

    private static func sane(_ mtu: Int, _ family: AddressFamily) -> Int {
        min(65_535, max(PathMTURule.minimum(family), mtu))
    }

    public func localMTU(toward destination: IPAddress) -> Int { local[destination] ?? defaultLocalMTU }

    /// What ICMP taught and has not aged out yet.
    public func learnedMTU(toward destination: IPAddress, now: UInt64) -> Int? {
        guard let entry = learned[destination], now < entry.at.saturatingAdd(PathMTURule.ageingSeconds) else {
            return nil
        }
        return entry.mtu
    }

    /// The size an outer packet toward `destination` may have now.
    public func mtu(toward destination: IPAddress, now: UInt64) -> Int {
        let base = localMTU(toward: destination)
        return learnedMTU(toward: destination, now: now).map { min($0, base) } ?? base
    }

    /// A validated report that a packet toward `destination` met a link of `reported` bytes:
    /// the path lowers to it (or to the floor). Returns the new MTU, or nil when the path was
    /// already as small.
    public mutating func lower(toward destination: IPAddress, to reported: Int, now: UInt64) -> Int? {
        let value = max(reported, PathMTURule.floor(destination.family))
        guard value < mtu(toward: destination, now: now) else { return nil }
        if learned[destination] == nil, learned.count >= Self.maximumLearned,
           let oldest = learned.min(by: { $0.value.at < $1.value.at })?.key {
            learned[oldest] = nil
        }
        learned[destination] = Learned(mtu: value, at: now)
        return value
    }

    /// Forgets what has aged out (the periodic tick); returns the destinations whose path grew back.
    @discardableResult
    public mutating func age(now: UInt64) -> [IPAddress] {
        let expired = learned.filter { now >= $0.value.at.saturatingAdd(PathMTURule.ageingSeconds) }.map(\.key)
        for d in expired { learned[d] = nil }
        return expired
    }

    public var learnedCount: Int { learned.count }
}
