/// `/ip ipsec peer my-id` and `remote-id` (RouterOS v6.43+): the identity IKEv2 sends or expects.
/// `auto` means the address (ours for my-id; for remote-id any identity is accepted, as on
/// RouterOS: the pre-shared key or the pinned certificate is what authenticates).
public enum IKEIdentity: Equatable, Hashable, Sendable, CustomStringConvertible {
    case auto
    case address(IPv4Address)
    case fqdn(String)
    case userFQDN(String)
    case keyID([UInt8])

    /// Identities longer than this are refused (an ID payload needs no more).
    public static let maximumLength = 255

    /// Parses `auto`, `address:192.0.2.1`, `fqdn:vpn.example.com`, `user-fqdn:a@example.com` or
    /// `key-id:TEXT` (`key-id:0x...` for bytes); nil for anything else.
    public init?(_ text: String) {
        if text == "auto" { self = .auto; return }
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let kind = text[..<colon], value = String(text[text.index(after: colon)...])
        guard !value.isEmpty, value.utf8.count <= Self.maximumLength,
              value.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else { return nil }
        switch kind {
        case "address":
            guard let ip = IPv4Address(Substring(value)) else { return nil }
            self = .address(ip)
        case "fqdn":
            guard value.allSatisfy({ $0.isLetter || $0.isNumber || "-.".contains($0) }) else { return nil }
            self = .fqdn(value)
        case "user-fqdn":
            guard value.contains("@") else { return nil }
            self = .userFQDN(value)
        case "key-id":
            if value.hasPrefix("0x") {
                guard let bytes = Hex.decode(value), !bytes.isEmpty else { return nil }
                self = .keyID(bytes)
            } else {
                self = .keyID(Array(value.utf8))
            }
        default:
            return nil
        }
    }

    public var description: String {
        switch self {
        case .auto: return "auto"
        case .address(let a): return "address:\(a)"
        case .fqdn(let f): return "fqdn:\(f)"
        case .userFQDN(let u): return "user-fqdn:\(u)"
        case .keyID(let k):
            if let text = String(validating: k, as: UTF8.self), !text.hasPrefix("0x"),
               text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) {
                return "key-id:\(text)"
            }
            return "key-id:0x\(Hex.encode(k))"
        }
    }
}
