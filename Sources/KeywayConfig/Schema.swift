import KeywayVocabulary

/// How a property's text is parsed, validated and printed.
public enum PropertyType: Sendable {
    case address(defaultPort: UInt16?)
    case ip
    case choice([String])
    case choices([String])
    case boolean
    case integer(ClosedRange<Int64>)
    case duration(DurationBounds)
    case reference(MenuKind, allowsNone: Bool)
    case name
    case secretText
    case hexKeyPair
    case spiPair
    case ipProtocol
    /// Keyway's `tcp-mss`: clamp-to-pmtu, off, or an MSS (stored as the text).
    case tcpMSS
    /// `my-id`/`remote-id`: `auto`, `address:IP`, `fqdn:NAME`, `user-fqdn:USER@NAME`, `key-id:TEXT`.
    case identity
}

public struct PropertySpec: Sendable {
    public let name: String
    public let type: PropertyType
    public let defaultValue: Value
    /// Hidden in print and export unless show-sensitive is given; masked in audit lines.
    public let sensitive: Bool
    /// Shown by plain `print` (the manual's printouts); `print detail` shows every property.
    public let inPrint: Bool

    init(_ name: String, _ type: PropertyType, _ defaultValue: Value, sensitive: Bool = false, inPrint: Bool = true) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.sensitive = sensitive
        self.inPrint = inPrint
    }
}

/// What a duration property accepts: `0s` where that means "off" or "no limit", else a time
/// within `range`. Every bound keeps later arithmetic (milliseconds, 80% soft limits) in range.
public struct DurationBounds: Sendable, Equatable {
    public let zeroAllowed: Bool
    public let range: ClosedRange<UInt64>

    public init(zeroAllowed: Bool, range: ClosedRange<UInt64>) {
        self.zeroAllowed = zeroAllowed
        self.range = range
    }

    /// SA and phase 1 lifetimes: at most a week (Seconds.maximumLifetime); 0s where no limit is allowed.
    public static let lifetime = DurationBounds(zeroAllowed: true, range: 1...Seconds.maximumLifetime.value)
    /// Dead peer detection: 0s turns it off; otherwise a probe at most every 2 s, at least every hour.
    public static let dpdInterval = DurationBounds(zeroAllowed: true, range: 2...3_600)

    public func contains(_ seconds: UInt64) -> Bool { (zeroAllowed && seconds == 0) || range.contains(seconds) }

    /// The allowed value nearest to `seconds`.
    public func nearest(_ seconds: UInt64) -> UInt64 {
        if contains(seconds) { return seconds }
        return seconds < range.lowerBound ? range.lowerBound : range.upperBound
    }

    var expected: String {
        let span = "a time from \(Duration.format(range.lowerBound)) to \(Duration.format(range.upperBound))"
        return zeroAllowed ? "0s or \(span)" : span
    }
}

/// Why a value was refused: what was expected instead.
public struct ValueError: Error, Sendable {
    public let expected: String
    /// For a number or time out of range: the allowed value nearest to it. A stored configuration
    /// written before a bound existed is clamped to it rather than refused.
    public let nearest: Value?
    init(_ expected: String, nearest: Value? = nil) {
        self.expected = expected
        self.nearest = nearest
    }
}

public enum Schema {
    static let ikeGroups = DHGroup.allCases.map(\.name)
    static let ipsecEnc = EncryptionAlgorithm.allCases.map(\.rawValue)
    static let ipsecAuth = ["md5", "sha1", "sha256", "sha384", "sha512", "null"]

    /// The largest lifebytes (2^50, 1 PiB): far beyond any SA's traffic, and small enough that
    /// byte counters, kilobyte conversions (x1024) and 80% soft limits never overflow 64 bits.
    public static let maximumLifebytes: Int64 = 1 << 50

