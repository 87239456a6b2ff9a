import Glibc
import KeywayAudit
import KeywaySystem
import KeywayTrust
import KeywayVocabulary
import KeywayWire

/// What keywayd was told on its command line, resolved.
public struct SupervisorSettings: Sendable {
    public var executableDirectory: String
    /// One unprivileged user per child.
    public var users: RoleUsers
    public var runDirectory: String
    public var stateDirectory: String
    public var syslogPath: String
    /// How audit lines are written there: syslog(3)'s format (what /dev/log's parsers expect) or RFC 5424.
    public var syslogFormat = SyslogFormat.local
    public var tunName: String
    /// The --config script: seeds an empty configuration store.
    public var configPath: String?
    /// keyway-monitor's command line (keywayd's --on-bad-store choice).
    public var monitorArguments: [String] = []
    /// Operators who may change the configuration, and those who may only look.
    public var adminGroup = "keyway"
    public var readOnlyGroup = "keyway-read"
    /// The TUN device's MTU until keywayd has looked up the outer interfaces (OuterPathWatch).
    public var tunMTU: Int32 = 1400
    /// `--tun-mtu N`: a TUN MTU the operator fixed; nil: it follows the outer interfaces.
    public var fixedTunMTU: Int32?
    /// Open the TUN device with virtio-net headers and TSO/checksum offloads where the kernel has them.
    public var tunOffloads = true
    /// Outer packets carry this mark so that the routes into the TUN device never catch them.
    public var bypassMark: UInt32 = 0x4b57
    /// The routing table for protected destinations (into the TUN device); packets without
    /// the bypass mark look it up first (`ip rule not fwmark MARK table TABLE`).
    public var routeTable: UInt32 = 0x4b57
    public var ikePort: UInt16 = 500
    public var natTraversalPort: UInt16 = 4500
    /// keywayd pings each child this often and restarts one that has not answered for
    /// `unansweredPings` intervals.
    public var pingInterval: UInt64 = 3_000_000_000
    public var unansweredPings: UInt64 = 3

    public init(executableDirectory: String, users: RoleUsers, runDirectory: String, stateDirectory: String,
                syslogPath: String, tunName: String) {
        self.executableDirectory = executableDirectory
        self.users = users
        self.runDirectory = runDirectory
        self.stateDirectory = stateDirectory
        self.syslogPath = syslogPath
        self.tunName = tunName
    }

    public var controlSocketPath: String { runDirectory + "/control.sock" }
    /// The chroot of children that need no files at all: empty and not writable by them.
    public var emptyRoot: String { runDirectory + "/empty" }
}

public struct SupervisorError: Error, CustomStringConvertible {
    public let description: String
    init(_ what: String, _ error: any Error) { description = "\(what): \(error)" }
    init(_ error: UntrustedExecutable) { description = error.description }
}

/// keywayd's core: owns every privileged object, spawns and sandboxes the children, restarts
/// the ones that die, and never reads network input.
public final class Supervisor {
    final class Child {
        let role: Role
        var pid: pid_t = 0
        var link: Link?
        var startedAt: UInt64 = 0
        var restartAt: UInt64?
        var policy = RestartPolicy()
        var liveness: Liveness?
        init(role: Role) { self.role = role }
        var running: Bool { pid > 0 }
    }

    struct Resources {
        var tun: Descriptor
        /// The offloads the TUN device has on (empty: a plain device).
        var tunOffloads: [String]
        var rawESP: Descriptor
        var rawAH: Descriptor
        var udpIKE: Descriptor
        var udpNATT: Descriptor
        var control: Descriptor
        /// ICMP "destination unreachable" for the datapath's path MTU discovery (nil: could not open).
        var icmp: Descriptor?
    }

