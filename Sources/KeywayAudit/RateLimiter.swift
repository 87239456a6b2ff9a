/// A token bucket per key, with time passed in: floods of the same event are counted, not logged.
/// At most `maximumKeys` buckets are kept whatever keys callers pass; the least recently used
/// one gives way (O(1): a dictionary into a doubly linked list held in one array).
public struct RateLimiter: Sendable {
    public static let defaultMaximumKeys = 256

    public let burst: Int
    public let perSecond: Int
    public let maximumKeys: Int

    private struct Bucket: Sendable {
        var key: String
        var tokens: Double
        var last: UInt64
        var suppressed: UInt64
        /// Towards the most recently used (nil: this is it) and towards the least.
        var newer: Int?
        var older: Int?
    }

    private var index: [String: Int] = [:]
    private var buckets: [Bucket] = []
    private var newest: Int?
    private var oldest: Int?
    /// Buckets dropped to keep the bound (their suppressed counts are lost with them).
    public private(set) var evictions: UInt64 = 0

    public init(burst: Int = 10, perSecond: Int = 5, maximumKeys: Int = RateLimiter.defaultMaximumKeys) {
        self.burst = burst
        self.perSecond = perSecond
        self.maximumKeys = max(1, maximumKeys)
    }

    /// Buckets held now (never more than `maximumKeys`).
    public var keyCount: Int { index.count }

    /// Whether an event of this key may be logged now; when it may after a quiet spell,
    /// also how many were suppressed since the last one logged.
    public mutating func admit(_ key: String, nowNanoseconds: UInt64) -> (admitted: Bool, suppressedBefore: UInt64) {
        let slot = index[key] ?? newBucket(key, nowNanoseconds)
        touch(slot)
        var b = buckets[slot]
        let elapsed = Double(nowNanoseconds &- b.last) / 1e9
        if nowNanoseconds > b.last { b.tokens = min(Double(burst), b.tokens + elapsed * Double(perSecond)) }
        b.last = max(b.last, nowNanoseconds)
        defer { buckets[slot] = b }
        if b.tokens >= 1 {
            b.tokens -= 1
            let suppressed = b.suppressed
            b.suppressed = 0
            return (true, suppressed)
        }
        b.suppressed += 1
        return (false, 0)
    }

    /// A full bucket for `key`, in a fresh slot or in the least recently used one's.
    private mutating func newBucket(_ key: String, _ now: UInt64) -> Int {
        let fresh = Bucket(key: key, tokens: Double(burst), last: now, suppressed: 0, newer: nil, older: nil)
        guard index.count >= maximumKeys, let victim = oldest else {
            buckets.append(fresh)
            index[key] = buckets.count - 1
            link(buckets.count - 1)
            return buckets.count - 1
        }
        unlink(victim)
        index[buckets[victim].key] = nil
        evictions += 1
        buckets[victim] = fresh
        index[key] = victim
        link(victim)
        return victim
    }

    /// Makes `slot` the most recently used.
    private mutating func touch(_ slot: Int) {
        guard newest != slot else { return }
        unlink(slot)
        link(slot)
    }

    /// Puts `slot` at the newest end.
    private mutating func link(_ slot: Int) {
        buckets[slot].newer = nil
        buckets[slot].older = newest
        if let n = newest { buckets[n].newer = slot }
        newest = slot
        if oldest == nil { oldest = slot }
    }

    private mutating func unlink(_ slot: Int) {
        let (newer, older) = (buckets[slot].newer, buckets[slot].older)
        if let newer { buckets[newer].older = older } else if newest == slot { newest = older }
        if let older { buckets[older].newer = newer } else if oldest == slot { oldest = newer }
        buckets[slot].newer = nil
        buckets[slot].older = nil
    }
}
