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
        return "<\(pri)>1 \(timestamp(epochMicroseconds)) \(field(hostname, 255)) \(field(appName, 48)) \(procID) "
            + "\(field(msgID, 32)) \(sd) \(message)"
    }

    /// Header fields are printable US-ASCII without spaces; an empty one is the NILVALUE "-".
    static func field(_ s: String, _ limit: Int) -> String {
        let cleaned = String(String.UnicodeScalarView(
            s.unicodeScalars.filter { $0.value > 32 && $0.value < 127 }.prefix(limit)))
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
        let c = Civil((epochMicroseconds - micros) / 1_000_000)
        func pad(_ v: Int64, _ w: Int) -> String {
            let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(pad(c.year, 4))-\(pad(c.month, 2))-\(pad(c.day, 2))T\(pad(c.hour, 2)):\(pad(c.minute, 2)):"
            + "\(pad(c.second, 2)).\(pad(micros, 6))Z"
    }
}