    public static let policy: [PropertySpec] = [
        PropertySpec("src-address", .address(defaultPort: nil),
                     .address(AddressSpec(address: .any, prefixLength: 32, port: nil))),
        PropertySpec("dst-address", .address(defaultPort: nil),
                     .address(AddressSpec(address: .any, prefixLength: 32, port: nil))),
        PropertySpec("protocol", .ipProtocol, .choice("all")),
        // semantics.md: the default is encrypt (the manual's "accept" names no valid value).
        PropertySpec("action", .choice(["none", "discard", "encrypt"]), .choice("encrypt")),
        PropertySpec("level", .choice(["use", "require", "unique"]), .choice("require")),
        PropertySpec("ipsec-protocols", .choices(["ah", "esp"]), .choices(["esp"])),
        PropertySpec("tunnel", .boolean, .boolean(false)),
        PropertySpec("sa-src-address", .ip, .ip(.any)),
        PropertySpec("sa-dst-address", .ip, .ip(.any)),
        PropertySpec("proposal", .reference(.proposal, allowsNone: false), .text("default")),
        PropertySpec("manual-sa", .reference(.manualSA, allowsNone: true), .text("none")),
        PropertySpec("priority", .integer(-2_147_483_648...2_147_483_647), .integer(0)),
        PropertySpec("dont-fragment", .choice(["clear", "inherit", "set"]), .choice("clear"), inPrint: false),
        // Keyway's extension (routeros-semantics.md): RouterOS users add firewall change-mss rules by hand.
        PropertySpec("tcp-mss", .tcpMSS, .choice("clamp-to-pmtu"), inPrint: false),
    ]

    public static let peer: [PropertySpec] = [
        PropertySpec("address", .address(defaultPort: 500),
                     .address(AddressSpec(address: .any, prefixLength: 32, port: 500))),
        PropertySpec("auth-method", .choice(["pre-shared-key", "rsa-signature"]), .choice("pre-shared-key")),
        PropertySpec("secret", .secretText, .text(""), sensitive: true),
        PropertySpec("certificate", .name, .text("none"), inPrint: false),
        PropertySpec("remote-certificate", .name, .text("none"), inPrint: false),
        PropertySpec("generate-policy", .boolean, .boolean(false)),
        PropertySpec("exchange-mode", .choice(["main", "aggressive", "base", "ike2"]), .choice("main")),
        PropertySpec("send-initial-contact", .boolean, .boolean(true)),
        PropertySpec("nat-traversal", .boolean, .boolean(false)),
        // Keyway extension (strongSwan's encap=yes): ESP in UDP even where no NAT is detected.
        PropertySpec("force-udp-encapsulation", .boolean, .boolean(false), inPrint: false),
        PropertySpec("proposal-check", .choice(["claim", "exact", "obey", "strict"]), .choice("strict")),
        PropertySpec("hash-algorithm", .choice(["md5", "sha1", "sha256", "sha384", "sha512"]), .choice("md5")),
        // aes-128-gcm/aes-256-gcm (RFC 5282) and curve25519 (RFC 8031): exchange-mode=ike2 only.
        PropertySpec("enc-algorithm",
                     .choice(["des", "3des", "aes-128", "aes-192", "aes-256", "aes-128-gcm", "aes-256-gcm"]),
                     .choice("3des")),
        // A multiple choice, as in the manual: ike2 offers every group, IKEv1 proposes the first.
        PropertySpec("dh-group", .choices(ikeGroups), .choices(["modp1024"])),
        PropertySpec("lifetime", .duration(.lifetime), .duration(86_400)),
        PropertySpec("lifebytes", .integer(0...maximumLifebytes), .integer(0)),
        // RouterOS v6 (beyond the v2 manual): dead peer detection, RFC 3706. 0s turns it off.
        PropertySpec("dpd-interval", .duration(.dpdInterval), .duration(120), inPrint: false),
        PropertySpec("dpd-maximum-failures", .integer(1...100), .integer(5), inPrint: false),
        // RouterOS v6.43+ (IKEv2): the identity we send, and the one we accept (auto: any).
        PropertySpec("my-id", .identity, .text("auto"), inPrint: false),
        PropertySpec("remote-id", .identity, .text("auto"), inPrint: false),
    ]

    public static let proposal: [PropertySpec] = [
        PropertySpec("name", .name, .text("")),
        PropertySpec("auth-algorithms", .choices(ipsecAuth), .choices(["sha1"])),
        PropertySpec("enc-algorithms", .choices(ipsecEnc), .choices(["3des"])),
        PropertySpec("lifetime", .duration(.lifetime), .duration(1_800)),
        PropertySpec("pfs-group", .choice(["none"] + ikeGroups), .choice("modp1024")),
    ]

