import KeywayVocabulary

/// How the responder keeps spoofed first messages from keeping real peers out.
///
/// A first message (main mode 1, aggressive mode 1) costs nothing to forge, with any source
/// address: including a real peer's. So nothing keyed on the address can tell the forger from the
/// peer, and a fixed table that refuses newcomers when full lets a forger keep it full. Instead:
///
/// - State for first messages lives in a FIFO table bounded in entries and bytes; a newcomer is
///   always admitted and the *oldest unverified* negotiation gives way. A real peer's entry is
///   the newest when it is made and survives the next `UnverifiedResponders.capacity` first
///   messages: the forger must get more than that through the receive queue and the engine
///   within the peer's round trip (our message 2 out, its DH, its message 3 back) to displace it.
///   A refusing table loses the peer for as long as the forger keeps sending; this one loses it
///   only to a flood faster than the capacity per round trip.
/// - Main mode message 3 (and aggressive mode message 3) carries our responder cookie, 64 random
///   bits sent only to the source address: a peer that echoes it receives at that address, which a
///   forger elsewhere on the path cannot. Such negotiations move out of the FIFO into `sas`,
///   where no first message can displace them; they are bounded separately, per address and in
///   all, and refused (not displaced) when those bounds are reached.
/// - Diffie-Hellman for a peer nobody has authenticated yet (aggressive mode's first message,
///   main mode's message 3) is paid from token buckets on the engine's clock, one per exchange
///   kind, so a flood of spoofable aggressive first messages cannot spend main mode's budget.
///
/// Every step is O(1) per datagram (amortised): dictionary lookups and queue ends, no scans.

/// A token bucket on the caller's clock (milliseconds): `capacity` tokens at most, `perSecond`
/// added back each second. Integer arithmetic in thousandths of a token, saturating.
struct TokenBucket: Sendable {
    let capacity: UInt64
    let perSecond: UInt64
    private var milliTokens: UInt64
    private var last: UInt64?

    init(capacity: UInt64, perSecond: UInt64) {
        self.capacity = capacity
        self.perSecond = perSecond
        milliTokens = capacity.multipliedReportingOverflow(by: 1000).partialValue
    }

    /// Takes one token if there is one. A clock that goes backwards refills nothing.
    mutating func take(now: UInt64) -> Bool {
        let full = capacity.multipliedReportingOverflow(by: 1000)
        let limit = full.overflow ? UInt64.max : full.partialValue
        if let last, now > last {
            let refill = (now - last).multipliedReportingOverflow(by: perSecond)
            milliTokens = min(limit, refill.overflow ? limit : milliTokens.saturatingAdd(refill.partialValue))
        }
        last = max(last ?? now, now)
        guard milliTokens >= 1000 else { return false }
        milliTokens -= 1000
        return true
    }
}

/// Responder negotiations whose peer has not yet echoed our cookie, oldest first.
struct UnverifiedResponders {
    /// Entries at most: above what the UDP receive queue (~280 small datagrams at the default
    /// buffer) and a flood the engine can parse (tens of thousands per second) put between a real
    /// peer's message 1 and its message 3 on a round trip of tens of milliseconds.
    static let capacity = 2048
    /// Bytes of kept messages at most (first messages are at most `IKEEngine.maximumFirstMessage`).
    static let byteBudget = 4 << 20
    /// What an entry costs beyond its kept messages (the object, keys, peer copy).
    static let entryOverhead = 512

    private(set) var entries: [IKESAKey: IKESA] = [:]
    /// Admission order, with stale items (entries that left by verification or failure) skipped
    /// lazily and compacted away when they outnumber the live ones.
    private var order: [(key: IKESAKey, serial: UInt64)] = []
    private var head = 0
    private var nextSerial: UInt64 = 0
    private(set) var bytes = 0

    var count: Int { entries.count }

    subscript(key: IKESAKey) -> IKESA? { entries[key] }

    /// Admits `sa`; returns the entries that gave way (oldest first) to keep the bounds.
    mutating func admit(_ sa: IKESA, key: IKESAKey) -> [IKESA] {
        remove(key)
        nextSerial += 1
        sa.admission = nextSerial
        sa.footprint = Self.footprint(sa)
        entries[key] = sa
        bytes += sa.footprint
        order.append((key, nextSerial))
        var evicted: [IKESA] = []
        while entries.count > Self.capacity || bytes > Self.byteBudget, let oldest = popOldest() {
            evicted.append(oldest)
        }
        return evicted
    }

    /// Takes `key` out (it was verified, failed, or is replaced).
    @discardableResult
    mutating func remove(_ key: IKESAKey) -> IKESA? {
        guard let sa = entries.removeValue(forKey: key) else { return nil }
        bytes -= sa.footprint
        compactIfMostlyStale()
        return sa
    }

    /// Removes and returns the entries older than `timeout` (they are at the front).
    mutating func expire(now: UInt64, timeout: UInt64) -> [IKESA] {
        var gone: [IKESA] = []
        while head < order.count {
            let item = order[head]
            guard let sa = entries[item.key], sa.admission == item.serial else { head += 1; continue }
            guard sa.createdAt.saturatingAdd(timeout) <= now else { break }
            head += 1
            entries[item.key] = nil
            bytes -= sa.footprint
            gone.append(sa)
        }
        compactIfMostlyStale()
        return gone
    }

    private mutating func popOldest() -> IKESA? {
        while head < order.count {
            let item = order[head]
            head += 1
            guard let sa = entries[item.key], sa.admission == item.serial else { continue }
            entries[item.key] = nil
            bytes -= sa.footprint
            compactIfMostlyStale()
            return sa
        }
        return nil
    }

    /// Keeps the queue within twice the live entries (plus slack): amortised O(1).
    private mutating func compactIfMostlyStale() {
        guard order.count - head > 2 * entries.count + 64 || (head > 1024 && head > order.count / 2) else { return }
        order = order[head...].filter { entries[$0.key]?.admission == $0.serial }
        head = 0
    }

    var queueLength: Int { order.count - head }

    static func footprint(_ sa: IKESA) -> Int {
        entryOverhead + sa.initiatorSABody.count + sa.initiatorIDBody.count + sa.lastReceived.count
            + (sa.retransmit.message?.count ?? 0)
    }
}

/// What the responder's admission has done, for counters and printouts.
public struct ResponderLoad: Sendable, Equatable {
    /// Negotiations waiting for a peer to echo our cookie.
    public var unverified = 0
    /// Negotiations whose peer echoed our cookie, not yet established.
    public var verifiedHalfOpen = 0
    /// Unverified negotiations that gave way to newer first messages.
    public var evicted: UInt64 = 0
    /// Messages refused because a bound was reached or the Diffie-Hellman budget was spent.
    public var refusedBusy: UInt64 = 0
    /// Diffie-Hellman computations refused by the token buckets.
    public var diffieHellmanRefused: UInt64 = 0
    /// IKEv2: IKE_SA_INITs answered with a COOKIE (RFC 7296 2.6).
    public var cookiesSent: UInt64 = 0
}
