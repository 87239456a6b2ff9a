/// RFC 5424 message formatting: pure, so tests can check every byte.
public enum Severity: Int, Sendable, Comparable {
    case emergency = 0, alert, critical, error, warning, notice, informational, debug
    public static func < (a: Severity, b: Severity) -> Bool { a.rawValue < b.rawValue }
}

public struct StructuredData: Sendable, Equatable {
    public var id: String
    public var parameters: [(String, String)]

    public init(id: String, _ parameters: [(String, String)]) {
        self.id = id
        self.parameters = parameters
    }

    public static func == (a: StructuredData, b: StructuredData) -> Bool {
        a.id == b.id && a.parameters.elementsEqual(b.parameters, by: { $0 == $1 })
    }
}

public enum RFC5424 {
    /// LOG_AUTHPRIV (10): audit lines belong where security events go.
    public static let facilityAuthpriv = 10

    /// `<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG`
    public static func format(facility: Int = facilityAuthpriv, severity: Severity, epochMicroseconds: Int64,
                              hostname: String, appName: String, procID: Int32, msgID: String,
                              structuredData: [StructuredData], message: String) -> String {
        let pri = facility * 8 + severity.rawValue
        let sd = structuredData.isEmpty ? "-" : structuredData.map(render).joined()
        return "<\(pri)>1 \(timestamp(epochMicroseconds)) \(field(hostname, 255)) \(field(appName, 48)) \(procID) \(field(msgID, 32)) \(sd) \(message)"
    }

    /// Header fields are printable US-ASCII without spaces; an empty one is the NILVALUE "-".
    static func field(_ s: String, _ limit: Int) -> String {
        let cleaned = String(String.UnicodeScalarView(s.unicodeScalars.filter { $0.value > 32 && $0.value < 127 }.prefix(limit)))
        return cleaned.isEmpty ? "-" : cleaned
    }

    static func render(_ sd: StructuredData) -> String {
        var out = "[" + field(sd.id, 32)
        for (name, value) in sd.parameters {
            out += " \(field(name.filter { $0 != "=" && $0 != "]" && $0 != "\"" }, 32))=\"\(escape(value))\""
        }
        return out + "]"
    }

    /// RFC 5424 §6.3.3: '"', '\' and ']' are escaped inside PARAM-VALUE.
    static func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            if ch == "\"" || ch == "\\" || ch == "]" { out.append("\\") }
            out.append(ch == "\n" ? " " : ch)
        }
        return out
    }

    /// `YYYY-MM-DDThh:mm:ss.ffffffZ`, computed without the C library's time zone files
    /// (which a chrooted process cannot read).
    public static func timestamp(_ epochMicroseconds: Int64) -> String {
        let micros = ((epochMicroseconds % 1_000_000) + 1_000_000) % 1_000_000
        let seconds = (epochMicroseconds - micros) / 1_000_000
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secOfDay = seconds - days * 86400
        // Civil-from-days (proleptic Gregorian).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func pad(_ v: Int64, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(secOfDay / 3600, 2)):\(pad(secOfDay % 3600 / 60, 2)):\(pad(secOfDay % 60, 2)).\(pad(micros, 6))Z"
    }
}
