import Glibc
import KeywayAudit
import KeywaySystem
import KeywayWire

/// What a role adds to the common child loop.
public protocol ChildBehavior: AnyObject {
    /// Descriptors the role cannot start without.
    var requiredDescriptors: Set<DescriptorKind> { get }
    /// Called once inside the sandbox, before the role says hello: a role that cannot serve at all
    /// (keyway-monitor with an unusable store) exits here, so keywayd knows it never started.
    func prepare(runtime: ChildRuntime)
    /// Called once, inside the sandbox, before the loop starts.
    func start(runtime: ChildRuntime)
    /// Descriptors of the role's own to watch (control connections, sockets).
    func pollInterests() -> [(fd: Int32, events: PollEvents)]
    func handleReady(fd: Int32, events: PollEvents, runtime: ChildRuntime)
    /// A message the common loop does not handle itself, already allowlisted.
    func handle(_ envelope: Envelope, from peer: Role, runtime: ChildRuntime)
    func counters() -> [Counter]
    /// Last chance to touch the file system (libraries that load plugins) before the chroot.
    func beforeSandbox()
    /// A peer said hello on a (new) link: resynchronise it.
    func peerReady(_ peer: Role, runtime: ChildRuntime)
    /// Called after every wake-up (at least once a second): timers.
    func tick(runtime: ChildRuntime)
    /// keywayd asked the process to stop; it exits when this returns.
    func stopping(runtime: ChildRuntime)
}

extension ChildBehavior {
    public func beforeSandbox() {}
    public func prepare(runtime: ChildRuntime) {}
    public func peerReady(_ peer: Role, runtime: ChildRuntime) {}
    public func tick(runtime: ChildRuntime) {}
    public func stopping(runtime: ChildRuntime) {}
}

/// The common life of a sandboxed child: receive descriptors from keywayd, enter the sandbox,
/// say hello to the parent and peers, then serve the links in a single-threaded poll loop.
public final class ChildRuntime {
    public let role: Role
    public let audit: AuditLog
    public let startedAt = MonotonicClock.now()
    public private(set) var parent: Link
    public private(set) var links: [Role: Link] = [:] { didSet { linksChanged = true } }
    private var linksChanged = true
    public private(set) var parentHello: Hello?
    public private(set) var peerRestarts: [Role: UInt32] = [:]
    public private(set) var sandboxIdentity: (uid: UInt32, gid: UInt32)?
    /// Descriptors granted by the parent that are not links; the behavior takes what it needs.
    public private(set) var granted: [DescriptorKind: Descriptor] = [:]
    public var wire = WireCounters()
    private let behavior: ChildBehavior
    /// Role messages that arrived before the sandbox; handed to the behavior once it started.
    private var early: [Envelope] = []
    /// What keywayd sent while `keepAlive` answered its pings in the middle of long work.
    private var deferred: [(Envelope, [Descriptor])] = []
    private var lastKeepAlive: UInt64 = 0

    /// A message budget per link per wake-up, so one noisy peer cannot starve the others.
    static let batchPerWakeup = 64

    public init(role: Role, behavior: ChildBehavior, parentSocket: Descriptor) {
        self.role = role
        self.behavior = behavior
        self.parent = Link(peer: .parent, socket: parentSocket)
        // Audit events go to keywayd on this same link: it attributes them and writes syslog.
        self.audit = AuditLog(appName: role.description, output: LinkAuditOutput(socket: parentSocket.raw))
    }

    /// Entry point of every child executable. Never returns.
    public static func run(role: Role, behavior: ChildBehavior) -> Never {
        StandardStreams.lineBuffered()
        StandardStreams.ignoreSIGPIPE()
        Privileges.dieWithParent()
        let runtime = ChildRuntime(role: role, behavior: behavior, parentSocket: Descriptor(adopting: 3))
        runtime.main()
    }

