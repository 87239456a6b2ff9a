import KeywayAudit
import KeywayConfig
import KeywayPrivsep
import KeywaySystem
import KeywayWire

/// The control socket: accepts `keyway` clients, identifies them by SO_PEERCRED, answers queries.
/// Who may hold a connection, and for how long, is ControlAdmission's (pure) decision.
final class ControlServer {
    final class Client {
        let link: Link
        var socket: Descriptor { link.socket }
        let credentials: Sockets.PeerCredentials
        var session: Session
        /// `/log print follow`: what this connection still wants to see, and how many events it
        /// missed because it read too slowly.
        var follow: LogFollow?
        var missed: UInt64 = 0
        init(socket: Descriptor, credentials: Sockets.PeerCredentials, session: Session) {
            self.link = Link(peer: .client, socket: socket)
            self.credentials = credentials
            self.session = session
            // Only administrators change things: a read-only operator's script has no need of 32 MiB.
            if !session.canModify { link.assembler.limits[.consoleCommand] = Self.readerScriptLimit }
        }
        static let readerScriptLimit = 1 << 20
    }

    /// Replies waiting for their clients to read them, in all and for read-only operators: a
    /// reply that would go beyond is refused with a reason (printouts of 100,000 policies run to
    /// tens of megabytes, and a client that does not read holds what it asked for).
    static let pendingReplyLimit = 256 << 20
    static let readerPendingReplyLimit = 96 << 20

    /// Client counter requests waiting for the datapath's counters: request id -> client socket.
    var pendingCounters: [UInt32: (fd: Int32, clientRequest: UInt32)] = [:]
    private var nextForwardID: UInt32 = 1

    /// Until keywayd sends the groups' ids, only root is trusted.
    var access = AccessPolicy(adminGIDs: [], readGIDs: [])
    var store: ConfigStore?

    private var admission = ControlAdmission()

    let listener: Descriptor
    private(set) var clients: [Int32: Client] = [:]
    var refusedConnections: UInt64 = 0
    var idleClosed: UInt64 = 0

    init(listener: Descriptor) { self.listener = listener }

    /// A client whose last reply still waits is not read from until the reply has gone: one
    /// answer at a time per connection, however fast it asks.
    func pollInterests() -> [(fd: Int32, events: PollEvents)] {
        [(fd: listener.raw, events: .readable)] + clients.keys.sorted().map { fd in
            (fd: fd, events: clients[fd]?.link.hasPending == true ? .writable : .readable)
        }
    }

    /// `now`: the loop's monotonic clock, in nanoseconds.
    func handleReady(fd: Int32, now: UInt64, runtime: ChildRuntime, status: () -> StatusReply) {
        if fd == listener.raw { acceptClients(runtime, now: now); return }
        guard let client = clients[fd] else { return }
        if client.link.hasPending {
            admission.activity(fd, now: now)
            do { try client.link.flush() } catch { drop(fd) }
            return
        }
        // Pages of a long script count one each; the answer comes when the script is whole.
        for _ in 0..<64 where clients[fd] === client && !client.link.hasPending {
            let input = client.link.receive(as: .monitor)
            if case .idle = input { return }
            if case .closed = input { drop(fd); return }
            admission.activity(fd, now: now)
            // Anything the client sends ends a /log follow.
            client.follow = nil
            switch input {
            case .rejected(let error):
                runtime.reject(error, from: .client)
                // A script over the caller's limit, or pages out of order: the rest of it would
                // be refused page by page. Say why once and close.
                switch error {
                case .overlongLength, .unexpectedPage:
                    try? SeqPacket.send(client.socket, Frame.encode(.errorReply(ErrorReply(
                        reason: "request refused: \(error)"
                            + (client.session.canModify ? "" : " (read-only operators send at most 1 MiB)"))),
                                                                    requestID: 1))
                    drop(fd)
                    return
                default: break
                }
            case .partial: continue
            case .message(let envelope, _):
                runtime.wire.accepted()
                answer(envelope, client: client, runtime: runtime, status: status)
            case .idle, .closed: return
            }
        }
    }

