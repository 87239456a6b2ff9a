/// One audit event as `/log` shows it: attributed by keywayd (process, pid, time, sequence).
public struct LogEntry: Sendable, Equatable {
    public var sequence: UInt64
    public var epochMicroseconds: UInt64
    public var process: String
    public var pid: UInt32
    /// syslog severity, 0 (emergency) to 7 (debug).
    public var severity: UInt8
    public var msgID: String
    public var text: String
    public var parameters: [LogParameter]

    public init(sequence: UInt64, epochMicroseconds: UInt64, process: String, pid: UInt32, severity: UInt8,
                msgID: String, text: String, parameters: [LogParameter]) {
        self.sequence = sequence; self.epochMicroseconds = epochMicroseconds; self.process = process; self.pid = pid
        self.severity = severity; self.msgID = msgID; self.text = text; self.parameters = parameters
    }
}

public struct LogParameter: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) { self.name = name; self.value = value }
}

/// What a `/log print ... follow` asks for: later events that match, after the last one shown.
public struct LogFollow: Sendable, Equatable {
    public var condition: Condition?
    public var after: UInt64
    public var json: Bool

    public init(condition: Condition?, after: UInt64, json: Bool) {
        self.condition = condition; self.after = after; self.json = json
    }
}

/// RouterOS's `/log`: topics, the printed line, JSON, and `where` conditions over events. Pure.
public enum LogView {
    /// What a condition may name.
    public static let properties = ["time", "topics", "message", "process", "pid", "msg-id"]

    /// RouterOS topics: the facility (`ipsec` for IKE and the datapath, `system` for keywayd and
    /// the monitor; `account` for control-socket access), then the severity.
    public static func topics(_ e: LogEntry) -> [String] {
        var list = [e.process == "keyway-ike" || e.process == "keyway-datapath" ? "ipsec" : "system"]
        if e.msgID.hasPrefix("control") || e.msgID == "config-denied" { list.append("account") }
        switch e.severity {
        case 0...2: list.append("critical")
        case 3: list.append("error")
        case 4: list.append("warning")
        case 7: list.append("debug")
        default: list.append("info")
        }
        return list
    }

    /// The text and its parameters, as one line.
    public static func message(_ e: LogEntry) -> String {
        let params = e.parameters.map { p -> String in
            let plain = !p.value.isEmpty && !p.value.contains(where: { " \"=\\".contains($0) || $0.isNewline })
            return p.name + "=" + (plain ? p.value : Schema.quote(p.value))
        }
        return printable(([e.text] + params).joined(separator: " "))
    }

    /// `dec/01/2026 08:48:01`, UTC (the monitor's chroot has no time zone files).
    public static func time(_ e: LogEntry) -> String {
        let seconds = Int64(clamping: e.epochMicroseconds / 1_000_000)
        let days = seconds / 86400
        let secOfDay = seconds % 86400
        let (y, m, d) = civil(days)
        let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(months[Int(m - 1)])/\(two(d))/\(y) "
            + "\(two(secOfDay / 3600)):\(two(secOfDay % 3600 / 60)):\(two(secOfDay % 60))"
    }

    /// `dec/01/2026 08:48:01 ipsec,error       keyway-ike: phase 1 negotiation failed ...`
    public static func line(_ e: LogEntry) -> String {
        let t = topics(e).joined(separator: ",")
        return time(e) + " " + t + String(repeating: " ", count: max(1, 20 - t.count)) + e.process + ": " + message(e)
    }

    public static func json(_ e: LogEntry) -> String {
        let fields: [(String, String)] = [
            (".id", jsonString("*" + String(e.sequence, radix: 16, uppercase: true))),
            ("time", jsonString(time(e))), ("topics", jsonString(topics(e).joined(separator: ","))),
            ("process", jsonString(e.process)), ("pid", String(e.pid)), ("msg-id", jsonString(e.msgID)),
            ("message", jsonString(message(e))),
        ]
        return "{" + fields.map { "\(jsonString($0.0)):\($0.1)" }.joined(separator: ",") + "}"
    }

    /// A property's value, as conditions compare it.
    static func value(_ name: String, _ e: LogEntry) -> String {
        switch name {
        case "time": return time(e)
        case "topics": return topics(e).joined(separator: ",")
        case "message": return message(e)
        case "process": return e.process
        case "pid": return String(e.pid)
        case "msg-id": return e.msgID
        default: return ""
        }
    }

    /// Names resolved (exact, then an unambiguous prefix); unknown ones refused with the position.
    public static func resolving(_ condition: Condition) throws(ConfigError) -> Condition {
        var out = condition
        for a in out.alternatives.indices {
            for t in out.alternatives[a].indices {
                let term = out.alternatives[a][t]
                if properties.contains(term.name) { continue }
                let candidates = properties.filter { $0.hasPrefix(term.name) }
                guard !term.name.isEmpty, candidates.count == 1 else {
                    throw ConfigError("\(candidates.count > 1 ? "ambiguous" : "unknown") property '\(term.name)' "
                                      + "in condition for /log: expected one of \(properties.joined(separator: ", "))",
                                      at: term.position)
                }
                out.alternatives[a][t].name = candidates[0]
            }
        }
        return out
    }

    /// `topics=error` holds when `error` is one of the topics (or the whole list); `~` is a
    /// case-insensitive substring test (RouterOS takes a regular expression there; literal text
    /// cannot make the monitor spin on a pathological pattern).
    public static func matches(_ e: LogEntry, _ condition: Condition?) -> Bool {
        guard let condition else { return true }
        return condition.alternatives.contains { group in
            group.allSatisfy { term in
                let actual = value(term.name, e)
                let holds: Bool
                if let expected = term.value {
                    if term.contains {
                        holds = expected.isEmpty || actual.lowercased().contains(expected.lowercased())
                    } else if term.name == "topics" {
                        holds = actual == expected || topics(e).contains(expected)
                    } else {
                        holds = actual == expected
                    }
                } else {
                    holds = !actual.isEmpty
                }
                return holds != term.negated
            }
        }
    }

    static func printable(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { $0.value < 32 || $0.value == 127 ? " " : $0 }))
    }

    /// Year, month, day from days since the epoch (proleptic Gregorian).
    static func civil(_ days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}
