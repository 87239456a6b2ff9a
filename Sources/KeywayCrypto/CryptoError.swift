public enum CryptoError: Error, Equatable, Sendable, CustomStringConvertible {
    case wrongKeyLength(algorithm: String, expected: Int, got: Int)
    case unavailable(algorithm: String, reason: String)
    case badPublicValue(group: String)
    case badPublicLength(group: String, expected: Int, got: Int)
    case badPrivateValue(group: String)
    case authenticationFailed
    case badLength(String)
    case badKey(String)
    case badCertificate(String)
    case libcrypto(String)

    public var description: String {
        switch self {
        case .wrongKeyLength(let a, let e, let g): return "\(a) needs a \(e)-byte key, got \(g) bytes"
        case .unavailable(let a, let r): return "\(a) is not available: \(r)"
        case .badPublicValue(let g): return "peer's \(g) public value is invalid"
        case .badPublicLength(let g, let e, let got): return "peer's \(g) public value has \(got) bytes, expected \(e)"
        case .badPrivateValue(let g): return "private value out of range for \(g)"
        case .authenticationFailed: return "integrity check failed"
        case .badLength(let s): return s
        case .badKey(let s): return "private key: \(s)"
        case .badCertificate(let s): return "certificate: \(s)"
        case .libcrypto(let s): return "libcrypto: \(s)"
        }
    }
}