    public static let manualSA: [PropertySpec] = [
        PropertySpec("name", .name, .text("")),
        PropertySpec("ah-algorithm", .choice(ipsecAuth), .choice("sha1")),
        PropertySpec("ah-key", .hexKeyPair, .pair("", ""), sensitive: true),
        PropertySpec("ah-spi", .spiPair, .pair("0", "0")),
        PropertySpec("esp-auth-algorithm", .choice(ipsecAuth), .choice("sha1")),
        PropertySpec("esp-auth-key", .hexKeyPair, .pair("", ""), sensitive: true),
        PropertySpec("esp-enc-algorithm", .choice(ipsecEnc), .choice("3des")),
        PropertySpec("esp-enc-key", .hexKeyPair, .pair("", ""), sensitive: true),
        PropertySpec("esp-spi", .spiPair, .pair("0", "0")),
        PropertySpec("lifetime", .duration(.lifetime), .duration(0)),
    ]

    /// Defaults by name, per menu: most values of an item are defaults (they are not stored), and
    /// a search of the schema per value costs 100,000 policies seconds.
    static let policyDefaults = defaults(policy), peerDefaults = defaults(peer)
    static let proposalDefaults = defaults(proposal), manualSADefaults = defaults(manualSA)

    static func defaults(_ schema: [PropertySpec]) -> [String: Value] {
        Dictionary(schema.map { ($0.name, $0.defaultValue) }, uniquingKeysWith: { a, _ in a })
    }

    static func defaults(_ kind: MenuKind) -> [String: Value] {
        switch kind {
        case .policy: return policyDefaults
        case .peer: return peerDefaults
        case .proposal: return proposalDefaults
        case .manualSA: return manualSADefaults
        default: return [:]
        }
    }

    public static func properties(_ kind: MenuKind) -> [PropertySpec] {
        switch kind {
        case .policy: return policy
        case .peer: return peer
        case .proposal: return proposal
        case .manualSA: return manualSA
        default: return []
        }
    }

    /// The vocabulary's protocol names, and `all` (-1: no protocol in the selector).
    static let protocolNames: [String: Int] =
        IPProtocolNames.byName.mapValues(Int.init).merging(["all": -1]) { named, _ in named }

