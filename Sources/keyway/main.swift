import ArgumentParser
import Glibc
import KeywaySystem
import KeywayWire

struct KeywayClient: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyway",
        abstract: "Keyway control client: talks to keyway-monitor over the control socket.",
        subcommands: [Status.self, PingCommand.self, Counters.self],
        defaultSubcommand: Status.self)
}

struct Connection: ParsableArguments {
    @Option(name: .long, help: "Control socket of keywayd.")
    var socket = "/run/keyway/control.sock"

    @Flag(name: .long, help: "Print JSON instead of the console layout.")
    var json = false

    func request(_ message: Message) throws -> Message {
        let fd: Descriptor
        do { fd = try Sockets.unixConnect(path: socket) } catch {
            throw ValidationError("cannot reach keywayd at \(socket): \(error.errno)")
        }
        try SeqPacket.send(fd, Frame.encode(message, requestID: 1))
        let ready = try Poll.wait([(fd: fd.raw, events: .readable)], timeoutMilliseconds: 5000)
        guard let first = ready.first, !first.isEmpty else { throw ValidationError("keywayd did not answer within 5 s") }
        guard case .datagram(let d) = try SeqPacket.receive(fd), !d.truncated else {
            throw ValidationError("keywayd closed the connection")
        }
        let envelope = try Frame.decode(d.bytes, from: .monitor, to: .client)
        if case .errorReply(let e) = envelope.message { throw ValidationError("keywayd: \(e.reason)") }
        return envelope.message
    }
}

func formatUptime(_ ms: UInt64) -> String {
    var s = ms / 1000
    let w = s / 604_800; s %= 604_800
    let d = s / 86400; s %= 86400
    let h = s / 3600; s %= 3600
    let m = s / 60; s %= 60
    var out = ""
    if w > 0 { out += "\(w)w" }
    if d > 0 { out += "\(d)d" }
    if h > 0 { out += "\(h)h" }
    if m > 0 { out += "\(m)m" }
    if s > 0 || out.isEmpty { out += "\(s)s" }
    return out
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }

func jsonString(_ s: String) -> String {
    var out = "\""
    for ch in s.unicodeScalars {
        switch ch {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        default:
            if ch.value < 0x20 { out += "\\u" + String(repeating: "0", count: 4 - String(ch.value, radix: 16).count) + String(ch.value, radix: 16) } else { out.unicodeScalars.append(ch) }
        }
    }
    return out + "\""
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the process tree: each process, its pid, uptime and sandbox.")
    @OptionGroup var connection: Connection

    func run() throws {
        guard case .statusReply(let reply) = try connection.request(.statusRequest(StatusRequest())) else {
            throw ValidationError("unexpected reply")
        }
        if connection.json {
            let rows = reply.processes.map { p in
                "{\"process\":\(jsonString(p.role.description)),\"pid\":\(p.pid),\"uptime-ms\":\(p.uptimeMilliseconds),\"restarts\":\(p.restarts),\"sandboxed\":\(p.sandboxed),\"connected\":\(p.connected)}"
            }
            print("[" + rows.joined(separator: ",") + "]")
            return
        }
        print("Flags: S - sandboxed, D - disconnected")
        print(" #     " + pad("PROCESS", 17) + pad("PID", 8) + pad("UPTIME", 12) + "RESTARTS")
        for (i, p) in reply.processes.enumerated() {
            let flags = (p.sandboxed ? "S" : " ") + (p.connected ? " " : "D")
            print(String(i).leftPadded(2) + " " + flags + "  " + pad(p.role.description, 17) + pad(p.pid == 0 ? "-" : String(p.pid), 8)
                  + pad(p.connected ? formatUptime(p.uptimeMilliseconds) : "-", 12) + String(p.restarts))
        }
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}

struct PingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ping", abstract: "Check that keyway-monitor answers.")
    @OptionGroup var connection: Connection

    func run() throws {
        guard case .pong(let p) = try connection.request(.ping(Ping(nonce: 0x6b6579776179))), p.nonce == 0x6b6579776179 else {
            throw ValidationError("wrong answer to ping")
        }
        print("keyway-monitor answers")
    }
}

struct Counters: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show keyway-monitor's counters (messages accepted and rejected).")
    @OptionGroup var connection: Connection

    func run() throws {
        guard case .counterReply(let reply) = try connection.request(.counterRequest(CounterRequest())) else {
            throw ValidationError("unexpected reply")
        }
        if connection.json {
            print("{" + reply.counters.map { "\(jsonString($0.name)):\($0.value)" }.joined(separator: ",") + "}")
        } else {
            for c in reply.counters { print("\(c.name)=\(c.value)") }
        }
    }
}

StandardStreams.lineBuffered()
KeywayClient.main()
