import CKeywayShim
import Glibc
import SystemPackage

public enum ExitStatus: Equatable, CustomStringConvertible, Sendable {
    case exited(Int32)
    case signaled(Int32)

    public init(waitStatus s: Int32) {
        if s & 0x7f == 0 { self = .exited((s >> 8) & 0xff) } else { self = .signaled(s & 0x7f) }
    }

    public var description: String {
        switch self {
        case .exited(let c): return "exited with status \(c)"
        case .signaled(let s): return "killed by signal \(s)\(s == SIGSYS ? " (SIGSYS: seccomp)" : "")"
        }
    }
}

public enum Processes {
    /// posix_spawn with `fd3` as the child's descriptor 3 and nothing else above stderr.
    public static func spawn(path: String, arguments: [String], environment: [String],
                             fd3: Descriptor) throws(SystemError) -> pid_t {
        var cArgs = ([path] + arguments).map { strdup($0) } + [nil]
        var cEnv = environment.map { strdup($0) } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        let pid = kw_spawn(path, &cArgs, &cEnv, fd3.raw)
        if pid < 0 { throw SystemError.last("posix_spawn(\(path))") }
        return pid
    }

    /// Reaps every exited child without blocking.
    public static func reap() -> [(pid: pid_t, status: ExitStatus)] {
        var out: [(pid_t, ExitStatus)] = []
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { break }
            out.append((pid, ExitStatus(waitStatus: status)))
        }
        return out
    }

    /// Blocks until the given child exits, or the deadline passes (nil then).
    public static func wait(pid: pid_t, timeoutMilliseconds: Int) -> ExitStatus? {
        let deadline = MonotonicClock.now() + UInt64(timeoutMilliseconds) * 1_000_000
        while MonotonicClock.now() < deadline {
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return ExitStatus(waitStatus: status) }
            if r < 0 && Glibc.errno != EINTR { return nil }
            usleep(10_000)
        }
        return nil
    }

    public static func signal(_ pid: pid_t, _ sig: Int32) { _ = Glibc.kill(pid, sig) }

    public static var currentPID: pid_t { getpid() }
}

/// The signals keywayd acts on, delivered through a signalfd so the poll loop sees them.
public final class SignalQueue {
    public let descriptor: Descriptor

    public init() throws(SystemError) {
        let fd = kw_signalfd_open()
        if fd < 0 { throw SystemError.last("signalfd") }
        descriptor = Descriptor(adopting: fd)
    }

    public func drain() -> [Int32] {
        var out: [Int32] = []
        while out.count < 64 {
            let s = kw_signalfd_read(descriptor.raw)
            if s <= 0 { break }
            out.append(s)
        }
        return out
    }
}

/// Ctrl-C as a descriptor to poll, while one exists (the console's `/log print follow`).
public final class InterruptWatch {
    public let raw: Int32

    public init() throws(SystemError) {
        let fd = kw_interrupt_open()
        if fd < 0 { throw SystemError.last("signalfd(SIGINT)") }
        raw = fd
    }

    deinit { kw_interrupt_close(raw) }
}

public enum StandardStreams {
    /// Pipes are fully buffered by default; a child killed by SIGSYS would lose its last words.
    public static func lineBuffered() { kw_stdout_line_buffered() }

    public static func ignoreSIGPIPE() { kw_ignore_sigpipe() }

    public static func error(_ line: String) { write(line, to: 2) }

    public static func output(_ line: String) { write(line, to: 1) }

    /// Text to standard output exactly as given (no newline added).
    public static func write(_ text: String) { writeAll(text, to: 1) }

    private static func write(_ line: String, to fd: Int32) {
        writeAll(line.hasSuffix("\n") ? line : line + "\n", to: fd)
    }

    private static func writeAll(_ text: String, to fd: Int32) {
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { p -> Int in
                guard let base = p.baseAddress else { return -1 }
                return Glibc.write(fd, base + off, p.count - off)
            }
            if n < 0 { if Glibc.errno == EINTR { continue } else { break } }
            off += n
        }
    }
}
