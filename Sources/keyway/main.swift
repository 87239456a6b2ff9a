import ArgumentParser
import Glibc
import KeywayConfig
import KeywaySystem
import KeywayWire

struct KeywayClient: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyway",
        abstract: "Keyway's console: RouterOS /ip ipsec commands, run by keyway-monitor over the control socket.",
        discussion: """
        keyway /ip ipsec policy print          one command
        keyway -f site.rsc                     a script, as one transaction (all or nothing)
        keyway < site.rsc                      the same, from standard input
        keyway                                 on a terminal: the interactive console
        keyway status | ping | counters        the process tree, liveness, message counters
        """)

    @Option(name: .long, help: "Control socket of keywayd.")
    var socket = "/run/keyway/control.sock"

    @Flag(name: .long, help: "Print JSON instead of the console layout.")
    var json = false

    @Option(name: .short, help: "Run a script file as one transaction.")
    var file: String?

    @Argument(parsing: .captureForPassthrough, help: "A RouterOS command, e.g. /ip ipsec policy print")
    var command: [String] = []

    func run() throws {
        // Options may also follow the command (`keyway status --json`): RouterOS words never start with "--".
        var socket = self.socket, json = self.json, file = self.file
        var command: [String] = []
        var words = self.command.makeIterator()
        while let w = words.next() {
            switch w {
            case "--socket": guard let v = words.next() else { throw ClientError("--socket needs a path") }; socket = v
            case "--json": json = true
            case "-f": guard let v = words.next() else { throw ClientError("-f needs a file") }; file = v
            default: command.append(w)
            }
        }
        let connection = try Connection(path: socket)
        if let file {
            guard let text = try? Files.readAll(file) else { throw ClientError("cannot read \(file)") }
            try connection.runScript(String(decoding: text, as: UTF8.self), json: json)
        } else if command == ["status"] {
            try connection.status(json: json)
        } else if command == ["ping"] {
            try connection.ping()
        } else if command == ["counters"] {
            try connection.counters(json: json)
        } else if !command.isEmpty {
            try connection.runScript(command.map(Self.quoteForConsole).joined(separator: " "), json: json)
        } else if isatty(0) == 1 {
            try connection.interactive()
        } else {
            var text: [UInt8] = []
            while let line = readLine(strippingNewline: false) { text += Array(line.utf8) }
            try connection.runScript(String(decoding: text, as: UTF8.self), json: json)
        }
    }

    /// The shell removed the user's quotes: put RouterOS quotes back where a value needs them.
    /// A whole `[find ...]` word stays a substitution, as the user meant it.
    static func quoteForConsole(_ arg: String) -> String {
        if arg.hasPrefix("[find") && arg.hasSuffix("]") { return arg }
        let special: Set<Character> = [" ", "\t", ";", "#", "\"", "\\", "[", "]", "$", "?"]
        if let eq = arg.firstIndex(of: "="), eq != arg.startIndex {
            let value = String(arg[arg.index(after: eq)...])
            guard value.isEmpty || value.contains(where: { special.contains($0) }) else { return arg }
            return String(arg[...eq]) + Schema.quote(value)
        }
        return arg.contains(where: { special.contains($0) }) ? Schema.quote(arg) : arg
    }
}

/// A failure to report as `error: ...` with exit status 1 (ValidationError would print usage, exit 64).
struct ClientError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// The console's connection to keyway-monitor.
final class Connection {
    private(set) var fd: Descriptor
    let path: String

    /// The connection was found closed: before the request left (it never ran), or after it
    /// left but before an answer came (it may have run).
    struct Closed: Error {
        let requestSent: Bool
    }

    init(path: String) throws {
        self.path = path
        fd = try Self.connect(path)
    }

    private static func connect(_ path: String) throws -> Descriptor {
        do { return try Sockets.unixConnect(path: path) } catch {
            throw ClientError("cannot reach keywayd at \(path): \(error.errno)")
        }
    }

    /// A fresh connection in place of one the monitor closed.
    func reconnect() throws { fd = try Self.connect(path) }

    func request(_ message: Message) throws -> Message {
        do { return try exchange(message) } catch let closed as Closed {
            throw ClientError("keywayd closed the connection" + (closed.requestSent ? " before answering" : ""))
        }
    }

    /// One request and its answer. A refused connection carries its reason and is already closed
    /// when the request goes out: what is waiting is read before a failure is reported.
    func exchange(_ message: Message) throws -> Message {
        var sent = true
        do { try SeqPacket.send(fd, Frame.encode(message, requestID: 1)) } catch { sent = false }
        let ready = try Poll.wait([(fd: fd.raw, events: .readable)], timeoutMilliseconds: 15000)
        guard let first = ready.first, !first.isEmpty else { throw ClientError("keywayd did not answer within 15 s") }
        var received = try? SeqPacket.receive(fd, dontWait: false)
        if case .datagram = received {} else {
            // Linux reports a reset (the monitor closed with our request unread) before the
            // datagrams still queued: the refusal's reason may be right behind it.
            received = try? SeqPacket.receive(fd, dontWait: true)
        }
        guard case .datagram(let d) = received, !d.truncated else { throw Closed(requestSent: sent) }
        let envelope = try Frame.decode(d.bytes, from: .monitor, to: .client)
        if case .errorReply(let e) = envelope.message { throw ClientError(e.reason) }
        return envelope.message
    }

