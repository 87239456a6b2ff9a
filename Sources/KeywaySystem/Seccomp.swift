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

/// One allowlist rule: a syscall, allowed when every condition on its arguments holds (no
/// condition: whatever the arguments). Several rules for one syscall allow any of them.
public struct SeccompRule: Sendable, Equatable {
    public enum Condition: Sendable, Equatable {
        /// Argument `argument` (0-based) equals `value`.
        case equals(argument: UInt32, value: UInt64)
        /// Argument `argument` masked with `mask` equals `value` (value 0: those bits are clear).
        case maskedEquals(argument: UInt32, mask: UInt64, value: UInt64)
    }

    public let syscall: String
    public let conditions: [Condition]

    public init(_ syscall: String, when conditions: [Condition] = []) {
        self.syscall = syscall
        self.conditions = conditions
    }
}

/// An allowlist filter: every syscall (or argument) not allowed kills the whole process (SIGSYS).
public enum Seccomp {
    public static func install(_ rules: [SeccompRule]) throws(SeccompError) {
        guard let ctx = seccomp_init(SCMP_ACT_KILL_PROCESS) else { throw .libseccomp("seccomp_init", -1) }
        defer { seccomp_release(ctx) }
        for rule in rules {
            let nr = seccomp_syscall_resolve_name(rule.syscall)
            if nr == __NR_SCMP_ERROR { throw .unknownSyscall(rule.syscall) }
            let comparisons = rule.conditions.map { condition -> scmp_arg_cmp in
                switch condition {
                case .equals(let argument, let value):
                    return scmp_arg_cmp(arg: argument, op: SCMP_CMP_EQ, datum_a: value, datum_b: 0)
                case .maskedEquals(let argument, let mask, let value):
                    return scmp_arg_cmp(arg: argument, op: SCMP_CMP_MASKED_EQ, datum_a: mask, datum_b: value)
                }
            }
            let rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, UInt32(comparisons.count), comparisons)
            if rc < 0 { throw .libseccomp("seccomp_rule_add(\(rule.syscall))", rc) }
        }
        let rc = seccomp_load(ctx)
        if rc < 0 { throw .libseccomp("seccomp_load", rc) }
    }

    public static func install(allowing names: [String]) throws(SeccompError) {
        try install(names.map { SeccompRule($0) })
    }

    public static func syscallNumber(_ name: String) -> Int? {
        let nr = seccomp_syscall_resolve_name(name)
        return nr == __NR_SCMP_ERROR ? nil : Int(nr)
    }

    /// Issues a syscall by number with up to six integer arguments (the sandbox check tool uses this).
    public static func rawSyscall(_ nr: Int, _ arguments: Int...) -> Int {
        let a = arguments + Array(repeating: 0, count: max(0, 6 - arguments.count))
        return kw_raw_syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
    }
}
