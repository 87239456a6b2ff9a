import KeywayWire

/// How audit lines are written to the syslog socket.
public enum SyslogFormat: String, Sendable, CaseIterable {
    /// What syslog(3) writes: `<PRI>Mmm dd hh:mm:ss TAG[PID]: MESSAGE`. The parsers of rsyslog's
    /// imuxsock and of journald's /dev/log take TAG as the program name and PID as its pid.
    case local
    /// RFC 5424, for listeners that parse it (rsyslog's imuxsock with useSpecialParser="off").
    case rfc5424
}

/// One attributed audit record as a syslog line, in either format.
public enum AuditLine {
    /// The largest line written: rsyslog's default maximum message size is 8 KiB.
    public static let maximumBytes = 8000
    public static let structuredDataID = "keyway@32473"

    public static func render(_ record: AuditRecord, format: SyslogFormat, hostname: String,
                              utcOffsetSeconds: Int64 = 0) -> String {
        let severity = Severity(rawValue: Int(min(record.event.severity, 7))) ?? .notice
        let params = record.event.parameters.map { ($0.name, $0.value) }
        let line: String
        switch format {
        case .local:
            line = LocalSyslog.format(severity: severity, epochMicroseconds: Int64(clamping: record.epochMicroseconds),
                                      utcOffsetSeconds: utcOffsetSeconds, tag: record.role.description,
                                      pid: record.pid, msgID: record.event.msgID, message: record.event.text,
                                      parameters: params)
        case .rfc5424:
            line = RFC5424.format(severity: severity, epochMicroseconds: Int64(clamping: record.epochMicroseconds),
                                  hostname: hostname, appName: record.role.description,
                                  procID: Int32(bitPattern: record.pid),
                                  msgID: record.event.msgID,
                                  structuredData: params.isEmpty ? [] : [StructuredData(id: structuredDataID, params)],
                                  message: LocalSyslog.printable(record.event.text))
        }
        return AuditEvent.cut(line, maximumBytes)
    }
}

/// syslog(3)'s format, pure: `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSGID TEXT [name="value" ...]`. The
/// message id and the structured data travel inside MESSAGE, where a parser of this format
/// leaves them untouched.
public enum LocalSyslog {
    public static func format(facility: Int = RFC5424.facilityAuthpriv, severity: Severity, epochMicroseconds: Int64,
                              utcOffsetSeconds: Int64, tag: String, pid: UInt32, msgID: String, message: String,
                              parameters: [(String, String)]) -> String {
        let pri = facility * 8 + severity.rawValue
        var body = RFC5424.field(msgID, 32) + " " + printable(message)
        if !parameters.isEmpty { body += " " + structuredData(parameters) }
        return "<\(pri)>\(timestamp(epochMicroseconds / 1_000_000 + utcOffsetSeconds)) "
            + "\(tagField(tag))[\(pid)]: \(body)"
    }

    /// `[name="value" ...]`, values escaped as RFC 5424 escapes PARAM-VALUE (`"`, `\`, `]`).
    static func structuredData(_ parameters: [(String, String)]) -> String {
        let fields = parameters.map { name, value in
            RFC5424.field(name.filter { $0 != "=" && $0 != "]" && $0 != "\"" }, 32) + "=\""
                + RFC5424.escape(printable(value)) + "\""
        }
        return "[" + fields.joined(separator: " ") + "]"
    }

    /// The program name: what the parsers stop at (`[`, `:`, space) cannot be in it.
    static func tagField(_ tag: String) -> String {
        let cleaned = String(String.UnicodeScalarView(tag.unicodeScalars.filter {
            $0.value > 32 && $0.value < 127 && $0 != "[" && $0 != ":" && $0 != "]"
        }.prefix(32)))
        return cleaned.isEmpty ? "keyway" : cleaned
    }

    /// No control characters: a newline would start a line of its own in a log file.
    public static func printable(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { $0.value < 32 || $0.value == 127 ? " " : $0 }))
    }

    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `Mmm dd hh:mm:ss` (RFC 3164), the day padded with a space, for local time `seconds`.
    public static func timestamp(_ seconds: Int64) -> String {
        let c = Civil(seconds)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let day = c.day < 10 ? " \(c.day)" : "\(c.day)"
        return "\(months[Int(c.month - 1)]) \(day) \(two(c.hour)):\(two(c.minute)):\(two(c.second))"
    }
}

/// A calendar date and time from seconds since the epoch (proleptic Gregorian), computed without
/// the C library's time zone files, which a chrooted process cannot read.
public struct Civil: Sendable, Equatable {
    public var year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64

    public init(_ seconds: Int64) {
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secOfDay = seconds - days * 86400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = doy - (153 * mp + 2) / 5 + 1
        month = mp < 10 ? mp + 3 : mp - 9
        year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        hour = secOfDay / 3600
        minute = secOfDay % 3600 / 60
        second = secOfDay % 60
    }
}