    /// Parses a value for a property; the message says what was expected.
    public static func parse(_ text: String, for spec: PropertySpec) -> Result<Value, ValueError> {
        switch spec.type {
        case .address(let port):
            guard let a = AddressSpec.parse(text, defaultPort: port) else {
                return .failure(ValueError("expected an address such as 10.0.0.0/24 or 10.0.0.1/32:500"))
            }
            return .success(.address(a))
        case .ip:
            guard let ip = IPv4Address(Substring(text)) else {
                return .failure(ValueError("expected an IPv4 address such as 192.0.2.1"))
            }
            return .success(.ip(ip))
        case .choice(let options):
            guard let v = resolve(text, options) else {
                return .failure(ValueError("expected one of \(options.joined(separator: ", "))"))
            }
            return .success(.choice(v))
        case .choices(let options):
            var out: [String] = []
            for part in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard let v = resolve(String(part), options) else {
                    return .failure(ValueError("expected a comma-separated list of \(options.joined(separator: ", "))"))
                }
                if !out.contains(v) { out.append(v) }
            }
            return .success(.choices(out))
        case .boolean:
            switch text {
            case "yes", "true": return .success(.boolean(true))
            case "no", "false": return .success(.boolean(false))
            default: return .failure(ValueError("expected yes or no"))
            }
        case .integer(let range):
            let expected = "expected a whole number from \(range.lowerBound) to \(range.upperBound)"
            guard let n = Int64(text) else { return .failure(ValueError(expected)) }
            guard range.contains(n) else {
                return .failure(ValueError(expected,
                                           nearest: .integer(min(max(n, range.lowerBound), range.upperBound))))
            }
            return .success(.integer(n))
        case .duration(let bounds):
            guard let d = Duration.parse(text) else {
                return .failure(ValueError("expected a time such as 30m, 1d, 28800s or 1d2h3m4s"))
            }
            guard bounds.contains(d) else {
                return .failure(ValueError("expected \(bounds.expected)", nearest: .duration(bounds.nearest(d))))
            }
            return .success(.duration(d))
        case .reference(_, let allowsNone):
            guard !text.isEmpty, isName(text) else { return .failure(ValueError("expected a name")) }
            if text == "none" && !allowsNone { return .failure(ValueError("expected the name of a proposal")) }
            return .success(.text(text))
        case .name:
            guard isName(text) else { return .failure(ValueError("expected a name (letters, digits, '-', '_', '.')")) }
            return .success(.text(text))
        case .secretText:
            if text.hasPrefix("0x") && Hex.decode(text) == nil {
                return .failure(ValueError("a secret starting with 0x must be hexadecimal"))
            }
            return .success(.text(text))
        case .hexKeyPair:
            let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count <= 2 else {
                return .failure(ValueError("expected a hex key, or incoming/outgoing keys separated by '/'"))
            }
            for p in parts where Hex.decode(p) == nil {
                return .failure(ValueError("expected a hex key, or incoming/outgoing keys separated by '/'"))
            }
            let norm = parts.map { p -> String in Hex.encode(Hex.decode(p) ?? []) }
            guard let incoming = norm.first else { return .failure(ValueError("expected a hex key")) }
            return .success(.pair(incoming, norm.last ?? incoming))
        case .spiPair:
            let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count <= 2 else {
                return .failure(ValueError("expected an SPI, or incoming/outgoing SPIs separated by '/'"))
            }
            var spis: [String] = []
            for p in parts {
                guard let v = parseSPI(p) else {
                    return .failure(ValueError("expected an SPI (0x100 to 0xffffffff, or 0 for none)"))
                }
                spis.append(v == 0 ? "0" : "0x" + String(v, radix: 16))
            }
            guard let incoming = spis.first else { return .failure(ValueError("expected an SPI")) }
            return .success(.pair(incoming, spis.last ?? incoming))
        case .tcpMSS:
            let expected = "expected clamp-to-pmtu, off, or an MSS from \(TCPMSSClamp.smallest) to 65495"
            if let word = resolve(text, ["clamp-to-pmtu", "off"]) { return .success(.choice(word)) }
            guard let n = Int(text), text.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                return .failure(ValueError(expected))
            }
            guard TCPMSSClamp(String(n)) != nil else {
                return .failure(ValueError(expected,
                                           nearest: .choice(String(min(max(n, Int(TCPMSSClamp.smallest)), 65_495)))))
            }
            return .success(.choice(String(n)))
        case .identity:
            guard let id = IKEIdentity(text) else {
                return .failure(ValueError("expected auto, address:IP, fqdn:NAME, user-fqdn:USER@NAME or key-id:TEXT"))
            }
            return .success(.text(id.description))
        case .ipProtocol:
            if let n = Int(text), (0...255).contains(n) { return .success(.choice(String(n))) }
            guard let v = resolve(text, Array(protocolNames.keys).sorted()) else {
                return .failure(ValueError("expected a protocol name (all, tcp, udp, icmp, ...) or number 0-255"))
            }
            return .success(.choice(v))
        }
    }

    /// IP protocol number for a stored protocol value; nil for `all`.
    public static func protocolNumber(_ value: String) -> UInt8? {
        if let n = UInt8(value) { return n }
        guard let n = protocolNames[value], n >= 0 else { return nil }
        return UInt8(n)
    }

    public static func parseSPI(_ s: String) -> UInt32? {
        if s.hasPrefix("0x") || s.hasPrefix("0X") { return UInt32(s.dropFirst(2), radix: 16) }
        return UInt32(s)
    }

    static func isName(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 64 && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }

    /// An exact option, or an unambiguous prefix of one.
    static func resolve(_ text: String, _ options: [String]) -> String? {
        if options.contains(text) { return text }
        let m = options.filter { $0.hasPrefix(text) }
        return m.count == 1 && !text.isEmpty ? m[0] : nil
    }

    /// How a value prints (`print` quotes strings).
    public static func format(_ value: Value, _ spec: PropertySpec, showSensitive: Bool) -> String {
        if spec.sensitive && !showSensitive {
            if case .pair(let a, let b) = value, a.isEmpty && b.isEmpty { return "\"\"" }
            if case .text(let s) = value, s.isEmpty { return "\"\"" }
            return "<hidden>"
        }
        switch value {
        case .text(let s):
            if case .secretText = spec.type { return quote(s) }
            return s
        case .integer(let n): return String(n)
        case .boolean(let b): return b ? "yes" : "no"
        case .duration(let d): return Duration.format(d)
        case .address(let a): return a.description
        case .ip(let ip): return ip.description
        case .choice(let s): return s
        case .choices(let list): return list.joined(separator: ",")
        case .pair(let a, let b):
            if case .hexKeyPair = spec.type { return quote(a == b ? a : "\(a)/\(b)") }
            return a == b ? a : "\(a)/\(b)"
        }
    }

    /// RouterOS string quoting with escapes, so printed and exported values parse back.
    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "$": out += "\\$"
            case "?": out += "\\?"
            default:
                if u.value < 0x20 || u.value == 0x7f {
                    let h = String(u.value, radix: 16, uppercase: true)
                    out += "\\" + (h.count == 1 ? "0" + h : h)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
