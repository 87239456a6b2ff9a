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
    public static func wait(_ interests: [(fd: Int32, events: PollEvents)],
                            timeoutMilliseconds: Int?) throws(SystemError) -> [PollEvents] {
        var pfds = interests.map { pollfd(fd: $0.fd, events: $0.events.rawValue, revents: 0) }
        let rc = Glibc.poll(&pfds, nfds_t(pfds.count), Int32(clamping: timeoutMilliseconds ?? -1))
        if rc < 0 {
            if Glibc.errno == EINTR { return Array(repeating: [], count: pfds.count) }
            throw SystemError.last("poll")
        }
        return pfds.map { PollEvents(rawValue: $0.revents) }
    }
}

/// A poll set kept across loop turns: its storage is reused, so a busy loop allocates nothing.
public final class PollSet {
    private var fds: [pollfd] = []

    public init() {}

    /// Empties the set, keeping its storage.
    public func removeAll() { fds.removeAll(keepingCapacity: true) }

    public func append(_ fd: Int32, _ events: PollEvents) {
        fds.append(pollfd(fd: fd, events: events.rawValue, revents: 0))
    }

    public var count: Int { fds.count }

    /// Waits (nil: for ever); afterwards `ready(i)` says what happened to the i-th descriptor.
    /// EINTR counts as a timeout (nothing ready).
    public func wait(timeoutMilliseconds: Int?) throws(SystemError) {
        for i in fds.indices { fds[i].revents = 0 }
        let rc = fds.withUnsafeMutableBufferPointer { p in
            Glibc.poll(p.baseAddress, nfds_t(p.count), Int32(clamping: timeoutMilliseconds ?? -1))
        }
        if rc < 0 {
            if Glibc.errno == EINTR { return }
            throw SystemError.last("poll")
        }
    }

    public func ready(_ i: Int) -> PollEvents { i >= 0 && i < fds.count ? PollEvents(rawValue: fds[i].revents) : [] }
}

public enum MonotonicClock {
    /// Nanoseconds on CLOCK_MONOTONIC: system-wide, so uptimes compare across processes.
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

public enum WallClock {
    /// Microseconds since the epoch (CLOCK_REALTIME).
    public static func nowMicroseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec / 1000)
    }

    /// The local time zone's offset from UTC at `epochSeconds`, in seconds (0 where no time zone
    /// file can be read, as in a chroot).
    public static func utcOffset(atEpochSeconds epochSeconds: Int64) -> Int64 {
        var t = time_t(epochSeconds)
        var tm = Glibc.tm()
        guard localtime_r(&t, &tm) != nil else { return 0 }
        return Int64(tm.tm_gmtoff)
    }
}
