/// Whether a child still answers: keywayd pings it every `interval` and gives up on it once no
/// Pong has come for `unansweredIntervals` intervals (a stopped, hung or spinning child).
/// Pure: the time comes in, what to do goes out.
public struct Liveness: Sendable, Equatable {
    public enum Action: Equatable, Sendable {
        case wait
        case ping(nonce: UInt64)
        /// No answer for this long (nanoseconds): kill the child and restart it.
        case unresponsive(silentFor: UInt64)
    }

    public let interval: UInt64
    public let unansweredIntervals: UInt64
    /// The child's start, or its last answer.
    public private(set) var lastAnswer: UInt64
    public private(set) var nextPing: UInt64
    /// This instance's nonces run from `firstNonce` to `lastNonce` (the latest sent).
    public let firstNonce: UInt64
    public private(set) var lastNonce: UInt64
    public private(set) var givenUp = false

    /// Each child instance gets its own `firstNonce`, so a stale Pong from a previous instance
    /// never counts for a new one.
    public init(startedAt now: UInt64, interval: UInt64, unansweredIntervals: UInt64, firstNonce: UInt64) {
        self.interval = max(1, interval)
        self.unansweredIntervals = max(1, unansweredIntervals)
        self.firstNonce = max(1, firstNonce)
        lastAnswer = now
        nextPing = now + self.interval
        lastNonce = self.firstNonce - 1
    }

    /// The limit: silent this long means unresponsive.
    public var deadline: UInt64 { interval * unansweredIntervals }

    public mutating func tick(now: UInt64) -> Action {
        guard !givenUp else { return .wait }
        let silent = now &- lastAnswer
        if now >= lastAnswer && silent >= deadline {
            givenUp = true
            return .unresponsive(silentFor: silent)
        }
        guard now >= nextPing else { return .wait }
        nextPing = now + interval
        lastNonce &+= 1
        return .ping(nonce: lastNonce)
    }

    /// A Pong: counts when it answers one of this instance's pings. Returns whether it did.
    @discardableResult
    public mutating func answered(nonce: UInt64, now: UInt64) -> Bool {
        guard !givenUp, nonce >= firstNonce, nonce <= lastNonce else { return false }
        lastAnswer = max(lastAnswer, now)
        return true
    }

    /// Any message from the child: its loop turned. A busy child's pong may wait behind
    /// thousands of its own messages (audit lines of a 100,000-policy transaction) on the link.
    public mutating func heard(now: UInt64) {
        guard !givenUp else { return }
        lastAnswer = max(lastAnswer, now)
    }

    /// keywayd itself was busy for `busy` nanoseconds (work for 100,000 policies): nothing the
    /// child sent could be read meanwhile, so that time is not the child's silence.
    public mutating func excuse(_ busy: UInt64, now: UInt64) {
        guard !givenUp else { return }
        lastAnswer = min(now, lastAnswer.saturatingAdd(busy))
    }
}
