/// Why a datagram was refused. Each case is its own counter and audit reason.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer than the 12 header bytes arrived.
    case truncatedHeader(received: Int)
    case wrongVersion(UInt16)
    case unknownType(UInt16)
    /// The body, or a field inside it, ends before its declared end.
    case shortBody(needed: Int, remaining: Int)
    /// A declared length (of the body or of a field) is larger than its limit.
    case overlongLength(declared: Int, limit: Int)
    case invalidEnum(field: String, value: UInt32)
    /// Bytes left over after the last field, or after the declared body.
    case trailingBytes(count: Int)
    case invalidText(field: String)
    /// A keyed list (one entry per key, keys ascending) whose key repeats or goes backwards: the
    /// encoder never writes one, so decoding it would not be canonical.
    case unorderedKey(field: String)
    /// Well-formed, but this channel does not accept this type from this sender.
    case notAllowed(type: MessageType, from: Role, to: Role)
    /// The socket layer cut the datagram or its descriptors.
    case truncatedDatagram
    /// A page out of order, of another message than the one being assembled, or inconsistent
    /// with it: the message being assembled is dropped with it.
    case unexpectedPage(String)

    /// A stable short name, used for counters and audit MSGIDs.
    public var kind: String {
        switch self {
        case .truncatedHeader: return "truncated-header"
        case .wrongVersion: return "wrong-version"
        case .unknownType: return "unknown-type"
        case .shortBody: return "short-body"
        case .overlongLength: return "overlong-length"
        case .invalidEnum: return "invalid-enum"
        case .trailingBytes: return "trailing-bytes"
        case .invalidText: return "invalid-text"
        case .unorderedKey: return "unordered-key"
        case .notAllowed: return "not-allowed"
        case .truncatedDatagram: return "truncated-datagram"
        case .unexpectedPage: return "unexpected-page"
        }
    }

    public var description: String {
        switch self {
        case .truncatedHeader(let n): return "truncated header (\(n) of \(FrameHeader.size) bytes)"
        case .wrongVersion(let v): return "wrong protocol version \(v) (expected \(FrameHeader.currentVersion))"
        case .unknownType(let t): return "unknown message type \(t)"
        case .shortBody(let need, let have): return "short body (needed \(need) bytes, \(have) remain)"
        case .overlongLength(let d, let l): return "over-long length \(d) (limit \(l))"
        case .invalidEnum(let f, let v): return "invalid value \(v) for \(f)"
        case .trailingBytes(let n): return "\(n) trailing bytes"
        case .invalidText(let f): return "invalid UTF-8 in \(f)"
        case .unorderedKey(let f): return "\(f) repeated or out of order"
        case .notAllowed(let t, let from, let to): return "\(t) is not accepted by \(to) from \(from)"
        case .truncatedDatagram: return "datagram or its descriptors were truncated"
        case .unexpectedPage(let why): return "unexpected page: \(why)"
        }
    }
}
