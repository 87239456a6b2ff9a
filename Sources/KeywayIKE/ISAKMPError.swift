/// Why an ISAKMP message was refused. Each is a distinct, typed reason (never a crash).
public enum ISAKMPError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(what: String, needed: Int, available: Int)
    case badVersion(UInt8)
    case lengthMismatch(declared: Int, actual: Int)
    case badPayloadLength(type: UInt8, length: Int)
    case reservedNotZero(what: String)
    case unknownPayload(UInt8)
    case unexpectedPayload(UInt8, inside: String)
    case countMismatch(what: String, declared: Int, found: Int)
    case badAttribute(type: UInt16, length: Int)
    case trailingBytes(Int)
    case tooManyPayloads
    /// IKEv2: a payload type we do not know, with the critical bit set (UNSUPPORTED_CRITICAL_PAYLOAD).
    case unsupportedCriticalPayload(UInt8)
    /// IKEv2: an SK or SKF payload that is not the last one, or inside another.
    case misplacedEncryptedPayload
    case badIKEv2Version(UInt8)

    public var description: String {
        switch self {
        case .truncated(let w, let n, let a): return "truncated \(w): needs \(n) bytes, \(a) present"
        case .badVersion(let v): return "unsupported ISAKMP version 0x\(String(v, radix: 16)) (1.0 only)"
        case .lengthMismatch(let d, let a): return "header says \(d) bytes, datagram has \(a)"
        case .badPayloadLength(let t, let l): return "payload \(t) has impossible length \(l)"
        case .reservedNotZero(let w): return "reserved field not zero in \(w)"
        case .unknownPayload(let t): return "unknown payload type \(t)"
        case .unexpectedPayload(let t, let inside): return "payload \(t) not allowed inside \(inside)"
        case .countMismatch(let w, let d, let f): return "\(w): \(d) declared, \(f) found"
        case .badAttribute(let t, let l): return "attribute \(t) with bad length \(l)"
        case .trailingBytes(let n): return "\(n) bytes after the last payload"
        case .tooManyPayloads: return "too many payloads"
        case .unsupportedCriticalPayload(let t): return "unsupported critical payload \(t)"
        case .misplacedEncryptedPayload: return "an encrypted payload that is not the last one"
        case .badIKEv2Version(let v): return "unsupported IKE version 0x\(String(v, radix: 16)) (2.x only)"
        }
    }
}

/// Big-endian reads with bounds checks.
struct ByteReader {
    let bytes: [UInt8]
    var offset: Int
    let end: Int

    init(_ bytes: [UInt8], from: Int = 0, to: Int? = nil) {
        self.bytes = bytes
        offset = from
        end = min(to ?? bytes.count, bytes.count)
    }

    var remaining: Int { end - offset }

    mutating func take(_ n: Int, _ what: String) throws(ISAKMPError) -> [UInt8] {
        guard n >= 0, n <= remaining else { throw .truncated(what: what, needed: n, available: remaining) }
        defer { offset += n }
        return Array(bytes[offset..<(offset + n)])
    }

    mutating func u8(_ what: String) throws(ISAKMPError) -> UInt8 { try take(1, what)[0] }
    mutating func u16(_ what: String) throws(ISAKMPError) -> UInt16 {
        try take(2, what).reduce(0) { $0 << 8 | UInt16($1) }
    }
    mutating func u32(_ what: String) throws(ISAKMPError) -> UInt32 {
        try take(4, what).reduce(0) { $0 << 8 | UInt32($1) }
    }
}

extension Array where Element == UInt8 {
    mutating func put16(_ v: UInt16) { append(UInt8(v >> 8)); append(UInt8(v & 0xff)) }
    mutating func put32(_ v: UInt32) { for s in [24, 16, 8, 0] { append(UInt8((v >> UInt32(s)) & 0xff)) } }
}