    private func answer(_ envelope: Envelope, client: Client, runtime: ChildRuntime, status: () -> StatusReply) {
        let reply: Message
        switch envelope.message {
        case .statusRequest: reply = .statusReply(status())
        case .counterRequest:
            // Ask the datapath too; the answer goes out when its counters arrive.
            if let link = runtime.links[.datapath] {
                let id = nextForwardID
                nextForwardID &+= 1
                if (try? link.send(.counterRequest(CounterRequest()), requestID: id)) != nil {
                    pendingCounters[id] = (client.socket.raw, envelope.requestID)
                    return
                }
            }
            reply = .counterReply(CounterReply(role: .monitor, counters: runtime.allCounters()))
        case .ping(let p): reply = .pong(Pong(nonce: p.nonce))
        case .consoleCommand(let c):
            var answer = console(c, client: client, runtime: runtime)
            // A long printout goes in pieces before the reply, which carries the last one.
            let pieces = ConsoleOutput.pieces(answer.output)
            for piece in pieces.dropLast() {
                guard send(.consoleOutput(ConsoleOutput(text: piece, following: client.follow != nil)),
                           to: client, requestID: envelope.requestID) else { return }
            }
            answer.output = pieces.last ?? ""
            if client.follow != nil && pieces.count == 1 {
                guard send(.consoleOutput(ConsoleOutput(text: "", following: true)), to: client,
                           requestID: envelope.requestID) else { return }
            }
            reply = .consoleReply(answer)
        default: reply = .errorReply(ErrorReply(reason: "\(envelope.message.type) is not a request"))
        }
        send(reply, requestID: envelope.requestID, to: client)
    }

    /// Replies go through the client's link (paged when large, queued while it reads); one that
    /// would hold more memory than the limits allow is refused with the reason instead.
    private func send(_ reply: Message, requestID: UInt32, to client: Client) {
        var message = reply
        let waiting = clients.values.reduce(0) { $0 + $1.link.pendingBytes }
        let readersWaiting = clients.values.filter { !$0.session.canModify }.reduce(0) { $0 + $1.link.pendingBytes }
        if waiting > Self.pendingReplyLimit
           || (!client.session.canModify && readersWaiting > Self.readerPendingReplyLimit) {
            message = .errorReply(ErrorReply(reason: "the monitor is busy sending \(waiting >> 20) MiB of replies "
                                              + "to other clients; try again shortly"))
        }
        do { try client.link.send(message, requestID: requestID) } catch { drop(client.socket.raw) }
    }

    /// A piece of a long answer: through the link too, so that it waits its turn when the client
    /// reads slower than the printout is made, and stays in order with the reply.
    private func send(_ message: Message, to client: Client, requestID: UInt32) -> Bool {
        do { try client.link.send(message, requestID: requestID) } catch {
            drop(client.socket.raw)
            return false
        }
        return true
    }

    /// New events: to every connection following /log whose condition they match. A reader too
    /// slow to take them misses them, and is told how many.
    func publish(_ entries: [LogEntry]) {
        guard !entries.isEmpty else { return }
        for client in clients.values {
            guard let follow = client.follow else { continue }
            let shown = entries.filter { $0.sequence > follow.after && LogView.matches($0, follow.condition) }
            guard let last = shown.last else { continue }
            var lines = shown.map { (follow.json ? LogView.json($0) : LogView.line($0)) + "\n" }
            if client.missed > 0 {
                lines.insert("(\(client.missed) events not shown: they came faster than this console read them)\n",
                             at: 0)
            }
            let text = AuditEvent.cut(lines.joined(), ConsoleOutput.maximumText)
            do {
                try SeqPacket.send(client.socket,
                                   Frame.encode(.consoleOutput(ConsoleOutput(text: text, following: true))))
                client.missed = 0
            } catch let error where error.errno == .resourceTemporarilyUnavailable {
                client.missed += UInt64(shown.count)
            } catch {
                drop(client.socket.raw)
                continue
            }
            client.follow?.after = last.sequence
        }
    }

    /// Closes connections that have been silent for the idle timeout.
    func closeIdle(now: UInt64, runtime: ChildRuntime) {
        // A connection following /log is waiting by design, not idle.
        for fd in admission.idle(now: now) where clients[fd]?.follow == nil {
            let uid = clients[fd].map { String($0.credentials.uid) } ?? "?"
            drop(fd)
            idleClosed += 1
            runtime.audit.event(.informational, msgID: "control", "closed an idle control connection", [("uid", uid)])
        }
    }

    /// Forgets a connection (closing its socket once nothing refers to it).
    private func drop(_ fd: Int32) {
        clients[fd] = nil
        admission.remove(fd)
        pendingCounters = pendingCounters.filter { $0.value.fd != fd }
    }

