import Glibc

public struct PollEvents: OptionSet, Sendable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }
    public static let readable = PollEvents(rawValue: Int16(POLLIN))
    public static let writable = PollEvents(rawValue: Int16(POLLOUT))
    public static let hangup = PollEvents(rawValue: Int16(POLLHUP))
    public static let error = PollEvents(rawValue: Int16(POLLERR))
    public static let invalid = PollEvents(rawValue: Int16(POLLNVAL))
}

public enum Poll {
    /// Waits for events on the given descriptors; returns the events seen, in the same order.
    /// A timeout of nil waits for ever. EINTR counts as a timeout (nothing ready).
    public static func wait(_ interests: [(fd: Int32, events: PollEvents)], timeoutMilliseconds: Int?) throws(SystemError) -> [PollEvents] {
        var pfds = interests.map { pollfd(fd: $0.fd, events: $0.events.rawValue, revents: 0) }
        let rc = Glibc.poll(&pfds, nfds_t(pfds.count), Int32(clamping: timeoutMilliseconds ?? -1))
        if rc < 0 {
            if Glibc.errno == EINTR { return Array(repeating: [], count: pfds.count) }
            throw SystemError.last("poll")
        }
        return pfds.map { PollEvents(rawValue: $0.revents) }
    }
}

public enum MonotonicClock {
    /// Nanoseconds on CLOCK_MONOTONIC: system-wide, so uptimes compare across processes.
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
