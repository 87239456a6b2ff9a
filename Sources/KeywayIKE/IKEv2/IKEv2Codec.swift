/// RFC 7296 section 3: the IKEv2 header and payloads, decoded strictly before anything uses them.
/// The SK payload (and RFC 7383's SKF) must be the last one; what it carries is decoded with
/// `IKEv2Codec.decodeChain` once it has been authenticated and decrypted.
public struct IKEv2Header: Equatable, Sendable {
    public static let size = 28
    public static let initiatorFlag: UInt8 = 0x08, versionFlag: UInt8 = 0x10, responseFlag: UInt8 = 0x20

    public var initiatorSPI: UInt64
    public var responderSPI: UInt64
    public var nextPayload: UInt8
    public var exchange: UInt8
    public var flags: UInt8
    public var messageID: UInt32
    public var length: UInt32

    public init(initiatorSPI: UInt64, responderSPI: UInt64, nextPayload: UInt8, exchange: UInt8, flags: UInt8,
                messageID: UInt32, length: UInt32 = 0) {
        self.initiatorSPI = initiatorSPI; self.responderSPI = responderSPI; self.nextPayload = nextPayload
        self.exchange = exchange; self.flags = flags; self.messageID = messageID; self.length = length
    }

    public var isResponse: Bool { flags & Self.responseFlag != 0 }
    /// Sent by the original initiator of the IKE SA.
    public var fromOriginalInitiator: Bool { flags & Self.initiatorFlag != 0 }

    /// The major version a datagram declares (1 or 2), or nil when it is too short to say.
    public static func majorVersion(_ datagram: [UInt8]) -> UInt8? {
        datagram.count > 17 ? datagram[17] >> 4 : nil
    }

    /// Parses and checks the header against the datagram it came in.
    public static func parse(_ datagram: [UInt8]) throws(ISAKMPError) -> IKEv2Header {
        var r = ByteReader(datagram)
        let spiI = try r.u64("header"), spiR = try r.u64("header")
        let next = try r.u8("header"), version = try r.u8("header")
        guard version >> 4 == 2 else { throw .badIKEv2Version(version) }
        let exchange = try r.u8("header"), flags = try r.u8("header")
        let id = try r.u32("header"), length = try r.u32("header")
        guard Int(length) == datagram.count else {
            throw .lengthMismatch(declared: Int(length), actual: datagram.count)
        }
        return IKEv2Header(initiatorSPI: spiI, responderSPI: spiR, nextPayload: next, exchange: exchange, flags: flags,
                           messageID: id, length: length)
    }

    public func encoded(totalLength: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.put64(initiatorSPI); out.put64(responderSPI)
        out += [nextPayload, 0x20, exchange, flags]
        out.put32(messageID)
        out.put32(UInt32(truncatingIfNeeded: totalLength))
        return out
    }
}

public struct IKEv2Transform: Equatable, Sendable {
    public var type: UInt8
    public var id: UInt16
    public var attributes: [Attribute]

    public init(type: UInt8, id: UInt16, keyLength: UInt16? = nil) {
        self.type = type; self.id = id
        attributes = keyLength.map { [Attribute(basic: IKEv2AttributeType.keyLength, $0)] } ?? []
    }

    public init(type: UInt8, id: UInt16, attributes: [Attribute]) {
        self.type = type; self.id = id; self.attributes = attributes
    }

    public var keyLength: UInt16? {
        attributes.first { $0.type == IKEv2AttributeType.keyLength }?.integer.map { UInt16(truncatingIfNeeded: $0) }
    }

    /// RFC 7296 3.3.6: a transform with an attribute we do not understand is not acceptable.
    public var onlyKnownAttributes: Bool {
        attributes.allSatisfy { $0.type == IKEv2AttributeType.keyLength && $0.basic }
    }
}

public struct IKEv2Proposal: Equatable, Sendable {
    public var number: UInt8
    public var protocolID: UInt8
    public var spi: [UInt8]
    public var transforms: [IKEv2Transform]
    public init(number: UInt8, protocolID: UInt8, spi: [UInt8], transforms: [IKEv2Transform]) {
        self.number = number; self.protocolID = protocolID; self.spi = spi; self.transforms = transforms
    }
}