    /// The datapath's counters arrived: answer the client that asked, with the monitor's own too.
    func datapathCounters(_ reply: CounterReply, requestID: UInt32, runtime: ChildRuntime) {
        guard let pending = pendingCounters.removeValue(forKey: requestID), let client = clients[pending.fd] else {
            return
        }
        let merged = runtime.allCounters()
            + reply.counters.map { Counter(name: "datapath." + $0.name, value: $0.value) }
        send(.counterReply(CounterReply(role: .monitor, counters: merged)), requestID: pending.clientRequest,
             to: client)
    }

    /// One console exchange: run, audit each change (secrets masked), answer.
    private func console(_ command: ConsoleCommand, client: Client, runtime: ChildRuntime) -> ConsoleReply {
        guard let store else {
            return ConsoleReply(ok: false, output: "the configuration store is not ready", warnings: [], promptPath: "")
        }
        let uid = String(client.credentials.uid)
        switch store.run(command.text, session: &client.session) {
        case .success(let out):
            for (i, change) in out.changes.enumerated() {
                if i % 512 == 511 { runtime.keepAlive() }
                runtime.audit.event(.notice, msgID: "config-change", "configuration changed",
                                    [("uid", uid), ("command", change)])
            }
            // What the operator was warned about (weak choices, aggressive mode with a PSK) is on record too.
            for warning in out.warnings {
                runtime.audit.event(.warning, msgID: "config-warning", "configuration warning",
                                    [("uid", uid), ("warning", warning)])
            }
            let body = command.json ? out.json.joined(separator: "\n") + (out.json.isEmpty ? "" : "\n") : out.text
            if var follow = out.follow {
                follow.json = command.json
                client.follow = follow
            }
            return ConsoleReply(ok: true, output: body, warnings: out.warnings, promptPath: client.session.promptPath)
        case .failure(.command(let error)):
            if error.message.hasPrefix("permission denied") {
                runtime.audit.event(.warning, msgID: "config-denied", "console command refused",
                                    [("uid", uid), ("reason", error.message)])
            }
            return ConsoleReply(ok: false, output: error.description, warnings: [],
                                promptPath: client.session.promptPath)
        case .failure(.notSaved(let reason)):
            return ConsoleReply(ok: false, output: reason, warnings: [], promptPath: client.session.promptPath)
        }
    }

    /// Up to 16 connections per wake-up. A refused one gets its reason at once and is closed at
    /// once: it holds nothing and counts toward nothing.
    private func acceptClients(_ runtime: ChildRuntime, now: UInt64) {
        for _ in 0..<16 {
            let accepted: Descriptor?
            do { accepted = try Sockets.accept(listener) } catch { return }
            guard let socket = accepted else { return }
            guard let cred = try? Sockets.peerCredentials(socket) else {
                refusedConnections += 1
                continue
            }
            // The caller's groups as they are now (SO_PEERGROUPS), not as /etc/group was when
            // keywayd started: a member added or removed is judged so on their next connection.
            let groups = (try? Sockets.peerGroups(socket)) ?? []
            let access: ControlAdmission.Access
            switch self.access.level(uid: cred.uid, gids: [cred.gid] + groups) {
            case .admin: access = .administrator
            case .readOnly: access = .reader
            case .none: access = .noAccess
            }
            let fields = [("uid", String(cred.uid)), ("pid", String(cred.pid))]
            if case .refuse(let reason) = admission.admit(socket.raw, uid: cred.uid, access: access, now: now) {
                refusedConnections += 1
                if access == .noAccess {
                    runtime.audit.rateLimitedEvent(key: "control-denied", .warning, msgID: "control-denied",
                                                   "control connection refused: not root, keyway or keyway-read",
                                                   fields)
                } else {
                    runtime.audit.rateLimitedEvent(key: "control-limited", .warning, msgID: "control",
                                                   "control connection refused: \(reason)", fields)
                }
                // The caller reads this even if its own request already failed against the closed socket.
                try? SeqPacket.send(socket, Frame.encode(.errorReply(ErrorReply(reason: reason)), requestID: 0))
                socket.close()
                continue
            }
            let administrator = access == .administrator
            clients[socket.raw] = Client(socket: socket, credentials: cred,
                                         session: Session(canModify: administrator, mayShowSensitive: administrator))
            runtime.audit.event(.informational, msgID: "control", "control client connected", fields)
        }
    }
}
