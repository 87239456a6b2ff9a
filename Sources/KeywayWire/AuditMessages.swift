/// Audit events between processes. A child says what happened (`AuditEvent`, to keywayd on its
/// own link); keywayd says who said it and when — the link's role, the pid it spawned, its own
/// clock, never a field the sender wrote — and hands the record on (`AuditRecords`, to the
/// monitor, for `/log`). Everything is bounded, and no event carries a secret.

public struct AuditParameter: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) { self.name = name; self.value = value }
}

/// What a process says happened: syslog severity (0 emergency … 7 debug), a message id, the
/// text and its parameters.
public struct AuditEvent: WireMessage {
    public static let type = MessageType.auditEvent
    public static let maximumMsgID = 32
    public static let maximumText = 2048
    public static let maximumParameters = 16
    public static let maximumName = 32
    public static let maximumValue = 1024

    public var severity: UInt8
    public var msgID: String
    public var text: String
    public var parameters: [AuditParameter]

    public init(severity: UInt8, msgID: String, text: String, parameters: [AuditParameter]) {
        self.severity = severity; self.msgID = msgID; self.text = text; self.parameters = parameters
    }

    /// The same event cut to the bounds (whole characters only), so that a long line from a
    /// legitimate sender is shortened rather than refused.
    public func bounded() -> AuditEvent {
        AuditEvent(severity: min(severity, 7), msgID: Self.cut(msgID, Self.maximumMsgID),
                   text: Self.cut(text, Self.maximumText),
                   parameters: parameters.prefix(Self.maximumParameters).map {
                       AuditParameter(Self.cut($0.name, Self.maximumName), Self.cut($0.value, Self.maximumValue))
                   })
    }

    /// At most `bytes` bytes of UTF-8, cut before a character, never inside one.
    public static func cut(_ s: String, _ bytes: Int) -> String {
        guard s.utf8.count > bytes else { return s }
        var out = ""
        var used = 0
        for ch in s {
            let n = String(ch).utf8.count
            if used + n > bytes { break }
            out.append(ch)
            used += n
        }
        return out
    }

    public func encode(to w: inout WireWriter) {
        w.u8(severity); w.string(msgID); w.string(text)
        w.count(parameters.count)
        for p in parameters { w.string(p.name); w.string(p.value) }
    }

    public init(from r: inout WireReader) throws(WireError) {
        severity = try r.u8()
        guard severity <= 7 else { throw .invalidEnum(field: "audit.severity", value: UInt32(severity)) }
        msgID = try r.string("audit.msgid", limit: Self.maximumMsgID)
        text = try r.string("audit.text", limit: Self.maximumText)
        let n = try r.count(limit: Self.maximumParameters)
        var list: [AuditParameter] = []
        for _ in 0..<n {
            list.append(AuditParameter(try r.string("audit.name", limit: Self.maximumName),
                                       try r.string("audit.value", limit: Self.maximumValue)))
        }
        parameters = list
    }
}

/// An event as keywayd attributed it: its own sequence number and clock, and the sender's role
/// and pid as keywayd knows them from the link the event came on.
public struct AuditRecord: Sendable, Equatable {
    public var sequence: UInt64
    public var epochMicroseconds: UInt64
    public var role: Role
    public var pid: UInt32
    public var event: AuditEvent

    public init(sequence: UInt64, epochMicroseconds: UInt64, role: Role, pid: UInt32, event: AuditEvent) {
        self.sequence = sequence; self.epochMicroseconds = epochMicroseconds; self.role = role; self.pid = pid
        self.event = event
    }
}

/// keywayd to the monitor: attributed events, in order, for `/log`.
public struct AuditRecords: WireMessage {
    public static let type = MessageType.auditRecords
    public static let maximumRecords = 16

    public var records: [AuditRecord]
    public init(records: [AuditRecord]) { self.records = records }

    public func encode(to w: inout WireWriter) {
        w.count(records.count)
        for r in records {
            w.u64(r.sequence); w.u64(r.epochMicroseconds); w.u8(r.role.rawValue); w.u32(r.pid)
            r.event.encode(to: &w)
        }
    }

    public init(from r: inout WireReader) throws(WireError) {
        let n = try r.count(limit: Self.maximumRecords)
        var list: [AuditRecord] = []
        for _ in 0..<n {
            list.append(AuditRecord(sequence: try r.u64(), epochMicroseconds: try r.u64(),
                                    role: try r.enumeration("audit.role", Role.self), pid: try r.u32(),
                                    event: try AuditEvent(from: &r)))
        }
        records = list
    }
}

/// A piece of a console answer that comes before its `ConsoleReply`: a long printout in pieces,
/// or `/log print follow`'s lines. `following`: after the reply, more pieces come as events
/// happen, until the client closes the connection or sends another request.
public struct ConsoleOutput: WireMessage {
    public static let type = MessageType.consoleOutput
    /// Room for the header and the flag in one 64 KiB datagram.
    public static let maximumText = 60_000

    public var text: String
    public var following: Bool
    public init(text: String, following: Bool) { self.text = text; self.following = following }

    public func encode(to w: inout WireWriter) { w.string(text); w.bool(following) }
    public init(from r: inout WireReader) throws(WireError) {
        text = try r.string("output.text", limit: Self.maximumText)
        following = try r.bool("output.following")
    }

    /// `text` in pieces of at most `maximumBytes` bytes of UTF-8, cut after a newline where one
    /// is near, never inside a character.
    public static func pieces(_ text: String, maximumBytes: Int = 48_000) -> [String] {
        var out: [String] = []
        var current = ""
        var used = 0
        var lastNewline: (index: String.Index, used: Int)?
        for ch in text {
            let n = String(ch).utf8.count
            if used + n > maximumBytes, !current.isEmpty {
                if let cut = lastNewline, cut.used > maximumBytes / 2 {
                    out.append(String(current[..<cut.index]))
                    current = String(current[cut.index...])
                    used -= cut.used
                } else {
                    out.append(current)
                    current = ""
                    used = 0
                }
                lastNewline = nil
            }
            current.append(ch)
            used += n
            if ch == "\n" { lastNewline = (current.endIndex, used) }
        }
        if !current.isEmpty || out.isEmpty { out.append(current) }
        return out
    }
}