    public let settings: SupervisorSettings
    public let audit: AuditLog
    private var resources: Resources?
    private var children: [Role: Child] = [:]
    private var signals: SignalQueue?
    /// keywayd's own audit events, drained by its loop into the same path as the children's.
    private let ownEvents = CollectingAuditOutput()
    /// Every process's events: attributed, rate-limited, kept for a new monitor's /log.
    private var relay = AuditRelay()
    private let syslog: SyslogSink
    /// Records the monitor has not taken yet (its link was full, or it is starting).
    private var forMonitor: [AuditRecord] = []
    /// The operator groups' ids as last sent to the monitor (re-read every few seconds).
    private var lastAccess: AccessPolicy?
    private var lastGroupCheck: UInt64 = 0
    private var wire = WireCounters()
    private let startedAt = MonotonicClock.now()
    private var stopping = false
    private var exitStatus: Int32 = 0
    /// Whether any keyway-monitor has said hello since keywayd started (see storeRefusedStatus).
    private var monitorEverStarted = false

    /// keyway-monitor's exit status when its configuration store is unusable (EX_CONFIG). Before
    /// any monitor said hello it means the appliance must not run: keywayd stops everything.
    public static let storeRefusedStatus: Int32 = 78
    /// Counts spawns: each child instance pings with nonces of its own.
    private var spawns: UInt64 = 0
    private let network: HostNetwork
    /// Routes and incoming-check rules, derived from the monitor's configuration alone.
    private var plan = HostPlan()
    /// Requests (and malformed or unexpected messages) refused, by the child that sent them.
    private var refusals: [Role: UInt64] = [:]
    private var lastAddressCheck: UInt64 = 0
    /// The MTU toward each peer, the TUN MTU that follows, what the datapath was told.
    private let outerPaths: OuterPathWatch

    /// `hostKernel` changes routes and firewall (keywayd passes KeywayHostNet's `KernelHost`).
    public init(settings: SupervisorSettings, hostKernel: HostKernel) {
        self.settings = settings
        self.audit = AuditLog(appName: "keywayd", output: ownEvents)
        self.syslog = SyslogSink(path: settings.syslogPath, format: settings.syslogFormat)
        self.network = HostNetwork(settings: settings, audit: audit, kernel: hostKernel)
        self.outerPaths = OuterPathWatch(kernel: hostKernel, audit: audit, mark: settings.bypassMark,
                                         initialTunMTU: Int(settings.fixedTunMTU ?? settings.tunMTU),
                                         fixedTunMTU: settings.fixedTunMTU.map(Int.init))
        for role in Role.children { children[role] = Child(role: role) }
    }

    /// Opens everything privileged. Fails (with a message naming the step) before any child runs.
    public func prepare() throws(SupervisorError) {
        do {
            signals = try SignalQueue()
        } catch { throw SupervisorError("signal handling", error) }
        // Before anything changes and any child runs: each binary and every directory above it
        // must be root's alone.
        for role in Role.children {
            let path = executablePath(role)
            do { try ExecutableTrust.verify(path) } catch { throw SupervisorError(error) }
            guard Files.isExecutable(path) else {
                throw SupervisorError("finding \(role)", SystemError(path, errno: .permissionDenied))
            }
        }
        let s = settings
        do {
            try Files.ensureDirectory(s.runDirectory, mode: 0o755)
            try Files.ensureDirectory(s.emptyRoot, mode: 0o555)
            // The configuration store is the monitor's alone.
            try Files.ensureDirectory(s.stateDirectory, mode: 0o700, uid: s.users.monitor.uid, gid: s.users.monitor.gid)
        } catch { throw SupervisorError("preparing directories", error) }
        var tunName = ""
        do {
            var (tun, name, offloads): (Descriptor, String, [String])
            if s.tunOffloads {
                (tun, name, offloads) = try Tun.openWithOffloads(name: s.tunName)
            } else {
                (tun, name) = try Tun.open(name: s.tunName)
                offloads = []
            }
            // Router solicitations and link-local chatter would only be dropped by the datapath.
            try? Files.writeSmall("/proc/sys/net/ipv6/conf/\(name)/disable_ipv6", "1\n")
            try Tun.setUp(name: name, mtu: s.fixedTunMTU ?? s.tunMTU)
            tunName = name
            let control = try Sockets.unixListener(path: s.controlSocketPath, mode: 0o666, group: nil)
            try control.setNonBlocking()
            let udpNATT = try Sockets.udpBound(port: s.natTraversalPort, mark: s.bypassMark)
            // ESP in UDP arrives here in a TCP window's bursts, as on the raw sockets.
            try Sockets.setBufferSizes(udpNATT, bytes: 8 << 20)
            // With offloads on, ESP in UDP from one peer arrives joined (UDP GRO); keyway-datapath splits it.
            if !offloads.isEmpty && !Sockets.enableReceiveCoalescing(udpNATT) {
                StandardStreams.error("keywayd: the kernel refused UDP GRO on port \(s.natTraversalPort); "
                                      + "ESP in UDP is read one datagram at a time")
            }
            resources = Resources(
                tun: tun, tunOffloads: offloads,
                rawESP: try Sockets.raw(protocol: 50, mark: s.bypassMark),
                rawAH: try Sockets.raw(protocol: 51, mark: s.bypassMark),
                udpIKE: try Sockets.udpBound(port: s.ikePort, mark: s.bypassMark),
                udpNATT: udpNATT,
                control: control, icmp: try? Sockets.rawICMPErrors())
            if resources?.icmp == nil {
                audit.event(.warning, msgID: "path-mtu", "no raw ICMP socket: paths shrink only to the interfaces' MTU")
            }
        } catch { throw SupervisorError("opening privileged resources", error) }
        try network.setUp(tunName: tunName)
        // Everything privileged is open: keep only what spawning sandboxed children (entering the
        // monitor's 0700 state directory, chroot, setuid/setgid, dropping their bounding set),
        // signalling them and routing (netlink, nftables) need.
        do { try Privileges.limitCapabilities(to: Self.keptCapabilities) } catch {
            throw SupervisorError("dropping keywayd's capabilities", error)
        }
    }