/// One traffic selector (RFC 7296 3.13.1). IPv4 ranges have 4-byte addresses; IPv6 ones (16 bytes)
/// are decoded and ignored by the engine.
public struct IKEv2TrafficSelector: Equatable, Sendable {
    public var type: UInt8
    public var ipProtocol: UInt8
    public var startPort: UInt16, endPort: UInt16
    public var start: [UInt8], end: [UInt8]

    public init(type: UInt8 = IKEv2TSType.ipv4Range, ipProtocol: UInt8, startPort: UInt16, endPort: UInt16,
                start: [UInt8], end: [UInt8]) {
        self.type = type; self.ipProtocol = ipProtocol; self.startPort = startPort; self.endPort = endPort
        self.start = start; self.end = end
    }
}

public enum IKEv2Payload: Equatable, Sendable {
    case sa([IKEv2Proposal])
    case keyExchange(group: UInt16, data: [UInt8])
    case identification(initiator: Bool, type: UInt8, data: [UInt8])
    case certificate(encoding: UInt8, data: [UInt8])
    case certificateRequest(encoding: UInt8, data: [UInt8])
    case authentication(method: UInt8, data: [UInt8])
    case nonce([UInt8])
    case notify(protocolID: UInt8, type: UInt16, spi: [UInt8], data: [UInt8])
    case delete(protocolID: UInt8, spiSize: UInt8, spis: [[UInt8]])
    case vendorID([UInt8])
    case trafficSelectors(initiator: Bool, [IKEv2TrafficSelector])
    /// A payload the engine does not use (CP, EAP, unknown types without the critical bit).
    case other(type: UInt8, critical: Bool, data: [UInt8])

    public var typeNumber: UInt8 {
        switch self {
        case .sa: return IKEv2PayloadType.sa
        case .keyExchange: return IKEv2PayloadType.keyExchange
        case .identification(let i, _, _): return i ? IKEv2PayloadType.idInitiator : IKEv2PayloadType.idResponder
        case .certificate: return IKEv2PayloadType.certificate
        case .certificateRequest: return IKEv2PayloadType.certificateRequest
        case .authentication: return IKEv2PayloadType.authentication
        case .nonce: return IKEv2PayloadType.nonce
        case .notify: return IKEv2PayloadType.notify
        case .delete: return IKEv2PayloadType.delete
        case .vendorID: return IKEv2PayloadType.vendorID
        case .trafficSelectors(let i, _): return i ? IKEv2PayloadType.tsInitiator : IKEv2PayloadType.tsResponder
        case .other(let t, _, _): return t
        }
    }
}

/// An SK or SKF payload as received: checked for place and size, not yet authenticated.
public struct IKEv2Encrypted: Equatable, Sendable {
    /// The first payload inside (for SKF: meaningful only in fragment 1).
    public var firstInner: UInt8
    /// RFC 7383: (fragment number, total fragments), nil for a whole SK payload.
    public var fragment: (number: UInt16, total: UInt16)?
    /// Where the IV starts in the datagram: everything before it is the AEAD's associated data.
    public var ivOffset: Int

    public static func == (a: Self, b: Self) -> Bool {
        a.firstInner == b.firstInner && a.ivOffset == b.ivOffset && a.fragment?.number == b.fragment?.number
            && a.fragment?.total == b.fragment?.total
    }
}

public enum IKEv2Codec {
    /// No message Keyway handles needs more; a longer chain is an attack or a bug.
    static let maximumPayloads = 64
    static let maximumProposals = 64
    static let maximumTransforms = 64
    static let maximumSelectors = 32
    /// RFC 7383: fragment numbers and totals above this are refused (a certificate chain fits).
    public static let maximumFragments: UInt16 = 32

    /// A parsed payload with its body exactly as received (AUTH is computed over exact bytes).
    public struct Parsed: Equatable, Sendable {
        public var payload: IKEv2Payload
        public var body: [UInt8]
    }

    public struct Message: Equatable, Sendable {
        public var header: IKEv2Header
        public var payloads: [Parsed]
        public var encrypted: IKEv2Encrypted?
    }

