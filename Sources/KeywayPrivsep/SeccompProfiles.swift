import Glibc
import KeywaySystem
import KeywayWire

/// The seccomp allowlists, one per role, each syscall (and, where arguments are limited, each
/// allowed form of it) with the reason it is there. Anything not listed kills the process
/// (SIGSYS). Keep these short: they are the sandbox.
public enum SeccompProfiles {
    public struct Entry: Sendable {
        public let syscall: String
        /// All must hold; none: any arguments.
        public let conditions: [SeccompRule.Condition]
        public let reason: String

        init(syscall: String, when conditions: [SeccompRule.Condition] = [], reason: String) {
            self.syscall = syscall
            self.conditions = conditions
            self.reason = reason
        }
    }

    /// No executable memory after start-up: the protection argument (the third of mmap and
    /// mprotect) must not hold PROT_EXEC, so injected bytes can never be made code.
    static let withoutExec: [SeccompRule.Condition] = [.maskedEquals(argument: 2, mask: UInt64(PROT_EXEC), value: 0)]
    /// fcntl's command (its second argument).
    static func fcntlCommand(_ command: Int32) -> [SeccompRule.Condition] {
        [.equals(argument: 1, value: UInt64(command))]
    }

    /// What single-threaded Swift and our poll loop need in every child.
    static let common: [Entry] = [
        .init(syscall: "read", reason: "signal-free reads of passed descriptors"),
        .init(syscall: "write", reason: "stderr diagnostics"),
        .init(syscall: "close", reason: "dropping descriptors of dead peers"),
        .init(syscall: "poll", reason: "the event loop"),
        .init(syscall: "ppoll", reason: "glibc may implement poll() with ppoll"),
        .init(syscall: "recvmsg", reason: "messages and passed descriptors on the links"),
        .init(syscall: "sendmsg", reason: "messages on the links"),
        // The only commands any child uses (Descriptor.setNonBlocking); not F_SETOWN, F_SETSIG,
        // F_DUPFD, locks or leases.
        .init(syscall: "fcntl", when: fcntlCommand(F_GETFL),
              reason: "F_GETFL: reading flags before setting O_NONBLOCK on received descriptors"),
        .init(syscall: "fcntl", when: fcntlCommand(F_SETFL),
              reason: "F_SETFL: O_NONBLOCK on received descriptors and links"),
        .init(syscall: "mmap", when: withoutExec, reason: "malloc's large blocks and arenas, never executable"),
        .init(syscall: "munmap", reason: "malloc returning large blocks"),
        .init(syscall: "mremap", reason: "realloc of large blocks (array growth); keeps the old protection"),
        .init(syscall: "mprotect", when: withoutExec, reason: "malloc arena setup and growth, never executable"),
        .init(syscall: "brk", reason: "malloc"),
        .init(syscall: "madvise", reason: "malloc returning memory"),
        .init(syscall: "futex", reason: "locks in the Swift runtime and the audit log mutex"),
        .init(syscall: "getrandom", reason: "hash seeds and, later, nonces"),
        .init(syscall: "clock_gettime", reason: "timers and audit timestamps when the vDSO is bypassed"),
        .init(syscall: "gettimeofday", reason: "vDSO fallback"),
        .init(syscall: "getpid", reason: "the PROCID field of audit lines"),
        .init(syscall: "gettid", reason: "Synchronization.Mutex records its owner (audit log lock)"),
        .init(syscall: "newfstatat", reason: "stdio's first write checks its stream"),
        .init(syscall: "fstat", reason: "stdio's first write checks its stream"),
        .init(syscall: "rt_sigreturn", reason: "returning from a signal handler"),
        .init(syscall: "rt_sigprocmask", reason: "the runtime masks signals around aborts"),
        .init(syscall: "exit", reason: "thread exit"),
        .init(syscall: "exit_group", reason: "process exit"),
    ]

    static let monitor: [Entry] = [
        .init(syscall: "accept4", reason: "control socket connections"),
        .init(syscall: "getsockopt", reason: "SO_PEERCRED: who is asking on the control socket"),
        // The configuration store, inside the chroot (the state directory) only.
        .init(syscall: "openat", reason: "config.rsc and its temporary file in the state directory"),
        .init(syscall: "fsync", reason: "atomic save: the file and the directory reach the disk"),
        .init(syscall: "rename", reason: "atomic save: the temporary file replaces config.rsc"),
        .init(syscall: "renameat", reason: "glibc may implement rename() with renameat"),
        .init(syscall: "renameat2", reason: "glibc may implement rename() with renameat2"),
        .init(syscall: "access", reason: "does a stored configuration exist"),
        .init(syscall: "faccessat", reason: "glibc may implement access() with faccessat"),
        .init(syscall: "faccessat2", reason: "glibc may implement access() with faccessat2"),
    ]

    static let ike: [Entry] = [
        .init(syscall: "recvfrom", reason: "ISAKMP datagrams on UDP 500, with their sender"),
        .init(syscall: "sendto", reason: "ISAKMP datagrams to peers on UDP 500 and 4500"),
    ]

    static let datapath: [Entry] = [
        .init(syscall: "recvfrom", reason: "TUN and raw ESP/AH packets (recv())"),
        .init(syscall: "sendto", reason: "single ESP/AH packets and ESP in UDP outside a batch"),
        .init(syscall: "recvmmsg", reason: "raw ESP/AH packets, many per call"),
        .init(syscall: "sendmmsg", reason: "sealed ESP/AH packets, many per call"),
    ]

    public static func entries(for role: Role) -> [Entry] {
        switch role {
        case .monitor: return common + monitor
        case .ike: return common + ike
        case .datapath: return common + datapath
        case .parent, .client: return []
        }
    }

    /// The role's filter, as installed.
    public static func rules(for role: Role) -> [SeccompRule] {
        entries(for: role).map { SeccompRule($0.syscall, when: $0.conditions) }
    }
}