    public static let keptCapabilities: [Privileges.Capability] = [.dacReadSearch, .kill, .setgid, .setuid, .setpcap,
                                                                   .netAdmin, .sysChroot]

    func executablePath(_ role: Role) -> String { settings.executableDirectory + "/" + role.description }

    /// Starts the children and supervises them until SIGTERM or SIGINT. Returns the exit status.
    public func run() -> Int32 {
        audit.event(.notice, msgID: "start", "keywayd starting",
                    [("tun", settings.tunName), ("users", settings.users.all.map(\.name).joined(separator: " "))])
        for role in Role.children { spawn(role) }
        pumpAudit()
        guard let signals else { return 1 }
        while !stopping {
            let active = Role.children.compactMap { children[$0]?.link }
            let interests = [(fd: signals.descriptor.raw, events: PollEvents.readable)]
                + active.map { (fd: $0.socket.raw, events: $0.hasPending ? [.readable, .writable] : .readable) }
            let ready: [PollEvents]
            do { ready = try Poll.wait(interests, timeoutMilliseconds: millisecondsToNextRestart()) } catch {
                audit.event(.critical, msgID: "fatal", "poll failed: \(error)")
                break
            }
            if !ready[0].isEmpty { handleSignals(signals.drain()) }
            let busyFrom = MonotonicClock.now()
            for (i, link) in active.enumerated() where !ready[i + 1].isEmpty {
                if link.hasPending, !ready[i + 1].intersection([.writable, .error, .hangup]).isEmpty {
                    try? link.flush()
                }
                serve(link)
            }
            excuseOwnBusyTime(since: busyFrom)
            checkLiveness()
            restartDueChildren()
            watchHostAddresses()
            watchGroups()
            pumpAudit()
        }
        shutdown()
        pumpAudit()
        syslog.drain(until: MonotonicClock.now() + Self.syslogDrainTime)
        return exitStatus
    }

    /// How long an exiting keywayd keeps writing audit lines a full syslog socket would not take.
    static let syslogDrainTime: UInt64 = 2_000_000_000

    private func millisecondsToNextRestart() -> Int {
        let now = MonotonicClock.now()
        let due = children.values.compactMap(\.restartAt).min()
        guard let due else { return 1000 }
        return due <= now ? 0 : Int(min(1000, (due - now) / 1_000_000 + 1))
    }