    /// Parses a whole datagram: header, the plaintext payloads, and where an SK/SKF payload is.
    public static func decodeMessage(_ datagram: [UInt8]) throws(ISAKMPError) -> Message {
        let header = try IKEv2Header.parse(datagram)
        let (payloads, encrypted) = try decodeChain(first: header.nextPayload, datagram, from: IKEv2Header.size,
                                                    allowEncrypted: true)
        return Message(header: header, payloads: payloads, encrypted: encrypted)
    }

    /// The payloads of a decrypted SK body (padding already removed): no SK inside.
    public static func decodeInner(first: UInt8, body: [UInt8]) throws(ISAKMPError) -> [Parsed] {
        try decodeChain(first: first, body, from: 0, allowEncrypted: false).payloads
    }

    static func decodeChain(first: UInt8, _ bytes: [UInt8], from: Int,
                            allowEncrypted: Bool) throws(ISAKMPError)
        -> (payloads: [Parsed], encrypted: IKEv2Encrypted?) {
        var r = ByteReader(bytes, from: from)
        var next = first
        var out: [Parsed] = []
        while next != 0 {
            guard out.count < maximumPayloads else { throw .tooManyPayloads }
            let type = next
            next = try r.u8("payload header")
            let critical = try r.u8("payload header") & 0x80 != 0
            let length = Int(try r.u16("payload header"))
            guard length >= 4, length - 4 <= r.remaining else { throw .badPayloadLength(type: type, length: length) }
            if type == IKEv2PayloadType.encrypted || type == IKEv2PayloadType.encryptedFragment {
                // The SK payload covers the rest of the message, whose last bytes are the ICV.
                guard allowEncrypted, length - 4 == r.remaining else { throw .misplacedEncryptedPayload }
                var fragment: (UInt16, UInt16)?
                if type == IKEv2PayloadType.encryptedFragment {
                    let number = try r.u16("SKF"), total = try r.u16("SKF")
                    guard number >= 1, number <= total, total <= maximumFragments else {
                        throw .countMismatch(what: "fragments", declared: Int(total), found: Int(number))
                    }
                    fragment = (number, total)
                }
                return (out, IKEv2Encrypted(firstInner: next, fragment: fragment, ivOffset: r.offset))
            }
            let data = try r.take(length - 4, "payload \(type)")
            out.append(Parsed(payload: try payload(type, critical: critical, data), body: data))
        }
        if r.remaining > 0 { throw .trailingBytes(r.remaining) }
        return (out, nil)
    }

