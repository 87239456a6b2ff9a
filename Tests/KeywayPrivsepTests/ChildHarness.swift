import Glibc
import KeywayPrivsep
import KeywaySystem
import KeywayWire
import XCTest

/// Plays keywayd for one real child executable: spawns it, passes descriptors, orders the
/// sandbox, and then talks to it over the same link keywayd would use.
final class ChildHarness {
    /// keywayd's default `--user keyway`: each role has a user of its own.
    static let users = RoleUsers.names(base: "keyway")

    static func user(for role: Role) -> String {
        switch role {
        case .ike: return users.ike
        case .datapath: return users.datapath
        default: return users.monitor
        }
    }

    let pid: pid_t
    let link: Descriptor
    /// Audit events the child sent on its link (keywayd would attribute and write them).
    private var events: [AuditEvent] = []
    private var nextID: UInt32 = 1

    /// Skips unless run as root with the role's user present (CI and contrib/test.sh both are).
    static func requirements(_ role: Role) throws -> (UserIdentity, String) {
        guard Users.effectiveUID == 0 else { throw XCTSkip("needs root: run contrib/test.sh") }
        guard let user = Users.lookup(user(for: role)) else {
            throw XCTSkip("needs the \(user(for: role)) user: contrib/create-user.sh")
        }
        guard let dir = Files.executableDirectory() else { throw XCTSkip("cannot locate build products") }
        return (user, dir)
    }

    static func emptyRoot() throws -> String {
        var template = Array("/tmp/keyway-test-root-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw SystemError.last("mkdtemp") }
        let path = String(decoding: template.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        chmod(path, 0o555)
        return path
    }

    let role: Role

    init(role: Role, grants: [(DescriptorKind, Descriptor)]) throws {
        self.role = role
        let (user, dir) = try Self.requirements(role)
        let (mine, theirs) = try SeqPacket.pair()
        pid = try Processes.spawn(path: dir + "/" + role.description, arguments: [],
                                  environment: ["SWIFT_BACKTRACE=enable=no"], fd3: theirs)
        theirs.close()
        link = mine
        try send(.hello(Hello(role: .parent, pid: UInt32(getpid()), startedAt: MonotonicClock.now(), sandboxed: false)))
        for (kind, fd) in grants {
            try SeqPacket.send(link, Frame.encode(.fdGrant(FdGrant(kind: kind))), descriptors: [fd.raw])
        }
        try send(.enterSandbox(EnterSandbox(uid: user.uid, gid: user.gid, root: try Self.emptyRoot())))
    }

    deinit {
        Processes.signal(pid, SIGKILL)
        _ = Processes.wait(pid: pid, timeoutMilliseconds: 2000)
    }

    func send(_ message: Message) throws {
        try SeqPacket.send(link, Frame.encode(message, requestID: nextID))
        nextID += 1
    }

    func sendRaw(_ bytes: [UInt8]) throws { try SeqPacket.send(link, bytes) }

    /// The next message from the child other than an audit event, within the timeout (audit
    /// events are kept for `auditEvents`).
    func receive(timeoutMilliseconds: Int = 5000) throws -> Message? {
        let deadline = MonotonicClock.now() + UInt64(timeoutMilliseconds) * 1_000_000
        while true {
            let now = MonotonicClock.now()
            guard now < deadline else { return nil }
            let ready = try Poll.wait([(fd: link.raw, events: .readable)],
                                      timeoutMilliseconds: Int((deadline - now) / 1_000_000) + 1)
            guard let r = ready.first, !r.isEmpty else { return nil }
            guard case .datagram(let d) = try SeqPacket.receive(link) else { return nil }
            let message = try Frame.decode(d.bytes).message
            if case .auditEvent(let event) = message { events.append(event); continue }
            return message
        }
    }

    /// Every audit event the child has sent so far.
    func auditEvents() throws -> [AuditEvent] {
        while try receive(timeoutMilliseconds: 100) != nil {}
        return events
    }

    var isAlive: Bool { kill(pid, 0) == 0 && Processes.wait(pid: pid, timeoutMilliseconds: 0) == nil }
}
