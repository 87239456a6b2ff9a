/// Back-off for restarting a child: doubles on each quick death, resets after a stable run.
public struct RestartPolicy: Sendable, Equatable {
    public var initialDelay: UInt64 = 250_000_000
    public var maximumDelay: UInt64 = 30_000_000_000
    /// A child that ran at least this long counts as stable: its next restart is immediate-ish.
    public var stableAfter: UInt64 = 60_000_000_000

    private(set) var nextDelay: UInt64 = 250_000_000
    public private(set) var restarts: UInt32 = 0

    public init() {}

    /// When to restart a child that started at `startedAt` and died at `now` (nanoseconds).
    public mutating func restartTime(startedAt: UInt64, now: UInt64) -> UInt64 {
        if now &- startedAt >= stableAfter { nextDelay = initialDelay }
        let delay = nextDelay
        nextDelay = min(maximumDelay, nextDelay * 2)
        restarts += 1
        return now + delay
    }
}
