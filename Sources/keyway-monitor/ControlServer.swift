import KeywayAudit
import KeywayPrivsep
import KeywaySystem
import KeywayWire

/// The control socket: accepts `keyway` clients, identifies them by SO_PEERCRED, answers queries.
final class ControlServer {
    final class Client {
        let socket: Descriptor
        let credentials: Sockets.PeerCredentials
        init(socket: Descriptor, credentials: Sockets.PeerCredentials) {
            self.socket = socket
            self.credentials = credentials
        }
    }

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
            let result: ReceiveResult
            do { result = try SeqPacket.receive(client.socket) } catch { clients[fd] = nil; return }
            switch result {
            case .wouldBlock: return
            case .closed: clients[fd] = nil; return
            case .datagram(let d):
                guard !d.truncated else { runtime.reject(.truncatedDatagram, from: .client); continue }
                let envelope: Envelope
                do { envelope = try Frame.decode(d.bytes, from: .client, to: .monitor) } catch {
                    runtime.reject(error, from: .client)
                    continue
                }
                runtime.wire.accepted()
                answer(envelope, client: client, runtime: runtime, status: status)
            }
        }
    }

    private func answer(_ envelope: Envelope, client: Client, runtime: ChildRuntime, status: () -> StatusReply) {
        let reply: Message
        switch envelope.message {
        case .statusRequest: reply = .statusReply(status())
        case .counterRequest: reply = .counterReply(CounterReply(role: .monitor, counters: runtime.allCounters()))
        case .ping(let p): reply = .pong(Pong(nonce: p.nonce))
        default: reply = .errorReply(ErrorReply(reason: "\(envelope.message.type) is not a request"))
        }
        do { try SeqPacket.send(client.socket, Frame.encode(reply, requestID: envelope.requestID)) } catch {
            clients[client.socket.raw] = nil
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
            clients[socket.raw] = Client(socket: socket, credentials: cred)
            runtime.audit.event(.informational, msgID: "control", "control client connected",
                                [("uid", String(cred.uid)), ("pid", String(cred.pid))])
        }
    }
}
