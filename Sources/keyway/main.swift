import ArgumentParser
import Glibc
import KeywayConfig
import KeywayLineEditor
import KeywaySystem
import KeywayWire

struct KeywayClient: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyway",
        abstract: "Keyway's console: RouterOS /ip ipsec commands, run by keyway-monitor over the control socket.",
        usage: """
        keyway [--socket PATH] [--json] COMMAND...
        keyway [--socket PATH] [--json] 'COMMAND LINE'
        keyway [--socket PATH] [--json] -c 'COMMAND LINE'
        keyway [--socket PATH] [--json] -f SCRIPT
        keyway [--socket PATH]
        """,
        discussion: """
        keyway /ip ipsec policy print          one command, its words as arguments
        keyway '/ip ipsec policy print'        the same, as one argument (as it arrives over ssh)
        keyway -c '/ip ipsec policy print'     the same (keyway as an operator's login shell)
        keyway -f site.rsc                     a script, as one transaction (all or nothing)
        keyway < site.rsc                      the same, from standard input
        keyway                                 on a terminal: the interactive console (Tab, ?, history)
        keyway /log print follow               recent audit events, then new ones until Ctrl-C
        keyway status | ping | counters        the process tree, liveness, message counters
        See keyway(8).
        """)

    @Option(name: .long, help: "Control socket of keywayd.")
    var socket = "/run/keyway/control.sock"

    @Flag(name: .long, help: "Print JSON instead of the console layout.")
    var json = false

    @Option(name: .short, help: "Run a script file as one transaction.")
    var file: String?

    @Option(name: .long, help: "Seconds to wait for keywayd's answer (and for each further page of it).")
    var timeout = 60

    @Option(name: .customShort("c"), help: "Run one console line (as a login shell is asked to).")
    var line: String?

    @Argument(parsing: .captureForPassthrough, help: "A RouterOS command, e.g. /ip ipsec policy print")
    var command: [String] = []

    /// What the command line asks for, read by hand: RouterOS words pass through untouched, and
    /// options may follow the command (`keyway status --json`).
    struct Request: Equatable {
        var socket = "/run/keyway/control.sock"
        var json = false
        var file: String?
        /// A whole console line (-c, or a single argument holding one).
        var line: String?
        var words: [String] = []
        var help = false
        /// `--complete LINE`: bash completion asks the console's own completion.
        var complete: String?
        /// Seconds to wait for keywayd's answer, and for each further page or piece of it.
        var timeout = 60
    }

    static func parse(_ arguments: [String], socket: String, json: Bool, file: String?, line: String?,
                      timeout: Int = 60) throws -> Request {
        var r = Request(socket: socket, json: json, file: file, line: line, timeout: timeout)
        var words = arguments.makeIterator()
        while let w = words.next() {
            switch w {
            case "--socket":
                guard let v = words.next() else { throw ClientError("--socket needs a path") }; r.socket = v
            case "--json": r.json = true
            case "-f": guard let v = words.next() else { throw ClientError("-f needs a file") }; r.file = v
            case "-c": guard let v = words.next() else { throw ClientError("-c needs a command line") }; r.line = v
            case "-h", "--help": r.help = true
            case "--complete": r.complete = words.next() ?? ""
            case "--timeout":
                guard let v = words.next().flatMap({ Int($0) }), v > 0 else {
                    throw ClientError("--timeout needs seconds")
                }
                r.timeout = v
            default: r.words.append(w)
            }
        }
        // One argument holding a whole line (`ssh router '/ip ipsec policy print'`) is a console line.
        if r.line == nil, r.words.count == 1, let only = r.words.first,
           only.contains(where: { $0 == " " || $0 == "\t" }) {
            r.line = only
            r.words = []
        }
        if let text = r.line {
            // keyway's own words work there too: `keyway -c status`.
            let split = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if let first = split.first, ["status", "ping", "counters"].contains(first),
               split.dropFirst().allSatisfy({ $0 == "--json" }) {
                r.words = [first]
                if split.count > 1 { r.json = true }
                r.line = nil
            }
        }
        return r
    }

    func run() throws {
        let r = try Self.parse(command, socket: socket, json: json, file: file, line: line, timeout: timeout)
        if r.help {
            StandardStreams.output(Self.helpMessage())
            return
        }
        if let partial = r.complete {
            // Schema-driven: needs no keywayd.
            for c in Completion.candidates(for: partial, path: []) { StandardStreams.output(c) }
            return
        }
        let connection = try Connection(path: r.socket)
        connection.timeoutMilliseconds = r.timeout * 1000
        if let file = r.file {
            guard let text = try? Files.readAll(file, limit: ConsoleCommand.maximumText) else {
                throw ClientError("cannot read \(file) (at most \(ConsoleCommand.maximumText >> 20) MiB)")
            }
            try connection.runScript(String(decoding: text, as: UTF8.self), json: r.json)
        } else if let text = r.line, !text.trimmingCharacters(in: " \t").isEmpty {
            try connection.runScript(text, json: r.json)
        } else if r.words == ["status"] {
            try connection.status(json: r.json)
        } else if r.words == ["ping"] {
            try connection.ping()
        } else if r.words == ["counters"] {
            try connection.counters(json: r.json)
        } else if !r.words.isEmpty {
            try connection.runScript(r.words.map(Self.quoteForConsole).joined(separator: " "), json: r.json)
        } else if isatty(0) == 1 {
            // No command at all (or an empty -c, as ForceCommand gives an interactive login).
            try connection.interactive()
        } else {
            var text: [UInt8] = []
            while let line = readLine(strippingNewline: false) { text += Array(line.utf8) }
            try connection.runScript(String(decoding: text, as: UTF8.self), json: r.json)
        }
    }
    /// The shell removed the user's quotes: put RouterOS quotes back where a value needs them.
    /// A whole `[find ...]` word stays a substitution, as the user meant it.
    static func quoteForConsole(_ arg: String) -> String {
        if arg.hasPrefix("[find") && arg.hasSuffix("]") { return arg }
        let special: Set<Character> = [" ", "\t", ";", "#", "\"", "\\", "[", "]", "$", "?"]
        // `name=value`, and a condition's `name~text`: only the value is quoted.
        if let eq = arg.firstIndex(where: { $0 == "=" || $0 == "~" }), eq != arg.startIndex {
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

    /// How long to wait for the monitor's answer to begin, and for each further page of it.
    var timeoutMilliseconds = 60_000

    /// One request and its answer. A refused connection carries its reason and is already closed
    /// when the request goes out: what is waiting is read before a failure is reported. A long
    /// script goes out in pages, and a long answer comes back in pages (Paging.swift).
    func exchange(_ message: Message) throws -> Message {
        var sent = true
        following = false
        for frame in Paging.frames(message, requestID: 1, stream: 1) {
            do { try SeqPacket.send(fd, frame) } catch { sent = false; break }
        }
        // A long answer comes in pieces (ConsoleOutput), printed as they come, before its reply;
        // a long reply itself comes in pages.
        var assembler = PageAssembler()
        for _ in 0..<100_000 {
            guard let received = try next(timeoutMilliseconds: timeoutMilliseconds) else {
                throw ClientError("keywayd did not answer within \(timeoutMilliseconds / 1000) s")
            }
            guard case .datagram(let d) = received, !d.truncated else { throw Closed(requestSent: sent) }
            var envelope = try Frame.decode(d.bytes, from: .monitor, to: .client)
            if case .page(let page) = envelope.message {
                guard let whole = try assembler.accept(page, requestID: envelope.requestID) else { continue }
                envelope = whole
            }
            switch envelope.message {
            case .errorReply(let e): throw ClientError(e.reason)
            case .consoleOutput(let piece):
                following = following || piece.following
                if !piece.text.isEmpty { StandardStreams.write(piece.text) }
            default: return envelope.message
            }
        }
        throw ClientError("keywayd's answer did not end")
    }

    /// Set by the last exchange when its command follows (`/log print follow`).
    private(set) var following = false

    /// The next datagram within the timeout (nil: none came).
    private func next(timeoutMilliseconds: Int) throws -> ReceiveResult? {
        let ready = try Poll.wait([(fd: fd.raw, events: .readable)], timeoutMilliseconds: timeoutMilliseconds)
        guard let first = ready.first, !first.isEmpty else { return nil }
        var received = try? SeqPacket.receive(fd, dontWait: false)
        if case .datagram = received {} else {
            // Linux reports a reset (the monitor closed with our request unread) before the
            // datagrams still queued: the refusal's reason may be right behind it.
            received = try? SeqPacket.receive(fd, dontWait: true)
        }
        return received ?? .closed
    }

    /// `/log print follow`: new events as keyway-monitor sends them, until Ctrl-C (`interrupt`)
    /// or the connection ends. Returns true when Ctrl-C ended it.
    func follow(until interrupt: InterruptWatch?) throws -> Bool {
        while true {
            var interests = [(fd: fd.raw, events: PollEvents.readable)]
            if let interrupt { interests.append((fd: interrupt.raw, events: .readable)) }
            let ready = try Poll.wait(interests, timeoutMilliseconds: 60_000)
            if ready.count > 1, !ready[1].isEmpty { return true }
            guard let first = ready.first, !first.isEmpty else { continue }
            guard case .datagram(let d) = try? SeqPacket.receive(fd, dontWait: true), !d.truncated else {
                throw ClientError("keywayd closed the connection")
            }
            if case .consoleOutput(let piece) = try Frame.decode(d.bytes, from: .monitor, to: .client).message,
               !piece.text.isEmpty {
                StandardStreams.write(piece.text)
            }
        }
    }

    func runScript(_ text: String, json: Bool) throws {
        guard case .consoleReply(let reply) = try request(.consoleCommand(ConsoleCommand(text: text, json: json)))
        else {
            throw ClientError("unexpected reply")
        }
        for w in reply.warnings { StandardStreams.error("warning: \(w)") }
        if reply.ok {
            if !reply.output.isEmpty { StandardStreams.write(reply.output) }
        } else {
            StandardStreams.error("error: \(reply.output)")
            throw ExitCode(1)
        }
        // Ctrl-C ends the process, as it ends `/log print follow` on RouterOS.
        if following { _ = try follow(until: nil) }
    }

    func interactive() throws {
        var pathText = ""
        let user = getpwuid(getuid()).map { String(cString: $0.pointee.pw_name) } ?? "user"
        var pending = ""
        let path = { pathText.split(separator: " ").map(String.init) }
        let editor = LineEditor(program: "keyway", complete: { before in
            switch Completion.tab(before, path: path()) {
            case .nothing: return .nothing
            case .insert(let s): return .insert(s)
            case .show(let list): return .show(list.joined(separator: "  "))
            }
        }, help: { before in .show(Completion.help(for: before, path: path())) })
        while true {
            let prompt = pending.isEmpty ? "[\(user)@keyway] /\(pathText)> " : "\\... "
            let got: String?
            if let editor { got = editor.readLine(prompt: prompt) } else {
                StandardStreams.write(prompt)
                got = Swift.readLine()
            }
            guard let line = got else { StandardStreams.write("\n"); return }
            editor?.remember(line)
            if pending.isEmpty && (line == "quit" || line == "exit" || line == "/quit") { return }
            if line.hasSuffix("\\") { pending += line + "\n"; continue }
            let text = pending + line
            pending = ""
            if text.trimmingCharacters(in: " ").isEmpty { continue }
            let interrupt = try? InterruptWatch()
            guard case .consoleReply(let reply) = try consoleExchange(text, path: pathText) else { continue }
            for w in reply.warnings { StandardStreams.error("warning: \(w)") }
            if reply.ok { if !reply.output.isEmpty { StandardStreams.write(reply.output) } } else {
                StandardStreams.error("error: \(reply.output)")
            }
            pathText = reply.promptPath
            if following {
                // Ctrl-C ends the follow, not the console: a fresh connection leaves the monitor's
                // follow behind and restores the menu.
                if try follow(until: interrupt) {
                    StandardStreams.write("\n")
                    try reconnect()
                    if !pathText.isEmpty {
                        _ = try exchange(.consoleCommand(ConsoleCommand(text: "/" + pathText, json: false)))
                    }
                }
            }
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
        guard case .statusReply(let reply) = try request(.statusRequest(StatusRequest())) else {
            throw ClientError("unexpected reply")
        }
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
        lines.append("Offloads: " + (reply.offloads.isEmpty ? "none" : reply.offloads.joined(separator: " ")))
        StandardStreams.output(lines.joined(separator: "\n"))
    }

    func ping() throws {
        guard case .pong(let p) = try request(.ping(Ping(nonce: 0x6b6579776179))), p.nonce == 0x6b6579776179 else {
            throw ClientError("wrong answer to ping")
        }
        StandardStreams.output("keyway-monitor answers")
    }

    func counters(json: Bool) throws {
        guard case .counterReply(let reply) = try request(.counterRequest(CounterRequest())) else {
            throw ClientError("unexpected reply")
        }
        if json {
            StandardStreams.output("{"
                                   + reply.counters.map { "\(jsonString($0.name)):\($0.value)" }.joined(separator: ",")
                                   + "}")
        } else {
            StandardStreams.output(reply.counters.map { "\($0.name)=\($0.value)" }.joined(separator: "\n"))
        }
    }
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }

extension String {
    func trimmingCharacters(in set: String) -> String {
        String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}

KeywayClient.main()
