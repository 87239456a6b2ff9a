import KeywayVocabulary

/// One value type per message; `Message` is the closed set of them.
public protocol WireMessage: Sendable, Equatable {
    static var type: MessageType { get }
    func encode(to w: inout WireWriter)
    init(from r: inout WireReader) throws(WireError)
}

public enum MessageType: UInt16, Sendable, CaseIterable, CustomStringConvertible {
    case hello = 1
    case fdGrant = 2
    case enterSandbox = 3
    case peerRestarted = 4
    case shutdown = 5
    case reloadConfig = 6
    case ping = 7
    case pong = 8
    case statusRequest = 9
    case statusReply = 10
    case counterRequest = 11
    case counterReply = 12
    case errorReply = 13
    case consoleCommand = 14
    case consoleReply = 15
    case accessPolicy = 16
    case datapathConfig = 17
    case generatedPolicySet = 18
    case datapathState = 19
    case flushSAs = 20
    case policyAuthority = 21
    case ikeConfig = 22
    case saInstall = 23
    case saRemove = 24
    case acquire = 25
    case ikeDatagram = 26
    case ikeState = 27
    case signRequest = 28
    case signReply = 29
    case hostAddresses = 30
    case refusalReport = 31
    case signAnnounce = 32
    case auditEvent = 33
    case auditRecords = 34
    case consoleOutput = 35
    case ikev2SignRequest = 36
    case ikev2SignReply = 37
    case outerPaths = 38
    case page = 39

    public var description: String {
        switch self {
        case .hello: return "Hello"
        case .fdGrant: return "FdGrant"
        case .enterSandbox: return "EnterSandbox"
        case .peerRestarted: return "PeerRestarted"
        case .shutdown: return "Shutdown"
        case .reloadConfig: return "ReloadConfig"
        case .ping: return "Ping"
        case .pong: return "Pong"
        case .statusRequest: return "StatusRequest"
        case .statusReply: return "StatusReply"
        case .counterRequest: return "CounterRequest"
        case .counterReply: return "CounterReply"
        case .errorReply: return "ErrorReply"
        case .consoleCommand: return "ConsoleCommand"
        case .consoleReply: return "ConsoleReply"
        case .accessPolicy: return "AccessPolicy"
        case .datapathConfig: return "DatapathConfig"
        case .generatedPolicySet: return "GeneratedPolicySet"
        case .datapathState: return "DatapathState"
        case .flushSAs: return "FlushSAs"
        case .policyAuthority: return "PolicyAuthority"
        case .ikeConfig: return "IKEConfig"
        case .saInstall: return "SAInstall"
        case .saRemove: return "SARemove"
        case .acquire: return "Acquire"
        case .ikeDatagram: return "IKEDatagram"
        case .ikeState: return "IKEState"
        case .signRequest: return "SignRequest"
        case .signReply: return "SignReply"
        case .hostAddresses: return "HostAddresses"
        case .refusalReport: return "RefusalReport"
        case .signAnnounce: return "SignAnnounce"
        case .auditEvent: return "AuditEvent"
        case .auditRecords: return "AuditRecords"
        case .consoleOutput: return "ConsoleOutput"
        case .ikev2SignRequest: return "IKEv2SignRequest"
        case .ikev2SignReply: return "IKEv2SignReply"
        case .outerPaths: return "OuterPaths"
        case .page: return "Page"
        }
    }
}

/// First message on every link, both ways: who I am, since when.
public struct Hello: WireMessage {
    public static let type = MessageType.hello
    public var role: Role
    public var pid: UInt32
    /// CLOCK_MONOTONIC nanoseconds at process start (system-wide, so comparable).
    public var startedAt: UInt64
    /// Set once the sender runs inside its sandbox.
    public var sandboxed: Bool

    public init(role: Role, pid: UInt32, startedAt: UInt64, sandboxed: Bool) {
        self.role = role; self.pid = pid; self.startedAt = startedAt; self.sandboxed = sandboxed
    }
    public func encode(to w: inout WireWriter) { w.u8(role.rawValue); w.u32(pid); w.u64(startedAt); w.bool(sandboxed) }
    public init(from r: inout WireReader) throws(WireError) {
        role = try r.enumeration("hello.role", Role.self)
        pid = try r.u32()
        startedAt = try r.u64()
        sandboxed = try r.bool("hello.sandboxed")
    }
}

/// Carries exactly one descriptor, of the named kind.
public struct FdGrant: WireMessage {
    public static let type = MessageType.fdGrant
    public var kind: DescriptorKind
    public init(kind: DescriptorKind) { self.kind = kind }
    public func encode(to w: inout WireWriter) { w.u8(kind.rawValue) }
    public init(from r: inout WireReader) throws(WireError) {
        kind = try r.enumeration("fdgrant.kind", DescriptorKind.self)
    }
}

