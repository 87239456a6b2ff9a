import Glibc
import KeywaySystem
import Synchronization

/// Where a process's audit and log lines go: the syslog socket keywayd passed it, or stderr
/// when there is none. Thread-safe, so a future crypto worker thread may share it.
public final class AuditLog: Sendable {
    private struct State {
        /// Owned raw descriptor (-1: none); closed in deinit.
        var socket: Int32 = -1
        var limiter = RateLimiter()
        var failedWrites: UInt64 = 0
    }

    public let appName: String
    private let hostname: String
    private let state: Mutex<State>
    private let alsoStderr: Bool

    public init(appName: String, socket: Descriptor?, alsoStderr: Bool = false) {
        self.appName = appName
        self.hostname = AuditLog.currentHostname()
        self.state = Mutex(State(socket: socket?.release() ?? -1))
        self.alsoStderr = alsoStderr
    }

    /// Replaces the syslog socket (it arrives after start-up, over the parent link).
    public func attach(socket: Descriptor) {
        let raw = socket.release()
        let old = state.withLock { s in let o = s.socket; s.socket = raw; return o }
        if old >= 0 { close(old) }
    }

    deinit {
        let fd = state.withLock { $0.socket }
        if fd >= 0 { close(fd) }
    }

    public var hasSocket: Bool { state.withLock { $0.socket >= 0 } }

    /// One audit event. `params` land in structured data [keyway@32473 ...]; never pass secrets.
    public func event(_ severity: Severity, msgID: String, _ message: String, _ params: [(String, String)] = []) {
        let line = RFC5424.format(severity: severity, epochMicroseconds: AuditLog.nowMicroseconds(), hostname: hostname,
                                  appName: appName, procID: getpid(), msgID: msgID,
                                  structuredData: params.isEmpty ? [] : [StructuredData(id: "keyway@32473", params)],
                                  message: message)
        deliver(line)
    }

    /// Like `event`, but at most a few per second per `key`; the next admitted line says how many were skipped.
    public func rateLimitedEvent(key: String, _ severity: Severity, msgID: String, _ message: String, _ params: [(String, String)] = []) {
        let (admitted, suppressed) = state.withLock { $0.limiter.admit(key, nowNanoseconds: MonotonicClock.now()) }
        guard admitted else { return }
        event(severity, msgID: msgID, message, suppressed > 0 ? params + [("suppressed", String(suppressed))] : params)
    }

    private func deliver(_ line: String) {
        let bytes = Array(line.utf8)
        let sent: Bool = state.withLock { s in
            guard s.socket >= 0 else { return false }
            if Sockets.sendDatagram(fd: s.socket, bytes) { return true }
            s.failedWrites += 1
            return false
        }
        if !sent || alsoStderr { StandardStreams.error(line) }
    }

    static func nowMicroseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec / 1000)
    }

    static func currentHostname() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "-" }
        return String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