    private func handleSignals(_ list: [Int32]) {
        for sig in list {
            switch sig {
            case SIGCHLD: reapChildren()
            case SIGTERM, SIGINT:
                audit.event(.notice, msgID: "stop", "keywayd stopping on signal \(sig)")
                stopping = true
            case SIGHUP:
                audit.event(.notice, msgID: "reload", "SIGHUP: asking keyway-monitor to reload the configuration")
                sendAccessPolicy()
                try? children[.monitor]?.link?.send(.reloadConfig(ReloadConfig()))
            default: break
            }
        }
    }

    private func reapChildren() {
        for (pid, status) in Processes.reap() {
            guard let child = children.values.first(where: { $0.pid == pid }) else { continue }
            let now = MonotonicClock.now()
            child.pid = 0
            child.link = nil
            child.liveness = nil
            if stopping { continue }
            if child.role == .monitor, status == .exited(Self.storeRefusedStatus), !monitorEverStarted {
                refuseToRun()
                continue
            }
            let at = child.policy.restartTime(startedAt: child.startedAt, now: now)
            child.restartAt = at
            audit.event(.error, msgID: "child-exit",
                        "\(child.role) (pid \(pid)) \(status); restarting in \((at - now) / 1_000_000) ms",
                        [("role", child.role.description), ("pid", String(pid)), ("status", status.description)])
        }
    }

    /// The monitor found its store unusable before it ever started: running anyway would run
    /// something the operator did not configure.
    private func refuseToRun() {
        let store = settings.stateDirectory + "/config.rsc"
        audit.event(.critical, msgID: "stop",
                    "keyway-monitor refused to start: the configuration store \(store) cannot be used")
        StandardStreams.error("""
        keywayd: the configuration store \(store) cannot be read or parsed
        (keyway-monitor's reason is above and in the audit log). Nothing is running.
        Repair or remove that file (without it the --config script seeds a new store), or start keywayd with
            --on-bad-store=last-good   to run config.last-good.rsc from the same directory, or
            --on-bad-store=empty       to run with no configuration at all.
        Either option keeps the unusable file as config.unusable.rsc.
        """)
        exitStatus = 1
        stopping = true
    }

    private func restartDueChildren() {
        let now = MonotonicClock.now()
        for role in Role.children {
            guard let child = children[role], let at = child.restartAt, at <= now, !stopping else { continue }
            spawn(role)
        }
    }

    /// What a child sent. `stopping`: it is being shut down, so only its audit events (what it
    /// says as it goes) are relayed and nothing else it sends is acted on.
    private func serve(_ link: Link, stopping: Bool = false) {
        for _ in 0..<(stopping ? 256 : 64) {
            switch link.receive(as: .parent) {
            // A closed link is reaped through SIGCHLD.
            case .idle, .closed: return
            case .partial: continue
            case .rejected(let error): reject(error, from: link.peer)
            case .message(let envelope, _):
                wire.accepted()
                if stopping {
                    if case .auditEvent(let event) = envelope.message {
                        relayEvent(event, from: link.peer, pid: link.processID)
                    }
                    continue
                }
                children[link.peer]?.liveness?.heard(now: MonotonicClock.now())
                switch envelope.message {
                case .hello(let h):
                    link.hello = h
                    if link.peer == .monitor {
                        monitorEverStarted = true
                        // A new monitor's /log starts with what happened before it.
                        forMonitor = relay.recent
                    }
                case .auditEvent(let event):
                    // A child's last words may be read after it was reaped: the link remembers its pid.
                    relayEvent(event, from: link.peer, pid: link.processID)
                case .pong(let pong):
                    children[link.peer]?.liveness?.answered(nonce: pong.nonce, now: MonotonicClock.now())
                case .policyAuthority(let authority) where link.peer == .monitor: authorize(authority)
                case .generatedPolicySet(let set) where link.peer == .datapath: offer(set)
                default: break
                }
            }
        }
    }

    /// One event, attributed by the link it came on (role, the pid keywayd spawned), never by a
    /// field the sender wrote; then to syslog and to the monitor's /log.
    private func relayEvent(_ event: AuditEvent, from role: Role, pid: UInt32) {
        let records = relay.accept(event, from: role, pid: pid, parentPID: UInt32(getpid()),
                                   epochMicroseconds: UInt64(clamping: WallClock.nowMicroseconds()),
                                   monotonicNanoseconds: MonotonicClock.now())
        for record in records {
            syslog.submit(record)
            if children[.monitor]?.link?.hello != nil {
                forMonitor.append(record)
                if forMonitor.count > AuditRelay.recentCapacity { forMonitor.removeFirst() }
            }
        }
    }

