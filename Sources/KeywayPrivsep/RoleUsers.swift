import Glibc
import KeywaySystem
import KeywayWire

/// The unprivileged users the children run as, one each: a child must not be able to signal,
/// ptrace or F_SETOWN another, and the kernel allows those between processes of one uid.
/// keywayd's `--user BASE` names them BASE-ike, BASE-datapath and BASE-monitor.
public struct RoleUsers: Sendable, Equatable {
    public let ike: UserIdentity
    public let datapath: UserIdentity
    public let monitor: UserIdentity

    public init(ike: UserIdentity, datapath: UserIdentity, monitor: UserIdentity) {
        self.ike = ike
        self.datapath = datapath
        self.monitor = monitor
    }

    public subscript(role: Role) -> UserIdentity? {
        switch role {
        case .ike: return ike
        case .datapath: return datapath
        case .monitor: return monitor
        case .parent, .client: return nil
        }
    }

    public var all: [UserIdentity] { [ike, datapath, monitor] }

    /// The user name each child runs as under `--user base`.
    public static func names(base: String) -> (ike: String, datapath: String, monitor: String) {
        (base + "-ike", base + "-datapath", base + "-monitor")
    }

    /// Looks the three users up and checks them: each exists, none is root, no two share a uid.
    public static func resolve(base: String, lookup: (String) -> UserIdentity?) throws(RoleUsersError) -> RoleUsers {
        let n = names(base: base)
        let wanted = [n.ike, n.datapath, n.monitor]
        let found = wanted.map(lookup)
        let missing = zip(wanted, found).filter { $0.1 == nil }.map(\.0)
        guard missing.isEmpty else { throw .missing(base: base, names: missing) }
        let users = found.compactMap { $0 }
        if let root = users.first(where: { $0.uid == 0 }) { throw .root(root.name) }
        for (i, a) in users.enumerated() {
            for b in users[(i + 1)...] where a.uid == b.uid { throw .sharedUID(a.name, b.name, a.uid) }
        }
        return RoleUsers(ike: users[0], datapath: users[1], monitor: users[2])
    }
}

public enum RoleUsersError: Error, Equatable, CustomStringConvertible {
    case missing(base: String, names: [String])
    case root(String)
    case sharedUID(String, String, uid_t)

    public var description: String {
        switch self {
        case .missing(let base, let names):
            let n = RoleUsers.names(base: base)
            return """
            \(names.count == 1 ? "user" : "users") \(names.map { "'\($0)'" }.joined(separator: ", ")) \
            \(names.count == 1 ? "does" : "do") not exist (--user \(base): the children run as \(n.ike), \(n.datapath) \
            and \(n.monitor), one user each). Create them with
                contrib/create-user.sh
            or  systemd-sysusers contrib/sysusers.d/keyway.conf
            or, for each NAME,
                useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin NAME
            """
        case .root(let name):
            return "user '\(name)' has uid 0; the children must run unprivileged"
        case .sharedUID(let a, let b, let uid):
            return "users '\(a)' and '\(b)' share uid \(uid); "
                + "each child needs a uid of its own so that none can signal another"
        }
    }
}