    func runScript(_ text: String, json: Bool) throws {
        guard case .consoleReply(let reply) = try request(.consoleCommand(ConsoleCommand(text: text, json: json))) else {
            throw ClientError("unexpected reply")
        }
        for w in reply.warnings { StandardStreams.error("warning: \(w)") }
        if reply.ok {
            if !reply.output.isEmpty { StandardStreams.output(reply.output.hasSuffix("\n") ? String(reply.output.dropLast()) : reply.output) }
        } else {
            StandardStreams.error("error: \(reply.output)")
            throw ExitCode(1)
        }
    }

    func interactive() throws {
        var editor = LineEditor()
        var pathText = ""
        let user = getpwuid(getuid()).map { String(cString: $0.pointee.pw_name) } ?? "user"
        var pending = ""
        while true {
            let prompt = pending.isEmpty ? "[\(user)@keyway] /\(pathText)> " : "\\... "
            guard let line = editor.readLine(prompt: prompt, path: pathText.split(separator: " ").map(String.init)) else { return }
            if pending.isEmpty && (line == "quit" || line == "exit" || line == "/quit") { return }
            if line.hasSuffix("\\") { pending += line + "\n"; continue }
            let text = pending + line
            pending = ""
            if text.trimmingCharacters(in: " ").isEmpty { continue }
            guard case .consoleReply(let reply) = try consoleExchange(text, path: pathText) else { continue }
            for w in reply.warnings { StandardStreams.error("warning: \(w)") }
            if reply.ok { if !reply.output.isEmpty { StandardStreams.output(String(reply.output.dropLast())) } } else {
                StandardStreams.error("error: \(reply.output)")
            }
            pathText = reply.promptPath
        }
    }

    /// The monitor closes connections idle for 15 minutes, and a restarted monitor has none: the
    /// console reconnects once, says so, restores its menu and sends again what never left.
    private func consoleExchange(_ text: String, path: String) throws -> Message {
        let message = Message.consoleCommand(ConsoleCommand(text: text, json: false))
        do { return try exchange(message) } catch let closed as Closed {
            try reconnect()
            if !path.isEmpty { _ = try exchange(.consoleCommand(ConsoleCommand(text: "/" + path, json: false))) }
            guard !closed.requestSent else {
                StandardStreams.error("keyway: keywayd closed the connection before answering; reconnected. "
                                      + "Check whether the command took effect.")
                return .consoleReply(ConsoleReply(ok: true, output: "", warnings: [], promptPath: path))
            }
            StandardStreams.error("keyway: the connection to keywayd had been closed (idle, or the monitor restarted); "
                                  + "reconnected")
            do { return try exchange(message) } catch is Closed {
                throw ClientError("keywayd closed the connection again")
            }
        }
    }

    func status(json: Bool) throws {
        guard case .statusReply(let reply) = try request(.statusRequest(StatusRequest())) else { throw ClientError("unexpected reply") }
        if json {
            let rows = reply.processes.map { p in
                "{\"process\":\(jsonString(p.role.description)),\"pid\":\(p.pid),"
                    + "\"uptime-ms\":\(p.uptimeMilliseconds),\"restarts\":\(p.restarts),"
                    + "\"sandboxed\":\(p.sandboxed),\"connected\":\(p.connected),\"refused\":\(p.refused)}"
            }
            StandardStreams.output("[" + rows.joined(separator: ",") + "]")
            return
        }
        var lines = ["Flags: S - sandboxed, D - disconnected",
                     " #     " + pad("PROCESS", 17) + pad("PID", 8) + pad("UPTIME", 12)
                         + pad("RESTARTS", 10) + "REFUSED"]
        for (i, p) in reply.processes.enumerated() {
            let flags = (p.sandboxed ? "S" : " ") + (p.connected ? " " : "D")
            let index = String(i)
            lines.append(String(repeating: " ", count: max(0, 2 - index.count)) + index + " " + flags + "  "
                         + pad(p.role.description, 17) + pad(p.pid == 0 ? "-" : String(p.pid), 8)
                         + pad(p.connected ? Duration.format(p.uptimeMilliseconds / 1000) : "-", 12)
                         + pad(String(p.restarts), 10) + String(p.refused))
        }
        lines.append("TUN offloads: " + (reply.offloads.isEmpty ? "none" : reply.offloads.joined(separator: " ")))
        StandardStreams.output(lines.joined(separator: "\n"))
    }

    func ping() throws {
        guard case .pong(let p) = try request(.ping(Ping(nonce: 0x6b6579776179))), p.nonce == 0x6b6579776179 else {
            throw ClientError("wrong answer to ping")
        }
        StandardStreams.output("keyway-monitor answers")
    }

    func counters(json: Bool) throws {
        guard case .counterReply(let reply) = try request(.counterRequest(CounterRequest())) else { throw ClientError("unexpected reply") }
        if json {
            StandardStreams.output("{" + reply.counters.map { "\(jsonString($0.name)):\($0.value)" }.joined(separator: ",") + "}")
        } else {
            StandardStreams.output(reply.counters.map { "\($0.name)=\($0.value)" }.joined(separator: "\n"))
        }
    }
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }

extension String {
    func trimmingCharacters(in set: String) -> String { String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed()) }
}

KeywayClient.main()
