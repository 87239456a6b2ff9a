import CKeywayCap
import CKeywayShim
import Glibc
import SystemPackage

public struct UserIdentity: Sendable, Equatable {
    public let name: String
    public let uid: uid_t
    public let gid: gid_t

    public init(name: String, uid: uid_t, gid: gid_t) {
        self.name = name
        self.uid = uid
        self.gid = gid
    }
}

public enum Users {
    /// Looks a user up by name (before any chroot: /etc/passwd is out of reach afterwards).
    public static func lookup(_ name: String) -> UserIdentity? {
        guard let pw = getpwnam(name) else { return nil }
        return UserIdentity(name: name, uid: pw.pointee.pw_uid, gid: pw.pointee.pw_gid)
    }

    public static func groupID(_ name: String) -> gid_t? {
        guard let gr = getgrnam(name) else { return nil }
        return gr.pointee.gr_gid
    }

    public static var effectiveUID: uid_t { geteuid() }

    /// A group's id and the uids of its listed members (from /etc/group, before any chroot).
    public static func group(_ name: String) -> (gid: gid_t, members: [uid_t])? {
        guard let gr = getgrnam(name) else { return nil }
        let gid = gr.pointee.gr_gid
        var uids: [uid_t] = []
        if var member = gr.pointee.gr_mem {
            while let m = member.pointee {
                if let pw = getpwnam(m) { uids.append(pw.pointee.pw_uid) }
                member += 1
            }
        }
        return (gid, uids)
    }
}

/// The steps that take a freshly spawned child from root to an unprivileged sandbox.
/// Each throws a SystemError naming the step; callers exit non-zero on any of them.
public enum Privileges {
    public static func enterChroot(_ directory: String) throws(SystemError) {
        _ = try retryingEINTR("chroot(\(directory))") { chroot(directory) }
        _ = try retryingEINTR("chdir(/)") { chdir("/") }
    }

    /// Switches every uid and gid, clearing supplementary groups. Capabilities are kept across
    /// the switch (PR_SET_KEEPCAPS) only so that `clearCapabilities` can still drop the bounding set.
    public static func switchUser(uid: uid_t, gid: gid_t) throws(SystemError) {
        _ = try retryingEINTR("prctl(PR_SET_KEEPCAPS)") { kw_set_keepcaps(1) }
        _ = try retryingEINTR("setgroups") { setgroups(0, nil) }
        _ = try retryingEINTR("setresgid") { kw_setresgid(gid, gid, gid) }
        _ = try retryingEINTR("setresuid") { kw_setresuid(uid, uid, uid) }
    }

    /// Empties the bounding, ambient, effective, permitted and inheritable sets.
    public static func clearCapabilities() throws(SystemError) {
        // Raise CAP_SETPCAP (still permitted thanks to KEEPCAPS) just long enough to drop the bounding set.
        if let caps = cap_get_proc() {
            var setpcap: [cap_value_t] = [CAP_SETPCAP]
            cap_set_flag(caps, CAP_EFFECTIVE, 1, &setpcap, CAP_SET)
            _ = cap_set_proc(caps)
            cap_free(UnsafeMutableRawPointer(caps))
        }
        let last = cap_max_bits()
        for cap in 0..<Int32(last) {
            if kw_capbset_drop(cap) < 0 && Glibc.errno != EINVAL {
                throw SystemError.last("prctl(PR_CAPBSET_DROP \(cap))")
            }
        }
        _ = try retryingEINTR("prctl(PR_CAP_AMBIENT_CLEAR_ALL)") { kw_ambient_clear_all() }
        guard let empty = cap_init() else { throw SystemError.last("cap_init") }
        defer { cap_free(UnsafeMutableRawPointer(empty)) }
        _ = try retryingEINTR("cap_set_proc(empty)") { cap_set_proc(empty) }
        _ = try retryingEINTR("prctl(PR_SET_KEEPCAPS 0)") { kw_set_keepcaps(0) }
        // No core dumps and no /proc/PID/mem for processes that hold keys.
        _ = try retryingEINTR("prctl(PR_SET_DUMPABLE 0)") { kw_set_dumpable(0) }
    }

    /// keywayd after opening everything: keeps only `keep` in the bounding, permitted and
    /// effective sets (nothing inheritable or ambient). It stays uid 0, so what it spawns (the
    /// children before they drop everything) gets exactly these.
    public enum Capability: Int32, Sendable, CaseIterable {
        case dacReadSearch = 2, kill = 5, setgid = 6, setuid = 7, setpcap = 8, netAdmin = 12, sysChroot = 18
    }

    public static func limitCapabilities(to kept: [Capability]) throws(SystemError) {
        let keep = kept.map { cap_value_t($0.rawValue) }
        let last = cap_max_bits()
        for cap in 0..<Int32(last) where !keep.contains(cap) {
            if kw_capbset_drop(cap) < 0 && Glibc.errno != EINVAL {
                throw SystemError.last("prctl(PR_CAPBSET_DROP \(cap))")
            }
        }
        _ = try retryingEINTR("prctl(PR_CAP_AMBIENT_CLEAR_ALL)") { kw_ambient_clear_all() }
        guard let caps = cap_init() else { throw SystemError.last("cap_init") }
        defer { cap_free(UnsafeMutableRawPointer(caps)) }
        var values = keep
        if !values.isEmpty {
            cap_set_flag(caps, CAP_PERMITTED, Int32(values.count), &values, CAP_SET)
            cap_set_flag(caps, CAP_EFFECTIVE, Int32(values.count), &values, CAP_SET)
        }
        _ = try retryingEINTR("cap_set_proc") { cap_set_proc(caps) }
    }

    public static func setNoNewPrivileges() throws(SystemError) {
        _ = try retryingEINTR("prctl(PR_SET_NO_NEW_PRIVS)") { kw_set_no_new_privs() }
    }

    /// What the process holds now, read back after the drop rather than assumed.
    public struct State: Sendable, CustomStringConvertible {
        public let realUID: uid_t, effectiveUID: uid_t, savedUID: uid_t
        public let anyCapability: Bool
        public let noNewPrivileges: Bool
        public var description: String {
            "uid=\(realUID)/\(effectiveUID)/\(savedUID) caps=\(anyCapability ? "some" : "none") nnp=\(noNewPrivileges)"
        }
    }

    public static func current() -> State {
        var r: uid_t = 0, e: uid_t = 0, s: uid_t = 0
        kw_getresuid(&r, &e, &s)
        var any = false
        if let caps = cap_get_proc() {
            if let empty = cap_init() {
                any = cap_compare(caps, empty) != 0
                cap_free(UnsafeMutableRawPointer(empty))
            }
            cap_free(UnsafeMutableRawPointer(caps))
        }
        return State(realUID: r, effectiveUID: e, savedUID: s, anyCapability: any,
                     noNewPrivileges: kw_get_no_new_privs() == 1)
    }

    /// Dies with the parent: a child must never outlive keywayd's supervision.
    public static func dieWithParent() {
        _ = kw_set_parent_death_signal(SIGKILL)
    }
}
