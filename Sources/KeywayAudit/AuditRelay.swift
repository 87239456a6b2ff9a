import KeywayWire

/// keywayd's side of every process's audit events, pure (time passed in): each event is
/// attributed by the link it came on — the role, the pid keywayd spawned, keywayd's clock and
/// sequence number, never a field the sender wrote — rate-limited per process, and kept in a
/// bounded ring of recent records that a new monitor receives for `/log`.
public struct AuditRelay {
    public static let recentCapacity = 1024
    /// A process's events beyond this rate are dropped and counted (keywayd's own never are):
    /// room for a large script's changes at once, not for a compromised child to fill the disk.
    public static let burst = 4096
    public static let perSecond = 256

    private var limiter = RateLimiter(burst: AuditRelay.burst, perSecond: AuditRelay.perSecond, maximumKeys: 8)
    private var ring: [AuditRecord] = []
    private var head = 0
    private var nextSequence: UInt64 = 1
    /// Events dropped over the rate, by sender, in all.
    public private(set) var dropped: [Role: UInt64] = [:]

    public init() {}

    /// The records to deliver for one event from `role`: none when it is over its rate; keywayd's
    /// note of how many were dropped first, once the sender is admitted again.
    public mutating func accept(_ event: AuditEvent, from role: Role, pid: UInt32, parentPID: UInt32,
                                epochMicroseconds: UInt64, monotonicNanoseconds: UInt64) -> [AuditRecord] {
        var out: [AuditRecord] = []
        if role != .parent {
            let (admitted, suppressed) = limiter.admit(role.description, nowNanoseconds: monotonicNanoseconds)
            guard admitted else {
                dropped[role, default: 0] += 1
                return []
            }
            if suppressed > 0 {
                let note = AuditEvent(severity: 4, msgID: "audit-dropped",
                                      text: "\(suppressed) audit events from \(role) were dropped: "
                                          + "over \(Self.perSecond) a second",
                                      parameters: [AuditParameter("from", role.description),
                                                   AuditParameter("dropped", String(suppressed))])
                out.append(record(note, role: .parent, pid: parentPID, epochMicroseconds))
            }
        }
        out.append(record(event.bounded(), role: role, pid: pid, epochMicroseconds))
        return out
    }

    /// The most recent records, oldest first (at most `recentCapacity`).
    public var recent: [AuditRecord] { Array(ring[head...] + ring[..<head]) }

    private mutating func record(_ event: AuditEvent, role: Role, pid: UInt32, _ time: UInt64) -> AuditRecord {
        let r = AuditRecord(sequence: nextSequence, epochMicroseconds: time, role: role, pid: pid, event: event)
        nextSequence += 1
        if ring.count < Self.recentCapacity {
            ring.append(r)
        } else {
            ring[head] = r
            head = (head + 1) % Self.recentCapacity
        }
        return r
    }
}

/// The syslog connection's state and its queue, pure (time passed in). Lines wait in a bounded
/// queue while the socket is gone (the daemon restarting) and go out in order once it is back;
/// what overflows is counted and reported once, after the queue has drained.
public struct SyslogDelivery {
    public enum Action: Equatable {
        case connect
        case send([UInt8])
        case idle
    }

    public let lineCapacity: Int
    public let byteCapacity: Int
    /// Nanoseconds between attempts to connect while the socket is gone.
    public let retryInterval: UInt64
    private var queue: [[UInt8]] = []
    private var head = 0
    private var bytes = 0
    public private(set) var connected = false
    private var nextAttempt: UInt64 = 0
    /// Lines dropped from the queue since the last report.
    private var overflowed: UInt64 = 0
    /// Lines dropped in all.
    public private(set) var lost: UInt64 = 0
    /// Set when the connection failed after it had worked, or never worked: cleared by `takeOutage`.
    private var outage = true

    public init(lineCapacity: Int = 4096, byteCapacity: Int = 4 << 20, retryInterval: UInt64 = 1_000_000_000) {
        self.lineCapacity = max(1, lineCapacity)
        self.byteCapacity = max(1, byteCapacity)
        self.retryInterval = retryInterval
    }

    public var waiting: Int { queue.count - head }

    /// A line to write: kept until written; the oldest gives way when the queue is full.
    public mutating func submit(_ line: [UInt8]) {
        queue.append(line)
        bytes += line.count
        while waiting > 1 && (waiting > lineCapacity || bytes > byteCapacity) {
            bytes -= queue[head].count
            head += 1
            overflowed += 1
            lost += 1
        }
        compact()
    }

    /// What to do now.
    public func next(now: UInt64) -> Action {
        guard connected else { return now >= nextAttempt ? .connect : .idle }
        guard head < queue.count, now >= nextAttempt else { return .idle }
        return .send(queue[head])
    }

    public mutating func didConnect() { connected = true; nextAttempt = 0 }

    public mutating func connectFailed(now: UInt64) {
        connected = false
        outage = true
        nextAttempt = now + retryInterval
    }

    /// The line at the head of the queue was written.
    public mutating func sent() {
        guard head < queue.count else { return }
        bytes -= queue[head].count
        head += 1
        compact()
    }

    /// The daemon's queue is full: the same socket, a little later.
    public mutating func wouldBlock(now: UInt64) { nextAttempt = now + retryInterval / 10 }

    /// The socket has room again (the caller polled it): send without waiting out the pause.
    public mutating func retryNow() { if connected { nextAttempt = 0 } }

    /// The daemon went away (restarted): connect again at once, then every `retryInterval`.
    public mutating func failed(now: UInt64) {
        connected = false
        outage = true
        nextAttempt = now
    }

    /// Once connected with nothing waiting after an outage: how many lines were lost in it (then
    /// forgotten), so that keywayd says so once. nil while anything is still waiting.
    public mutating func takeOutageReport() -> (ended: Bool, lost: UInt64)? {
        guard connected, waiting == 0, outage else { return nil }
        outage = false
        defer { overflowed = 0 }
        return (true, overflowed)
    }

    /// Everything still waiting, in order, now no longer waiting (an exiting keywayd's last resort).
    public mutating func takeAll() -> [[UInt8]] {
        defer { queue.removeAll(); head = 0 }
        return Array(queue[head...])
    }

    private mutating func compact() {
        if head > 1024 && head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
    }
}