    static func payload(_ type: UInt8, critical: Bool, _ data: [UInt8]) throws(ISAKMPError) -> IKEv2Payload {
        var r = ByteReader(data)
        switch type {
        case IKEv2PayloadType.sa: return .sa(try proposals(&r))
        case IKEv2PayloadType.keyExchange:
            let group = try r.u16("KE")
            _ = try r.u16("KE")
            return .keyExchange(group: group, data: try r.rest("KE"))
        case IKEv2PayloadType.idInitiator, IKEv2PayloadType.idResponder:
            let idType = try r.u8("ID")
            _ = try r.take(3, "ID")
            return .identification(initiator: type == IKEv2PayloadType.idInitiator, type: idType,
                                   data: try r.rest("ID"))
        case IKEv2PayloadType.certificate: return .certificate(encoding: try r.u8("CERT"), data: try r.rest("CERT"))
        case IKEv2PayloadType.certificateRequest:
            return .certificateRequest(encoding: try r.u8("CERTREQ"), data: try r.rest("CERTREQ"))
        case IKEv2PayloadType.authentication:
            let method = try r.u8("AUTH")
            _ = try r.take(3, "AUTH")
            return .authentication(method: method, data: try r.rest("AUTH"))
        case IKEv2PayloadType.nonce: return .nonce(data)
        case IKEv2PayloadType.notify:
            let proto = try r.u8("N"), spiSize = try r.u8("N"), notifyType = try r.u16("N")
            let spi = try r.take(Int(spiSize), "N SPI")
            return .notify(protocolID: proto, type: notifyType, spi: spi, data: try r.rest("N"))
        case IKEv2PayloadType.delete:
            let proto = try r.u8("D"), spiSize = try r.u8("D"), count = Int(try r.u16("D"))
            guard Int(spiSize) * count == r.remaining, spiSize > 0 || count == 0 else {
                throw .countMismatch(what: "delete SPIs", declared: count,
                                     found: spiSize == 0 ? 0 : r.remaining / Int(spiSize))
            }
            var spis: [[UInt8]] = []
            for _ in 0..<count { spis.append(try r.take(Int(spiSize), "D SPI")) }
            return .delete(protocolID: proto, spiSize: spiSize, spis: spis)
        case IKEv2PayloadType.vendorID: return .vendorID(data)
        case IKEv2PayloadType.tsInitiator, IKEv2PayloadType.tsResponder:
            let count = Int(try r.u8("TS"))
            _ = try r.take(3, "TS")
            guard count <= maximumSelectors else { throw .tooManyPayloads }
            var selectors: [IKEv2TrafficSelector] = []
            for _ in 0..<count {
                let tsType = try r.u8("TS"), proto = try r.u8("TS"), length = Int(try r.u16("TS"))
                let addressLength: Int
                switch tsType {
                case IKEv2TSType.ipv4Range: addressLength = 4
                case IKEv2TSType.ipv6Range: addressLength = 16
                default: throw .unexpectedPayload(tsType, inside: "TS")
                }
                guard length == 8 + 2 * addressLength else { throw .badPayloadLength(type: type, length: length) }
                let startPort = try r.u16("TS"), endPort = try r.u16("TS")
                let start = try r.take(addressLength, "TS"), end = try r.take(addressLength, "TS")
                selectors.append(IKEv2TrafficSelector(type: tsType, ipProtocol: proto, startPort: startPort,
                                                      endPort: endPort, start: start, end: end))
            }
            guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
            return .trafficSelectors(initiator: type == IKEv2PayloadType.tsInitiator, selectors)
        case IKEv2PayloadType.configuration, IKEv2PayloadType.eap:
            return .other(type: type, critical: critical, data: data)
        default:
            // RFC 7296 2.5: an unknown payload is skipped, unless it is marked critical.
            guard !critical else { throw .unsupportedCriticalPayload(type) }
            return .other(type: type, critical: false, data: data)
        }
    }

    static func proposals(_ r: inout ByteReader) throws(ISAKMPError) -> [IKEv2Proposal] {
        var proposals: [IKEv2Proposal] = []
        var next: UInt8 = r.remaining > 0 ? 2 : 0
        while next != 0 {
            guard proposals.count < maximumProposals else { throw .tooManyPayloads }
            guard next == 2 else { throw .unexpectedPayload(next, inside: "SA") }
            next = try r.u8("proposal")
            _ = try r.u8("proposal")
            let length = Int(try r.u16("proposal"))
            guard length >= 8, length - 4 <= r.remaining else { throw .badPayloadLength(type: 2, length: length) }
            var p = ByteReader(try r.take(length - 4, "proposal"))
            let number = try p.u8("proposal"), proto = try p.u8("proposal")
            let spiSize = try p.u8("proposal"), count = Int(try p.u8("proposal"))
            let spi = try p.take(Int(spiSize), "proposal SPI")
            guard count <= maximumTransforms else { throw .tooManyPayloads }
            var transforms: [IKEv2Transform] = []
            var tnext: UInt8 = count > 0 ? 3 : 0
            while tnext != 0 {
                guard transforms.count < count else {
                    throw .countMismatch(what: "transforms", declared: count, found: transforms.count + 1)
                }
                guard tnext == 3 else { throw .unexpectedPayload(tnext, inside: "proposal") }
                tnext = try p.u8("transform")
                _ = try p.u8("transform")
                let tlen = Int(try p.u16("transform"))
                guard tlen >= 8, tlen - 4 <= p.remaining else { throw .badPayloadLength(type: 3, length: tlen) }
                var t = ByteReader(try p.take(tlen - 4, "transform"))
                let ttype = try t.u8("transform")
                _ = try t.u8("transform")
                let tid = try t.u16("transform")
                transforms.append(IKEv2Transform(type: ttype, id: tid, attributes: try ISAKMPCodec.attributes(&t)))
            }
            guard transforms.count == count else {
                throw .countMismatch(what: "transforms", declared: count, found: transforms.count)
            }
            guard p.remaining == 0 else { throw .trailingBytes(p.remaining) }
            proposals.append(IKEv2Proposal(number: number, protocolID: proto, spi: spi, transforms: transforms))
        }
        guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
        return proposals
    }