    /// keywayd's own events join the others'; syslog gets what waits (reconnecting after a
    /// restart of the daemon); the monitor gets what it has not.
    private func pumpAudit() {
        let me = UInt32(getpid())
        for event in ownEvents.drain() { relayEvent(event, from: .parent, pid: me) }
        audit.flush()
        if let lost = syslog.pump(now: MonotonicClock.now()), lost > 0 {
            audit.event(.warning, msgID: "audit-lost",
                        "\(lost) audit lines were lost while syslog at \(settings.syslogPath) was unreachable "
                            + "(at most \(syslog.capacity) wait)", [("lost", String(lost))])
            for event in ownEvents.drain() { relayEvent(event, from: .parent, pid: me) }
            syslog.pump(now: MonotonicClock.now())
        }
        guard let link = children[.monitor]?.link, link.hello != nil else { return }
        while !forMonitor.isEmpty {
            let batch = Array(forMonitor.prefix(AuditRecords.maximumRecords))
            // A full link: the rest waits for the next wake-up.
            guard (try? link.send(.auditRecords(AuditRecords(records: batch)))) != nil else { return }
            forMonitor.removeFirst(batch.count)
        }
    }

    /// Time keywayd spent on what the children sent (routes and nftables sets for 100,000
    /// policies take seconds) is not counted against them: their answers waited unread.
    private func excuseOwnBusyTime(since start: UInt64) {
        let now = MonotonicClock.now()
        guard now > start, now - start >= 500_000_000 else { return }
        for role in Role.children { children[role]?.liveness?.excuse(now - start, now: now) }
    }

    /// Pings each running child once an interval; one that has stopped answering (stopped,
    /// hung, spinning) is killed and so goes the normal restart path, with back-off.
    private func checkLiveness() {
        guard !stopping else { return }
        let now = MonotonicClock.now()
        for role in Role.children {
            guard let child = children[role], child.running, var liveness = child.liveness else { continue }
            let action = liveness.tick(now: now)
            child.liveness = liveness
            switch action {
            case .wait: break
            case .ping(let nonce):
                // A full link is the child's problem too: its silence decides.
                try? child.link?.send(.ping(Ping(nonce: nonce)))
            case .unresponsive(let silent):
                audit.event(.error, msgID: "child-unresponsive",
                            "\(role) (pid \(child.pid)) stopped answering: no reply to pings for "
                                + "\(silent / 1_000_000) ms; killing it",
                            [("role", role.description), ("pid", String(child.pid))])
                Processes.signal(child.pid, SIGKILL)
            }
        }
    }


    private func reject(_ error: WireError, from peer: Role) {
        wire.reject(error, from: peer, audit: audit)
        count(refusalFrom: peer)
    }

    /// The monitor said what may exist: routes and the incoming check follow from it alone.
    private func authorize(_ authority: PolicyAuthority) {
        plan.authorize(authority.bounds)
        applyPlan()
    }

    /// The datapath named its generated policies: each must be one the configuration allows.
    private func offer(_ set: GeneratedPolicySet) {
        do {
            try plan.offer(set)
            applyPlan()
        } catch {
            audit.rateLimitedEvent(key: "refused-datapath", .warning, msgID: "refused",
                                   "generated policies from keyway-datapath refused: \(error)",
                                   [("from", Role.datapath.description), ("reason", error.reason)])
            count(refusalFrom: .datapath)
        }
    }

    private func applyPlan() {
        network.applyRoutes(plan.routes)
        if let rules = plan.incomingRules { network.applyIncomingCheck(rules) }
        refreshOuterPaths()
    }

    /// The interfaces toward the peers, the TUN MTU: the datapath hears of any change.
    private func refreshOuterPaths() {
        guard let bounds = plan.bounds,
              let message = outerPaths.refresh(bounds: bounds, generated: plan.generated,
                                               tunIndex: network.tunIndex) else { return }
        try? children[.datapath]?.link?.send(.outerPaths(message))
    }