/// Sent once every descriptor has arrived: drop privileges and lock the sandbox.
public struct EnterSandbox: WireMessage {
    public static let type = MessageType.enterSandbox
    public var uid: UInt32
    public var gid: UInt32
    public var root: String
    public init(uid: UInt32, gid: UInt32, root: String) { self.uid = uid; self.gid = gid; self.root = root }
    public func encode(to w: inout WireWriter) { w.u32(uid); w.u32(gid); w.string(root) }
    public init(from r: inout WireReader) throws(WireError) {
        uid = try r.u32(); gid = try r.u32(); root = try r.string("sandbox.root", limit: 1024)
    }
}

/// A peer was restarted; its new link arrives in the FdGrant just before this.
public struct PeerRestarted: WireMessage {
    public static let type = MessageType.peerRestarted
    public var role: Role
    public var pid: UInt32
    public var restarts: UInt32
    public init(role: Role, pid: UInt32, restarts: UInt32) {
        self.role = role; self.pid = pid; self.restarts = restarts
    }
    public func encode(to w: inout WireWriter) { w.u8(role.rawValue); w.u32(pid); w.u32(restarts) }
    public init(from r: inout WireReader) throws(WireError) {
        role = try r.enumeration("restarted.role", Role.self); pid = try r.u32(); restarts = try r.u32()
    }
}

public struct Shutdown: WireMessage {
    public static let type = MessageType.shutdown
    public init() {}
    public func encode(to w: inout WireWriter) {}
    public init(from r: inout WireReader) throws(WireError) {}
}

public struct ReloadConfig: WireMessage {
    public static let type = MessageType.reloadConfig
    public init() {}
    public func encode(to w: inout WireWriter) {}
    public init(from r: inout WireReader) throws(WireError) {}
}

public struct Ping: WireMessage {
    public static let type = MessageType.ping
    public var nonce: UInt64
    public init(nonce: UInt64) { self.nonce = nonce }
    public func encode(to w: inout WireWriter) { w.u64(nonce) }
    public init(from r: inout WireReader) throws(WireError) { nonce = try r.u64() }
}

public struct Pong: WireMessage {
    public static let type = MessageType.pong
    public var nonce: UInt64
    public init(nonce: UInt64) { self.nonce = nonce }
    public func encode(to w: inout WireWriter) { w.u64(nonce) }
    public init(from r: inout WireReader) throws(WireError) { nonce = try r.u64() }
}

public struct StatusRequest: WireMessage {
    public static let type = MessageType.statusRequest
    public init() {}
    public func encode(to w: inout WireWriter) {}
    public init(from r: inout WireReader) throws(WireError) {}
}

public struct ProcessStatus: Sendable, Equatable {
    public var role: Role
    public var pid: UInt32
    public var uptimeMilliseconds: UInt64
    public var restarts: UInt32
    public var sandboxed: Bool
    public var connected: Bool
    /// Requests from this process that the others refused (checked against the configuration, or
    /// malformed, or not allowed on the channel).
    public var refused: UInt64 = 0

    public init(role: Role, pid: UInt32, uptimeMilliseconds: UInt64, restarts: UInt32, sandboxed: Bool, connected: Bool,
                refused: UInt64 = 0) {
        self.role = role; self.pid = pid; self.uptimeMilliseconds = uptimeMilliseconds
        self.restarts = restarts; self.sandboxed = sandboxed; self.connected = connected; self.refused = refused
    }
}

public struct StatusReply: WireMessage {
    public static let type = MessageType.statusReply
    public static let maximumProcesses = 16
    public var processes: [ProcessStatus]
    /// The TUN device's offloads in use, as the datapath reported them.
    public var offloads: [String] = []
    public init(processes: [ProcessStatus], offloads: [String] = []) {
        self.processes = processes; self.offloads = offloads
    }
    public func encode(to w: inout WireWriter) {
        w.count(processes.count)
        for p in processes {
            w.u8(p.role.rawValue); w.u32(p.pid); w.u64(p.uptimeMilliseconds); w.u32(p.restarts)
            w.bool(p.sandboxed); w.bool(p.connected); w.u64(p.refused)
        }
        w.count(offloads.count); for o in offloads { w.string(o) }
    }
    public init(from r: inout WireReader) throws(WireError) {
        let n = try r.count(limit: Self.maximumProcesses)
        var out: [ProcessStatus] = []
        for _ in 0..<n {
            out.append(ProcessStatus(role: try r.enumeration("status.role", Role.self), pid: try r.u32(),
                                     uptimeMilliseconds: try r.u64(), restarts: try r.u32(),
                                     sandboxed: try r.bool("status.sandboxed"),
                                     connected: try r.bool("status.connected"), refused: try r.u64()))
        }
        processes = out
        var list: [String] = []
        for _ in 0..<(try r.count(limit: 16)) { list.append(try r.string("status.offload", limit: 16)) }
        offloads = list
    }
}

public struct CounterRequest: WireMessage {
    public static let type = MessageType.counterRequest
    public init() {}
    public func encode(to w: inout WireWriter) {}
    public init(from r: inout WireReader) throws(WireError) {}
}

