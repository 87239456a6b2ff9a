import KeywayAudit
import KeywayConfig
import KeywayPrivsep
import KeywaySystem
import KeywayWire

/// The control socket: accepts `keyway` clients, identifies them by SO_PEERCRED, answers queries.
final class ControlServer {
    final class Client {
        let link: Link
        var socket: Descriptor { link.socket }
        let credentials: Sockets.PeerCredentials
        var session: Session
        /// Set for a caller with no access: its first request is answered with this, then it is closed.
        var refusal: String?
        init(socket: Descriptor, credentials: Sockets.PeerCredentials, session: Session, refusal: String? = nil) {
            self.link = Link(peer: .client, socket: socket)
            self.credentials = credentials
            self.session = session
            self.refusal = refusal
        }
    }

    /// Client counter requests waiting for the datapath's counters: request id -> client socket.
    var pendingCounters: [UInt32: (fd: Int32, clientRequest: UInt32)] = [:]
    private var nextForwardID: UInt32 = 1

    /// Until keywayd sends the group lists, only root is trusted.
    var access = AccessPolicy(adminGIDs: [], adminUIDs: [], readGIDs: [], readUIDs: [])
    var store: ConfigStore?

    /// Enough for every operator at once; beyond this a connection is closed at accept.
    static let maximumClients = 32

    let listener: Descriptor
    private(set) var clients: [Int32: Client] = [:]
    var refusedConnections: UInt64 = 0

    init(listener: Descriptor) { self.listener = listener }

    func pollInterests() -> [(fd: Int32, events: PollEvents)] {
        [(fd: listener.raw, events: .readable)] + clients.keys.sorted().map { (fd: $0, events: .readable) }
    }

    func handleReady(fd: Int32, runtime: ChildRuntime, status: () -> StatusReply) {
        if fd == listener.raw { acceptClients(runtime); return }
        guard let client = clients[fd] else { return }
        for _ in 0..<16 {
            let input = client.link.receive(as: .monitor)
            if case .idle = input { return }
            if case .closed = input { clients[fd] = nil; return }
            if let refusal = client.refusal {
                try? client.link.send(.errorReply(ErrorReply(reason: refusal)))
                clients[fd] = nil
                return
            }
            switch input {
            case .rejected(let error): runtime.reject(error, from: .client)
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
        case .consoleCommand(let c): reply = .consoleReply(console(c, client: client, runtime: runtime))
        default: reply = .errorReply(ErrorReply(reason: "\(envelope.message.type) is not a request"))
        }
        do { try SeqPacket.send(client.socket, Frame.encode(reply, requestID: envelope.requestID)) } catch {
            clients[client.socket.raw] = nil
        }
    }

    /// The datapath's counters arrived: answer the client that asked, with the monitor's own too.
    func datapathCounters(_ reply: CounterReply, requestID: UInt32, runtime: ChildRuntime) {
        guard let pending = pendingCounters.removeValue(forKey: requestID), let client = clients[pending.fd] else { return }
        let merged = runtime.allCounters() + reply.counters.map { Counter(name: "datapath." + $0.name, value: $0.value) }
        try? SeqPacket.send(client.socket, Frame.encode(.counterReply(CounterReply(role: .monitor, counters: merged)), requestID: pending.clientRequest))
    }

    /// One console exchange: run, audit each change (secrets masked), answer.
    private func console(_ command: ConsoleCommand, client: Client, runtime: ChildRuntime) -> ConsoleReply {
        guard let store else { return ConsoleReply(ok: false, output: "the configuration store is not ready", warnings: [], promptPath: "") }
        let uid = String(client.credentials.uid)
        switch store.run(command.text, session: &client.session) {
        case .success(let out):
            for change in out.changes {
                runtime.audit.event(.notice, msgID: "config-change", "configuration changed", [("uid", uid), ("command", change)])
            }
            // What the operator was warned about (weak choices, aggressive mode with a PSK) is on record too.
            for warning in out.warnings {
                runtime.audit.event(.warning, msgID: "config-warning", "configuration warning", [("uid", uid), ("warning", warning)])
            }
            let body = command.json ? out.json.joined(separator: "\n") + (out.json.isEmpty ? "" : "\n") : out.text
            return ConsoleReply(ok: true, output: body, warnings: out.warnings, promptPath: client.session.promptPath)
        case .failure(.command(let error)):
            if error.message.hasPrefix("permission denied") {
                runtime.audit.event(.warning, msgID: "config-denied", "console command refused", [("uid", uid), ("reason", error.message)])
            }
            return ConsoleReply(ok: false, output: error.description, warnings: [], promptPath: client.session.promptPath)
        case .failure(.notSaved(let reason)):
            return ConsoleReply(ok: false, output: reason, warnings: [], promptPath: client.session.promptPath)
        }
    }

    private func acceptClients(_ runtime: ChildRuntime) {
        for _ in 0..<16 {
            let accepted: Descriptor?
            do { accepted = try Sockets.accept(listener) } catch { return }
            guard let socket = accepted else { return }
            guard clients.count < Self.maximumClients, let cred = try? Sockets.peerCredentials(socket) else {
                refusedConnections += 1
                runtime.audit.rateLimitedEvent(key: "control-refused", .warning, msgID: "control", "control connection refused (too many clients)")
                continue
            }
            let level = access.level(uid: cred.uid, gid: cred.gid)
            guard level != .none else {
                refusedConnections += 1
                runtime.audit.rateLimitedEvent(key: "control-denied", .warning, msgID: "control-denied", "control connection refused: not root, keyway or keyway-read",
                                               [("uid", String(cred.uid)), ("pid", String(cred.pid))])
                // Closing now, with the caller's request unread, would reset the connection and
                // lose the reason; answer its first request instead.
                clients[socket.raw] = Client(socket: socket, credentials: cred, session: Session(canModify: false, mayShowSensitive: false),
                                             refusal: "permission denied: uid \(cred.uid) is not root and not in group keyway or keyway-read")
                continue
            }
            clients[socket.raw] = Client(socket: socket, credentials: cred,
                                         session: Session(canModify: level == .admin, mayShowSensitive: level == .admin))
            runtime.audit.event(.informational, msgID: "control", "control client connected",
                                [("uid", String(cred.uid)), ("pid", String(cred.pid))])
        }
    }
}