    private func count(refusalFrom role: Role) {
        refusals[role, default: 0] += 1
        try? children[.monitor]?.link?.send(.refusalReport(RefusalReport(refused: refusals)))
    }

    private func hostAddresses() -> HostAddresses {
        HostAddresses(addresses: Interfaces.ipv4Addresses().map { .v4(IPv4Address($0)) })
    }

    /// Every few seconds: the appliance's own addresses, which no generated policy may cover.
    private func watchHostAddresses() {
        let now = MonotonicClock.now()
        guard now >= lastAddressCheck + 5_000_000_000 else { return }
        lastAddressCheck = now
        // An interface's MTU may have changed too.
        refreshOuterPaths()
        let current = hostAddresses()
        let addresses = current.ipv4
        guard addresses != plan.ownAddresses else { return }
        plan.ownAddresses = addresses
        if let bounds = plan.bounds { plan.authorize(bounds); applyPlan() }
        for role in [Role.ike, .datapath] { try? children[role]?.link?.send(.hostAddresses(current)) }
    }

    /// Spawns one child and hands it its descriptors, its links to running peers, and the sandbox order.
    private func spawn(_ role: Role) {
        guard let child = children[role], let resources, let user = settings.users[role] else { return }
        child.restartAt = nil
        do {
            // Checked again before every start: the binary may have changed since the last one.
            try ExecutableTrust.verify(executablePath(role))
            let (mine, theirs) = try SeqPacket.pair()
            let arguments = role == .monitor ? settings.monitorArguments : []
            let pid = try Processes.spawn(path: executablePath(role), arguments: arguments,
                                          environment: ["SWIFT_BACKTRACE=enable=no",
                                                        "PATH=/usr/sbin:/usr/bin:/sbin:/bin"], fd3: theirs)
            theirs.close()
            try mine.setNonBlocking()
            let link = Link(peer: role, socket: mine)
            link.processID = UInt32(clamping: pid)
            child.pid = pid
            child.link = link
            child.startedAt = MonotonicClock.now()
            spawns += 1
            child.liveness = Liveness(startedAt: child.startedAt, interval: settings.pingInterval,
                                      unansweredIntervals: settings.unansweredPings, firstNonce: spawns << 32)
            try link.send(.hello(Hello(role: .parent, pid: UInt32(getpid()), startedAt: startedAt, sandboxed: false)))
            for (kind, fd) in roleDescriptors(role, resources) {
                try link.send(.fdGrant(FdGrant(kind: kind)), descriptors: [fd.raw])
            }
            if role == .monitor {
                // A semantic hand-over: the monitor gets the open script, never a path to open.
                if let path = settings.configPath, Files.exists(path), let script = try? Files.openReadOnly(path) {
                    try link.send(.fdGrant(FdGrant(kind: .configScript)), descriptors: [script.raw])
                }
                let access = accessPolicy()
                lastAccess = access
                try link.send(.accessPolicy(access))
            }
            for peerRole in role.peers {
                guard let peer = children[peerRole], let peerLink = peer.link,
                      let toPeer = DescriptorKind.link(to: peerRole),
                      let toNew = DescriptorKind.link(to: role) else { continue }
                let (a, b) = try SeqPacket.pair()
                // A peer that is dying right now is not this child's failure: SIGCHLD restarts it,
                // and its new instance gets a fresh link to this one.
                do {
                    try peerLink.send(.fdGrant(FdGrant(kind: toNew)), descriptors: [b.raw])
                    if child.policy.restarts > 0 {
                        try peerLink.send(.peerRestarted(PeerRestarted(role: role, pid: UInt32(pid),
                                                                       restarts: child.policy.restarts)))
                    }
                } catch { continue }
                try link.send(.fdGrant(FdGrant(kind: toPeer)), descriptors: [a.raw])
            }
            // The parent is the one that counts restarts: tell the new child the whole table.
            for other in Role.children {
                guard let c = children[other], c.running, c.policy.restarts > 0 else { continue }
                try link.send(.peerRestarted(PeerRestarted(role: other, pid: UInt32(c.pid),
                                                           restarts: c.policy.restarts)))
            }
            let root = role == .monitor ? settings.stateDirectory : settings.emptyRoot
            try link.send(.enterSandbox(EnterSandbox(uid: user.uid, gid: user.gid, root: root)))
            // Handed over once the child runs: what it checks generated policies against, and (to
            // a new monitor) what keywayd has refused so far.
            if role == .ike || role == .datapath { try link.send(.hostAddresses(hostAddresses())) }
            if role == .datapath, let paths = outerPaths.lastMessage { try link.send(.outerPaths(paths)) }
            if role == .monitor, !refusals.isEmpty { try link.send(.refusalReport(RefusalReport(refused: refusals))) }
            audit.event(.informational, msgID: "child-start", "started \(role)",
                        [("role", role.description), ("pid", String(pid))])
        } catch {
            let now = MonotonicClock.now()
            let at = child.policy.restartTime(startedAt: now, now: now)
            child.restartAt = at
            audit.event(.error, msgID: "child-start",
                        "could not start \(role): \(error); trying again in \((at - now) / 1_000_000) ms",
                        [("role", role.description)])
        }
    }