public struct Counter: Sendable, Equatable {
    public var name: String
    public var value: UInt64
    public init(name: String, value: UInt64) { self.name = name; self.value = value }
}

public struct CounterReply: WireMessage {
    public static let type = MessageType.counterReply
    /// The datapath names four counters per policy that saw traffic, besides its own.
    public static let maximumCounters = 4 * (ScaleLimits.policies + ScaleLimits.generatedPolicies) + 1024
    public var role: Role
    public var counters: [Counter]
    public init(role: Role, counters: [Counter]) { self.role = role; self.counters = counters }
    public func encode(to w: inout WireWriter) {
        w.u8(role.rawValue)
        w.count32(counters.count)
        for c in counters { w.string(c.name); w.u64(c.value) }
    }
    public init(from r: inout WireReader) throws(WireError) {
        role = try r.enumeration("counters.role", Role.self)
        let n = try r.count32(limit: Self.maximumCounters)
        var out: [Counter] = []
        for _ in 0..<n { out.append(Counter(name: try r.string("counter.name", limit: 128), value: try r.u64())) }
        counters = out
    }
}

/// A request could not be served; the text says why (never a secret).
public struct ErrorReply: WireMessage {
    public static let type = MessageType.errorReply
    public var reason: String
    public init(reason: String) { self.reason = reason }
    public func encode(to w: inout WireWriter) { w.string(reason) }
    public init(from r: inout WireReader) throws(WireError) { reason = try r.string("error.reason") }
}

/// RouterOS console input from `keyway`: one line, or a whole script run as one transaction.
public struct ConsoleCommand: WireMessage {
    public static let type = MessageType.consoleCommand
    /// A whole script runs as one transaction: long ones travel paged (Paging.swift).
    public static let maximumText = 32 << 20
    public var text: String
    public var json: Bool
    public init(text: String, json: Bool) { self.text = text; self.json = json }
    public func encode(to w: inout WireWriter) { w.string(text); w.bool(json) }
    public init(from r: inout WireReader) throws(WireError) {
        text = try r.string("console.text", limit: Self.maximumText)
        json = try r.bool("console.json")
    }
}

/// The console's answer: output (or the error, with its line and column), and the new prompt path.
public struct ConsoleReply: WireMessage {
    public static let type = MessageType.consoleReply
    /// A printout of every policy, SA or setting (paged).
    public static let maximumOutput = 120 << 20
    public var ok: Bool
    public var output: String
    public var warnings: [String]
    public var promptPath: String

    public init(ok: Bool, output: String, warnings: [String], promptPath: String) {
        self.ok = ok; self.output = output; self.warnings = warnings; self.promptPath = promptPath
    }
    public func encode(to w: inout WireWriter) {
        w.bool(ok); w.string(output); w.count(warnings.count)
        for x in warnings { w.string(x) }
        w.string(promptPath)
    }
    public init(from r: inout WireReader) throws(WireError) {
        ok = try r.bool("console.ok")
        output = try r.string("console.output", limit: Self.maximumOutput)
        let n = try r.count(limit: 256)
        var list: [String] = []
        for _ in 0..<n { list.append(try r.string("console.warning", limit: 1024)) }
        warnings = list
        promptPath = try r.string("console.prompt", limit: 256)
    }
}

/// Which groups may change the configuration (group keyway) and which may only look (group
/// keyway-read), resolved by keywayd from /etc/group, which the monitor's chroot cannot read.
/// Membership is not in it: the monitor reads each caller's groups from the connection itself
/// (SO_PEERGROUPS), so adding or removing a member takes effect on their next connection.
public struct AccessPolicy: WireMessage {
    public static let type = MessageType.accessPolicy
    public static let maximumEntries = 64
    public var adminGIDs: [UInt32]
    public var readGIDs: [UInt32]

    public init(adminGIDs: [UInt32], readGIDs: [UInt32]) {
        self.adminGIDs = adminGIDs; self.readGIDs = readGIDs
    }
    public func encode(to w: inout WireWriter) {
        for list in [adminGIDs, readGIDs] { w.count(list.count); for v in list { w.u32(v) } }
    }
    public init(from r: inout WireReader) throws(WireError) {
        var lists: [[UInt32]] = []
        for _ in 0..<2 {
            let n = try r.count(limit: Self.maximumEntries)
            var l: [UInt32] = []
            for _ in 0..<n { l.append(try r.u32()) }
            lists.append(l)
        }
        adminGIDs = lists[0]; readGIDs = lists[1]
    }

    public enum Level: Sendable { case admin, readOnly, none }

    /// `gids`: the caller's primary group (SO_PEERCRED) and supplementary groups (SO_PEERGROUPS).
    public func level(uid: UInt32, gids: [UInt32]) -> Level {
        if uid == 0 || gids.contains(where: adminGIDs.contains) { return .admin }
        if gids.contains(where: readGIDs.contains) { return .readOnly }
        return .none
    }
}
