/// A token bucket per key, with time passed in: floods of the same event are counted, not logged.
public struct RateLimiter: Sendable {
    public let burst: Int
    public let perSecond: Int
    private var buckets: [String: (tokens: Double, last: UInt64, suppressed: UInt64)] = [:]

    public init(burst: Int = 10, perSecond: Int = 5) {
        self.burst = burst
        self.perSecond = perSecond
    }

    /// Whether an event of this key may be logged now; when it may after a quiet spell,
    /// also how many were suppressed since the last one logged.
    public mutating func admit(_ key: String, nowNanoseconds: UInt64) -> (admitted: Bool, suppressedBefore: UInt64) {
        var b = buckets[key] ?? (Double(burst), nowNanoseconds, 0)
        let elapsed = Double(nowNanoseconds &- b.last) / 1e9
        b.tokens = min(Double(burst), b.tokens + elapsed * Double(perSecond))
        b.last = nowNanoseconds
        if b.tokens >= 1 {
            b.tokens -= 1
            let suppressed = b.suppressed
            b.suppressed = 0
            buckets[key] = b
            return (true, suppressed)
        }
        b.suppressed += 1
        buckets[key] = b
        return (false, 0)
    }
}
