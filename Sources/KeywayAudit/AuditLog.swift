import KeywaySystem
import KeywayWire
import Synchronization

/// Where a process's audit events go: a child's to keywayd over its link (keywayd attributes
/// them and writes syslog); keywayd's own into a queue its loop drains into the same path.
public protocol AuditOutput: Sendable {
    /// Hands one event on; false when it could not now (the log keeps it and tries again).
    func deliver(_ event: AuditEvent) -> Bool
}

/// A child's output: `AuditEvent` messages on its link to keywayd. A child cannot open a path
/// or a socket (chroot, seccomp), and needs neither: keywayd holds the syslog connection.
public struct LinkAuditOutput: AuditOutput {
    let socket: Int32
    public init(socket: Int32) { self.socket = socket }

    public func deliver(_ event: AuditEvent) -> Bool {
        (try? SeqPacket.send(raw: socket, Frame.encode(.auditEvent(event)))) != nil
    }
}

/// keywayd's output: its own events wait here for its loop (`drain`), which puts them through
/// the same attribution, syslog queue and /log as the children's.
public final class CollectingAuditOutput: AuditOutput {
    public static let capacity = 4096
    private let queue = Mutex<[AuditEvent]>([])

    public init() {}

    public func deliver(_ event: AuditEvent) -> Bool {
        queue.withLock { q in
            guard q.count < Self.capacity else { return false }
            q.append(event)
            return true
        }
    }

    public func drain() -> [AuditEvent] { queue.withLock { q in defer { q.removeAll() }; return q } }
}

/// A process's audit log: events, rate-limited where another party can cause them, handed to
/// the output in order. What the output cannot take now waits (bounded); what overflows is
/// counted and said once delivery resumes. Thread-safe.
public final class AuditLog: Sendable {
    public static let pendingLimit = 256

    private struct State {
        var limiter = RateLimiter()
        var pending: [AuditEvent] = []
        var lost: UInt64 = 0
    }

    public let appName: String
    private let output: any AuditOutput
    private let state = Mutex(State())

    public init(appName: String, output: any AuditOutput) {
        self.appName = appName
        self.output = output
    }

    /// One audit event. `params` are its structured data; never pass secrets.
    public func event(_ severity: Severity, msgID: String, _ message: String, _ params: [(String, String)] = []) {
        let event = AuditEvent(severity: UInt8(severity.rawValue), msgID: msgID, text: message,
                               parameters: params.map { AuditParameter($0.0, $0.1) }).bounded()
        let overflow: Bool = state.withLock { s in
            flush(&s)
            if s.pending.isEmpty && output.deliver(event) { return false }
            guard s.pending.count < Self.pendingLimit else {
                s.lost += 1
                return true
            }
            s.pending.append(event)
            return false
        }
        // The last resort: stderr, which keywayd's own stderr (the journal, under systemd) shares.
        if overflow { StandardStreams.error("\(appName): \(msgID) \(message)") }
    }

    /// Like `event`, but at most a few per second per `key`; the next admitted line says how many were skipped.
    public func rateLimitedEvent(key: String, _ severity: Severity, msgID: String, _ message: String,
                                 _ params: [(String, String)] = []) {
        let (admitted, suppressed) = state.withLock { $0.limiter.admit(key, nowNanoseconds: MonotonicClock.now()) }
        guard admitted else { return }
        event(severity, msgID: msgID, message, suppressed > 0 ? params + [("suppressed", String(suppressed))] : params)
    }

    /// Tries again what is waiting (each loop's wake-up calls this).
    public func flush() { state.withLock { flush(&$0) } }

    /// Events waiting for the output, and events lost because too many waited.
    public var backlog: (pending: Int, lost: UInt64) { state.withLock { ($0.pending.count, $0.lost) } }

    private func flush(_ s: inout State) {
        var sent = 0
        while sent < s.pending.count, output.deliver(s.pending[sent]) { sent += 1 }
        s.pending.removeFirst(sent)
        guard s.pending.isEmpty, s.lost > 0 else { return }
        let note = AuditEvent(severity: UInt8(Severity.warning.rawValue), msgID: "audit-lost",
                              text: "\(s.lost) audit events of \(appName) were lost: too many waited for keywayd",
                              parameters: [AuditParameter("lost", String(s.lost))])
        if output.deliver(note) { s.lost = 0 }
    }
}
