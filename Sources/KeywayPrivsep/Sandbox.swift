import Glibc
import KeywaySystem
import KeywayWire

public enum SandboxError: Error, CustomStringConvertible {
    case step(String, SystemError)
    case seccomp(SeccompError)
    case stillPrivileged(Privileges.State)

    public var description: String {
        switch self {
        case .step(let s, let e): return "sandbox: \(s) failed: \(e)"
        case .seccomp(let e): return "sandbox: \(e)"
        case .stillPrivileged(let st): return "sandbox: still privileged after the drop (\(st)); refusing to run"
        }
    }
}

/// Takes a child from root to its sandbox. Called once its descriptors have arrived.
public enum Sandbox {
    public static func enter(role: Role, uid: uid_t, gid: gid_t, root: String) throws(SandboxError) {
        guard uid != 0 else { throw .stillPrivileged(Privileges.current()) }
        // Still root with every capability: leave the real file system first.
        do { try Privileges.enterChroot(root) } catch { throw .step("chroot to \(root)", error) }
        // Inside \(root) now; still uid 0, so drop the identity next.
        do { try Privileges.switchUser(uid: uid, gid: gid) } catch { throw .step("switching to uid \(uid)", error) }
        // Unprivileged uid, but the capability sets survived the switch (KEEPCAPS): empty them all.
        do { try Privileges.clearCapabilities() } catch { throw .step("clearing capabilities", error) }
        // Nothing privileged left; the credential change reset the parent-death signal, so set it again.
        Privileges.dieWithParent()
        let state = Privileges.current()
        // Never run on as root or with a capability, whatever the steps above reported.
        guard state.realUID != 0, state.effectiveUID != 0, state.savedUID != 0, !state.anyCapability else {
            throw .stillPrivileged(state)
        }
        // No execve can ever gain privileges again (setuid binaries, file capabilities).
        do { try Privileges.setNoNewPrivileges() } catch { throw .step("PR_SET_NO_NEW_PRIVS", error) }
        // From here on only the role's allowlist: any other syscall kills the process.
        do { try Seccomp.install(SeccompProfiles.rules(for: role)) } catch { throw .seccomp(error) }
    }
}
