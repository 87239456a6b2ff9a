import KeywayVocabulary

/// `address/netmask:port` as RouterOS writes it (port `any` or a number).
public struct AddressSpec: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var address: IPv4Address
    public var prefixLength: Int
    public var port: UInt16?

    public init(address: IPv4Address, prefixLength: Int, port: UInt16?) {
        self.address = address
        self.prefixLength = prefixLength
        self.port = port
    }

    /// Parses `a.b.c.d[/len][:port]`; the port defaults to `defaultPort`.
    public static func parse(_ text: String, defaultPort: UInt16?) -> AddressSpec? {
        var rest = Substring(text)
        var port = defaultPort
        if let colon = rest.lastIndex(of: ":") {
            let p = rest[rest.index(after: colon)...]
            if p == "any" { port = nil } else if let n = UInt16(p) { port = n } else { return nil }
            rest = rest[..<colon]
        }
        var length = 32
        if let slash = rest.firstIndex(of: "/") {
            guard let n = Int(rest[rest.index(after: slash)...]), (0...32).contains(n) else { return nil }
            length = n
            rest = rest[..<slash]
        }
        guard let ip = IPv4Address(rest) else { return nil }
        return AddressSpec(address: ip, prefixLength: length, port: port)
    }

    public var mask: UInt32 { prefixLength == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefixLength) }
    public var network: IPv4Address { IPv4Address(address.value & mask) }
    public func contains(_ ip: IPv4Address) -> Bool { ip.value & mask == network.value }
    public var description: String { "\(address)/\(prefixLength):\(port.map(String.init) ?? "any")" }
}

/// Durations: `1w2d3h4m5s`, a bare number of seconds; printed normalised.
public enum Duration {
    public static func parse(_ text: String) -> UInt64? {
        if let n = UInt64(text) { return n }
        var total: UInt64 = 0
        var digits = ""
        var sawUnit = false
        for ch in text {
            if ch.isASCII && ch.isNumber { digits.append(ch); continue }
            guard let n = UInt64(digits) else { return nil }
            let unit: UInt64
            switch ch {
            case "w": unit = 604_800
            case "d": unit = 86_400
            case "h": unit = 3_600
            case "m": unit = 60
            case "s": unit = 1
            default: return nil
            }
            let (product, overflow1) = n.multipliedReportingOverflow(by: unit)
            let (sum, overflow2) = total.addingReportingOverflow(product)
            guard !overflow1, !overflow2 else { return nil }
            total = sum
            digits = ""
            sawUnit = true
        }
        return digits.isEmpty && sawUnit ? total : nil
    }

    public static func format(_ seconds: UInt64) -> String {
        if seconds == 0 { return "0s" }
        var s = seconds
        var out = ""
        for (unit, name) in [(UInt64(604_800), "w"), (86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")] where s >= unit {
            out += "\(s / unit)\(name)"
            s %= unit
        }
        return out
    }
}

/// A property's value, already validated for its type.
public enum Value: Equatable, Hashable, Sendable {
    case text(String)
    case integer(Int64)
    case boolean(Bool)
    case duration(UInt64)
    case address(AddressSpec)
    case ip(IPv4Address)
    case choice(String)
    case choices([String])
    /// Incoming/outgoing pair (manual-sa SPIs and keys); one value means both.
    case pair(String, String)

    public var text: String? {
        if case .text(let s) = self { return s }; if case .choice(let s) = self { return s }; return nil
    }
}
