import Glibc
import KeywaySystem
import KeywayWire

/// keywayd's syslog connection: the thin I/O around `SyslogDelivery`. It reconnects by itself
/// when the daemon restarts (the children never need the path: they send keywayd their events).
public final class SyslogSink {
    public let path: String
    public let format: SyslogFormat
    private let hostname: String
    private var socket: Descriptor?
    private var delivery = SyslogDelivery()
    private var unreachableSaid = false

    public init(path: String, format: SyslogFormat) {
        self.path = path
        self.format = format
        self.hostname = Hostname.current()
    }

    /// Queues one record's line; while syslog is unreachable it also goes to stderr.
    public func submit(_ record: AuditRecord) {
        let seconds = Int64(clamping: record.epochMicroseconds / 1_000_000)
        let line = AuditLine.render(record, format: format, hostname: hostname,
                                    utcOffsetSeconds: format == .local
                                        ? WallClock.utcOffset(atEpochSeconds: seconds) : 0)
        delivery.submit(Array(line.utf8))
        if !delivery.connected { pump(now: MonotonicClock.now()) }
        if !delivery.connected { StandardStreams.error(line) }
    }

    /// Writes what waits, connecting first if needed. Returns, once after an outage ended, how many
    /// lines it lost (the caller audits it).
    @discardableResult
    public func pump(now: UInt64) -> UInt64? {
        for _ in 0..<8192 {
            switch delivery.next(now: now) {
            case .idle:
                return delivery.takeOutageReport().map(\.lost)
            case .connect:
                do {
                    let s = try Sockets.unixDatagramConnected(path: path)
                    try s.setNonBlocking()
                    socket = s
                    delivery.didConnect()
                    unreachableSaid = false
                } catch {
                    socket = nil
                    delivery.connectFailed(now: now)
                    if !unreachableSaid {
                        unreachableSaid = true
                        StandardStreams.error("keywayd: syslog at \(path) is unreachable (\(error.errno)); audit lines "
                                              + "wait (up to \(delivery.lineCapacity)) and go to stderr meanwhile")
                    }
                }
            case .send(let line):
                guard let s = socket else { delivery.failed(now: now); continue }
                switch Sockets.sendDatagramOutcome(fd: s.raw, line) {
                case .sent: delivery.sent()
                case .wouldBlock: delivery.wouldBlock(now: now)
                case .failed:
                    socket = nil
                    delivery.failed(now: now)
                }
            }
        }
        return nil
    }

    /// Before keywayd exits: writes what waits until nothing does or `deadline` (monotonic
    /// nanoseconds) passes. A burst of lines (a refused start, a shutdown) fills a syslog socket's
    /// queue faster than the daemon reads it, and the lines still waiting would die with the
    /// process. Nothing is waited for while syslog is unreachable (those lines went to stderr).
    /// What a connected daemon did not take by then goes to stderr, the last resort. Returns how
    /// many lines went there.
    @discardableResult
    public func drain(until deadline: UInt64) -> Int {
        writeWaiting(until: deadline)
        guard delivery.connected, delivery.waiting > 0 else { return 0 }
        let lines = delivery.takeAll()
        StandardStreams.error("keywayd: syslog at \(path) took no more lines before exit; "
                              + "the last \(lines.count) follow")
        for line in lines { StandardStreams.error(String(decoding: line, as: UTF8.self)) }
        return lines.count
    }

    private func writeWaiting(until deadline: UInt64) {
        for _ in 0..<100_000 {
            pump(now: MonotonicClock.now())
            let now = MonotonicClock.now()
            guard delivery.waiting > 0, delivery.connected, let s = socket, now < deadline else { break }
            // A unix datagram socket polls writable once the daemon's queue has room again.
            let wait = Int(min(100, (deadline - now) / 1_000_000 + 1))
            if let ready = try? Poll.wait([(fd: s.raw, events: .writable)], timeoutMilliseconds: wait),
               ready.first?.contains(.writable) == true {
                delivery.retryNow()
            }
        }
    }

    public var waiting: Int { delivery.waiting }
    public var connected: Bool { delivery.connected }
    public var capacity: Int { delivery.lineCapacity }
}

public enum Hostname {
    public static func current() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "-" }
        return String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