    func main() -> Never {
        let sandbox = bootstrap()
        let missing = behavior.requiredDescriptors.subtracting(granted.keys)
        if !missing.isEmpty {
            fail("start-up: keywayd did not pass \(missing.map(\.description).sorted().joined(separator: ", "))")
        }
        behavior.beforeSandbox()
        do {
            try Sandbox.enter(role: role, uid: sandbox.uid, gid: sandbox.gid, root: sandbox.root)
        } catch {
            fail("\(error)")
        }
        sandboxIdentity = (sandbox.uid, sandbox.gid)
        audit.event(.informational, msgID: "start", "\(role) sandboxed",
                    [("uid", String(sandbox.uid)), ("root", sandbox.root)])
        behavior.prepare(runtime: self)
        sayHello(on: parent)
        for link in links.values { sayHello(on: link) }
        behavior.start(runtime: self)
        for envelope in early { behavior.handle(envelope, from: .parent, runtime: self) }
        early.removeAll()
        loop()
    }

    /// Blocking reads from the parent until EnterSandbox: descriptors arrive one per FdGrant.
    private func bootstrap() -> EnterSandbox {
        for _ in 0..<64 {
            switch parent.receive(as: role, wait: true) {
            case .closed: fail("keywayd closed the link before start-up finished")
            case .idle, .partial: continue
            case .rejected(let error): reject(error, from: .parent)
            case .message(let envelope, let descriptors):
                wire.accepted()
                switch envelope.message {
                case .fdGrant(let grant):
                    take(grant, descriptors: descriptors)
                case .enterSandbox(let s):
                    return s
                case .hello(let h):
                    parentHello = h
                case .peerRestarted(let r):
                    peerRestarts[r.role] = r.restarts
                default:
                    early.append(envelope)
                }
            }
        }
        fail("start-up: too many messages before EnterSandbox")
    }

    private func take(_ grant: FdGrant, descriptors: [Descriptor]) {
        guard descriptors.count == 1, let fd = descriptors.first else {
            wire.bump("fdgrant-without-one-descriptor")
            audit.rateLimitedEvent(key: "fdgrant", .warning, msgID: "wire-reject",
                                   "FdGrant for \(grant.kind) carried \(descriptors.count) descriptors")
            return
        }
        if let peer = grant.kind.linkedRole {
            guard role.peers.contains(peer) else {
                wire.bump("fdgrant-unexpected-link")
                return
            }
            let link = Link(peer: peer, socket: fd)
            try? fd.setNonBlocking()
            links[peer] = link
            if sandboxIdentity != nil { sayHello(on: link) }
        } else if sandboxIdentity == nil {
            granted[grant.kind] = fd
        } else {
            // After start-up only links are replaced; anything else is refused.
            wire.bump("fdgrant-after-start")
        }
    }

    private func sayHello(on link: Link) {
        let hello = Hello(role: role, pid: UInt32(getpid()), startedAt: startedAt, sandboxed: sandboxIdentity != nil)
        do { try link.send(.hello(hello)) } catch {
            audit.event(.warning, msgID: "link", "hello to \(link.peer) failed: \(error)")
        }
    }

    private func loop() -> Never {
        try? parent.socket.setNonBlocking()
        // The poll set is rebuilt only when the links change: a busy datapath turns this loop tens
        // of thousands of times a second, and must not allocate each time.
        var linkList: [Link] = []
        let set = PollSet()
        while true {
            dispatchDeferred()
            if linksChanged {
                linkList = [parent] + links.values.sorted { $0.peer.rawValue < $1.peer.rawValue }
                linksChanged = false
            }
            let own = behavior.pollInterests()
            set.removeAll()
            // A link with pages or messages waiting for room is watched for room as well.
            for link in linkList { set.append(link.socket.raw, link.hasPending ? [.readable, .writable] : .readable) }
            for interest in own { set.append(interest.fd, interest.events) }
            do { try set.wait(timeoutMilliseconds: 1000) } catch { fail("poll: \(error)") }
            for (i, link) in linkList.enumerated() where !set.ready(i).isEmpty {
                if link.hasPending, !set.ready(i).intersection([.writable, .error, .hangup]).isEmpty { drain(link) }
                serve(link)
            }
            for (j, interest) in own.enumerated() where !set.ready(linkList.count + j).isEmpty {
                behavior.handleReady(fd: interest.fd, events: set.ready(linkList.count + j), runtime: self)
            }
            behavior.tick(runtime: self)
            audit.flush()
        }
    }