    /// The operator groups' ids, resolved here, where /etc/group is readable. Membership is the
    /// monitor's to read from each connection (SO_PEERGROUPS), so it never goes stale.
    func accessPolicy() -> AccessPolicy {
        AccessPolicy(adminGIDs: Users.groupID(settings.adminGroup).map { [UInt32($0)] } ?? [],
                     readGIDs: Users.groupID(settings.readOnlyGroup).map { [UInt32($0)] } ?? [])
    }

    private func sendAccessPolicy() {
        let access = accessPolicy()
        if (try? children[.monitor]?.link?.send(.accessPolicy(access))) != nil { lastAccess = access }
    }

    /// Every few seconds: a group created (or re-created) since start reaches the monitor without a signal.
    private func watchGroups() {
        let now = MonotonicClock.now()
        guard now >= lastGroupCheck + 5_000_000_000 else { return }
        lastGroupCheck = now
        if accessPolicy() != lastAccess { sendAccessPolicy() }
    }

    /// Each role gets only what it needs (SECURITY.md's table).
    private func roleDescriptors(_ role: Role, _ r: Resources) -> [(DescriptorKind, Descriptor)] {
        switch role {
        case .monitor: return [(.control, r.control)]
        // keyway-ike only sends on 4500; the datapath reads it and hands IKE its share.
        case .ike: return [(.udp500, r.udpIKE), (.udp4500, r.udpNATT)]
        case .datapath:
            return [(r.tunOffloads.isEmpty ? .tun : .tunWithOffloads, r.tun), (.rawESP, r.rawESP), (.rawAH, r.rawAH),
                    (.udp4500, r.udpNATT)]
                + (r.icmp.map { [(.rawICMP, $0)] } ?? [])
        case .parent, .client: return []
        }
    }

    /// What each child says as it goes: read while they stop and once more after.
    private func hearLastWords() {
        for role in Role.children {
            if let link = children[role]?.link { serve(link, stopping: true) }
        }
    }

    private func shutdown() {
        for child in children.values where child.running {
            try? child.link?.send(.shutdown(Shutdown()))
        }
        let deadline = MonotonicClock.now() + 3_000_000_000
        while children.values.contains(where: \.running) && MonotonicClock.now() < deadline {
            hearLastWords()
            for (pid, _) in Processes.reap() {
                children.values.first(where: { $0.pid == pid })?.pid = 0
            }
            usleep(20_000)
        }
        hearLastWords()
        for child in children.values where child.running {
            audit.event(.warning, msgID: "stop", "\(child.role) did not stop in time; killing it")
            Processes.signal(child.pid, SIGKILL)
            _ = Processes.wait(pid: child.pid, timeoutMilliseconds: 1000)
            child.pid = 0
        }
        Files.remove(settings.controlSocketPath)
        network.tearDown()
        audit.event(.notice, msgID: "stop", "keywayd stopped")
    }
}
