import CKeywaySeccomp
import CKeywayShim
import Glibc
import SystemPackage

public enum SeccompError: Error, CustomStringConvertible {
    case unknownSyscall(String)
    case libseccomp(String, Int32)
    public var description: String {
        switch self {
        case .unknownSyscall(let n): return "seccomp: unknown syscall name \(n)"
        case .libseccomp(let call, let rc): return "seccomp: \(call) failed (\(rc))"
        }
    }
}

/// An allowlist filter: every syscall not named kills the whole process (SIGSYS).
public enum Seccomp {
    public static func install(allowing names: [String]) throws(SeccompError) {
        guard let ctx = seccomp_init(SCMP_ACT_KILL_PROCESS) else { throw .libseccomp("seccomp_init", -1) }
        defer { seccomp_release(ctx) }
        for name in names {
            let nr = seccomp_syscall_resolve_name(name)
            if nr == __NR_SCMP_ERROR { throw .unknownSyscall(name) }
            let rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 0, nil)
            if rc < 0 { throw .libseccomp("seccomp_rule_add(\(name))", rc) }
        }
        let rc = seccomp_load(ctx)
        if rc < 0 { throw .libseccomp("seccomp_load", rc) }
    }

    public static func syscallNumber(_ name: String) -> Int? {
        let nr = seccomp_syscall_resolve_name(name)
        return nr == __NR_SCMP_ERROR ? nil : Int(nr)
    }

    /// Issues a syscall by number with no arguments (the sandbox check tool uses this).
    public static func rawSyscall(_ nr: Int) -> Int { kw_raw_syscall0(nr) }
}