    /// Sends what waits on a link; a broken link is noticed by its next read.
    private func drain(_ link: Link) {
        do { try link.flush() } catch {
            audit.event(.warning, msgID: "link", "sending to \(link.peer) failed: \(error)")
        }
    }

    /// For long work inside one turn of the loop (a 100,000-policy transaction in a debug build
    /// takes longer than keywayd's patience): answers keywayd's pings so that it does not take the
    /// child for hung, and keeps every other message it sent for the loop, in order. Cheap enough
    /// to call often: it reads the link at most every 200 ms.
    public func keepAlive() {
        let now = MonotonicClock.now()
        guard sandboxIdentity != nil, now >= lastKeepAlive + 200_000_000 else { return }
        lastKeepAlive = now
        for _ in 0..<Self.batchPerWakeup {
            switch parent.receive(as: role) {
            case .idle: return
            case .partial: continue
            case .closed:
                audit.event(.error, msgID: "link", "keywayd went away; exiting")
                exit(1)
            case .rejected(let error):
                reject(error, from: .parent)
            case .message(let envelope, let descriptors):
                wire.accepted()
                // A ping stands alone: answered now, whatever else waits.
                if case .ping(let p) = envelope.message {
                    try? parent.send(.pong(Pong(nonce: p.nonce)), requestID: envelope.requestID)
                } else {
                    deferred.append((envelope, descriptors))
                }
            }
        }
    }

    /// What keepAlive kept, in the order keywayd sent it.
    private func dispatchDeferred() {
        while !deferred.isEmpty {
            let (envelope, descriptors) = deferred.removeFirst()
            dispatch(envelope, from: parent, descriptors: descriptors)
        }
    }

    private func serve(_ link: Link) {
        if link === parent { dispatchDeferred() }
        for _ in 0..<Self.batchPerWakeup {
            switch link.receive(as: role) {
            case .idle: return
            case .partial: continue
            case .closed:
                if link.peer == .parent {
                    audit.event(.error, msgID: "link", "keywayd went away; exiting")
                    exit(1)
                }
                audit.event(.notice, msgID: "link", "link to \(link.peer) closed")
                if links[link.peer] === link { links[link.peer] = nil }
                return
            case .rejected(let error):
                reject(error, from: link.peer)
            case .message(let envelope, let descriptors):
                wire.accepted()
                dispatch(envelope, from: link, descriptors: descriptors)
            }
        }
    }

    private func dispatch(_ envelope: Envelope, from link: Link, descriptors: [Descriptor]) {
        switch envelope.message {
        case .hello(let h):
            if link.peer == .parent { parentHello = h } else {
                link.hello = h
                behavior.peerReady(link.peer, runtime: self)
            }
        case .ping(let p):
            try? link.send(.pong(Pong(nonce: p.nonce)), requestID: envelope.requestID)
        case .counterRequest:
            try? link.send(.counterReply(CounterReply(role: role, counters: allCounters())),
                           requestID: envelope.requestID)
        case .fdGrant(let g):
            take(g, descriptors: descriptors)
        case .peerRestarted(let r):
            peerRestarts[r.role] = r.restarts
            if r.role != role {
                audit.event(.notice, msgID: "peer-restart", "\(r.role) restarted",
                            [("pid", String(r.pid)), ("restarts", String(r.restarts))])
            }
        case .shutdown:
            behavior.stopping(runtime: self)
            audit.event(.informational, msgID: "stop", "\(role) stopping on request")
            exit(0)
        case .enterSandbox:
            wire.bump("sandbox-request-after-start")
        default:
            behavior.handle(envelope, from: link.peer, runtime: self)
        }
    }

    public func allCounters() -> [Counter] { wire.asCounters + behavior.counters() }

    /// Dropped, counted and audited (at a bounded rate); the process keeps running.
    public func reject(_ error: WireError, from peer: Role) { wire.reject(error, from: peer, audit: audit) }

    public func fail(_ message: String) -> Never {
        StandardStreams.error("\(role): \(message)")
        audit.event(.critical, msgID: "fatal", message)
        exit(1)
    }
}