    /// Encodes a payload chain; returns the first payload's type and the body. `last`: the type
    /// the last payload's header names next (an SK payload after plaintext ones; usually none).
    public static func encode(_ payloads: [IKEv2Payload], last: UInt8 = 0) -> (first: UInt8, body: [UInt8]) {
        var body: [UInt8] = []
        for (i, p) in payloads.enumerated() {
            let data = encodeData(p)
            body.append(i + 1 < payloads.count ? payloads[i + 1].typeNumber : last)
            if case .other(_, let critical, _) = p, critical { body.append(0x80) } else { body.append(0) }
            body.put16(UInt16(truncatingIfNeeded: data.count + 4))
            body += data
        }
        return (payloads.first?.typeNumber ?? last, body)
    }

    public static func encodeData(_ p: IKEv2Payload) -> [UInt8] {
        var d: [UInt8] = []
        switch p {
        case .sa(let proposals):
            for (i, prop) in proposals.enumerated() {
                var pd: [UInt8] = [prop.number, prop.protocolID, UInt8(truncatingIfNeeded: prop.spi.count),
                                   UInt8(truncatingIfNeeded: prop.transforms.count)] + prop.spi
                for (j, t) in prop.transforms.enumerated() {
                    var td: [UInt8] = [t.type, 0]
                    td.put16(t.id)
                    td += ISAKMPCodec.encodeAttributes(t.attributes)
                    pd.append(j + 1 < prop.transforms.count ? 3 : 0); pd.append(0)
                    pd.put16(UInt16(truncatingIfNeeded: td.count + 4)); pd += td
                }
                d.append(i + 1 < proposals.count ? 2 : 0); d.append(0)
                d.put16(UInt16(truncatingIfNeeded: pd.count + 4)); d += pd
            }
        case .keyExchange(let group, let data):
            d.put16(group); d += [0, 0]; d += data
        case .identification(_, let type, let data): d = [type, 0, 0, 0] + data
        case .certificate(let enc, let data), .certificateRequest(let enc, let data): d = [enc] + data
        case .authentication(let method, let data): d = [method, 0, 0, 0] + data
        case .nonce(let x), .vendorID(let x): d = x
        case .notify(let proto, let type, let spi, let data):
            d = [proto, UInt8(truncatingIfNeeded: spi.count)]; d.put16(type); d += spi + data
        case .delete(let proto, let spiSize, let spis):
            d = [proto, spiSize]; d.put16(UInt16(truncatingIfNeeded: spis.count)); for s in spis { d += s }
        case .trafficSelectors(_, let selectors):
            d = [UInt8(truncatingIfNeeded: selectors.count), 0, 0, 0]
            for ts in selectors {
                d += [ts.type, ts.ipProtocol]; d.put16(UInt16(truncatingIfNeeded: 8 + ts.start.count + ts.end.count))
                d.put16(ts.startPort); d.put16(ts.endPort); d += ts.start + ts.end
            }
        case .other(_, _, let data): d = data
        }
        return d
    }
}

extension ByteReader {
    mutating func u64(_ what: String) throws(ISAKMPError) -> UInt64 {
        try take(8, what).reduce(0) { $0 << 8 | UInt64($1) }
    }
    mutating func rest(_ what: String) throws(ISAKMPError) -> [UInt8] { try take(remaining, what) }
}

extension Array where Element == UInt8 {
    mutating func put64(_ v: UInt64) {
        for s in stride(from: 56, through: 0, by: -8) { append(UInt8((v >> UInt64(s)) & 0xff)) }
    }
}

extension UInt64 {
    var bytes: [UInt8] { var out: [UInt8] = []; out.put64(self); return out }
    init(bytes b: [UInt8]) { self = b.prefix(8).reduce(0) { $0 << 8 | UInt64($1) } }
}
