/// RFC 2408 message header (28 bytes).
public struct ISAKMPHeader: Equatable, Sendable {
    public static let size = 28
    public var initiatorCookie: [UInt8]
    public var responderCookie: [UInt8]
    public var nextPayload: UInt8
    public var exchangeType: UInt8
    public var flags: UInt8
    public var messageID: UInt32
    public var length: UInt32

    public static let encryptedFlag: UInt8 = 1, commitFlag: UInt8 = 2, authOnlyFlag: UInt8 = 4

    public init(initiatorCookie: [UInt8], responderCookie: [UInt8], nextPayload: UInt8, exchangeType: UInt8,
                flags: UInt8,
                messageID: UInt32, length: UInt32 = 0) {
        self.initiatorCookie = initiatorCookie; self.responderCookie = responderCookie; self.nextPayload = nextPayload
        self.exchangeType = exchangeType; self.flags = flags; self.messageID = messageID; self.length = length
    }

    /// Parses and checks the header against the datagram it came in.
    public static func parse(_ datagram: [UInt8]) throws(ISAKMPError) -> ISAKMPHeader {
        var r = ByteReader(datagram)
        let ic = try r.take(8, "header"), rc = try r.take(8, "header")
        let next = try r.u8("header"), version = try r.u8("header")
        guard version == 0x10 else { throw .badVersion(version) }
        let exchange = try r.u8("header"), flags = try r.u8("header")
        let id = try r.u32("header"), length = try r.u32("header")
        guard Int(length) == datagram.count else {
            throw .lengthMismatch(declared: Int(length), actual: datagram.count)
        }
        return ISAKMPHeader(initiatorCookie: ic, responderCookie: rc, nextPayload: next, exchangeType: exchange,
                            flags: flags,
                            messageID: id, length: length)
    }

    public func encoded(bodyLength: Int) -> [UInt8] {
        var out = initiatorCookie + responderCookie
        out += [nextPayload, 0x10, exchangeType, flags]
        out.put32(messageID)
        out.put32(UInt32(ISAKMPHeader.size + bodyLength))
        return out
    }
}

/// Data attributes (RFC 2408 3.3): basic (TV, AF bit set) or variable (TLV).
public struct Attribute: Equatable, Sendable {
    public var type: UInt16
    public var value: [UInt8]
    public var basic: Bool

    public init(basic type: UInt16, _ value: UInt16) {
        self.type = type; self.value = [UInt8(value >> 8), UInt8(value & 0xff)]; basic = true
    }
    public init(variable type: UInt16, _ value: [UInt8]) { self.type = type; self.value = value; basic = false }

    public var integer: UInt64? {
        guard !value.isEmpty, value.count <= 8 else { return nil }
        return value.reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Variable attributes longer than this are refused (no IKEv1 attribute needs more).
    static let maximumLength = 256
}

public struct Transform: Equatable, Sendable {
    public var number: UInt8
    public var id: UInt8
    public var attributes: [Attribute]
    public init(number: UInt8, id: UInt8, attributes: [Attribute]) {
        self.number = number; self.id = id; self.attributes = attributes
    }
}

public struct Proposal: Equatable, Sendable {
    public var number: UInt8
    public var protocolID: UInt8
    public var spi: [UInt8]
    public var transforms: [Transform]
    public init(number: UInt8, protocolID: UInt8, spi: [UInt8], transforms: [Transform]) {
        self.number = number; self.protocolID = protocolID; self.spi = spi; self.transforms = transforms
    }
}

/// The payloads IKEv1 uses. Payload type numbers from RFC 2408 3.1 and RFC 3947 (NAT-D 20,
/// NAT-OA 21; the drafts' 130 and 131 are read as the same).
public enum Payload: Equatable, Sendable {
    case sa(doi: UInt32, situation: UInt32, proposals: [Proposal])
    case keyExchange([UInt8])
    case identification(type: UInt8, protocolID: UInt8, port: UInt16, data: [UInt8])
    case certificate(encoding: UInt8, data: [UInt8])
    case certificateRequest(type: UInt8, authority: [UInt8])
    case hash([UInt8])
    case signature([UInt8])
    case nonce([UInt8])
    case notification(doi: UInt32, protocolID: UInt8, type: UInt16, spi: [UInt8], data: [UInt8])
    case delete(doi: UInt32, protocolID: UInt8, spiSize: UInt8, spis: [[UInt8]])
    case vendorID([UInt8])
    case natDiscovery([UInt8])
    case natOriginalAddress(type: UInt8, address: [UInt8])

    public var typeNumber: UInt8 {
        switch self {
        case .sa: return 1
        case .keyExchange: return 4
        case .identification: return 5
        case .certificate: return 6
        case .certificateRequest: return 7
        case .hash: return 8
        case .signature: return 9
        case .nonce: return 10
        case .notification: return 11
        case .delete: return 12
        case .vendorID: return 13
        case .natDiscovery: return 20
        case .natOriginalAddress: return 21
        }
    }
}

public enum ISAKMPCodec {
    /// No IKEv1 message needs more; a longer chain is an attack or a bug.
    static let maximumPayloads = 32

    /// Parses a payload chain starting with `first`. `allowPadding`: after the last payload of a
    /// decrypted body come padding bytes (any value: strongSwan pads with zeros, without a length byte).
    public static func decode(first: UInt8, body: [UInt8], allowPadding: Bool) throws(ISAKMPError) -> [Payload] {
        try decodeChain(first: first, body: body, allowPadding: allowPadding).map(\.payload)
    }

    /// A parsed payload with its body as received (hashes are computed over exact bytes) and
    /// where it ends in the message body.
    public struct Parsed: Sendable {
        public var payload: Payload
        public var body: [UInt8]
        public var start: Int
        public var end: Int
    }

    public static func decodeChain(first: UInt8, body: [UInt8], allowPadding: Bool) throws(ISAKMPError) -> [Parsed] {
        var r = ByteReader(body)
        var next = first
        var out: [Parsed] = []
        while next != 0 {
            guard out.count < maximumPayloads else { throw .tooManyPayloads }
            let type = next
            let start = body.count - r.remaining
            next = try r.u8("payload header")
            guard try r.u8("payload header") == 0 else { throw .reservedNotZero(what: "payload \(type)") }
            let length = Int(try r.u16("payload header"))
            guard length >= 4, length - 4 <= r.remaining else { throw .badPayloadLength(type: type, length: length) }
            let data = try r.take(length - 4, "payload \(type)")
            out.append(Parsed(payload: try payload(type, data), body: data, start: start,
                              end: body.count - r.remaining))
        }
        if r.remaining > 0 && !allowPadding { throw .trailingBytes(r.remaining) }
        return out
    }

    static func payload(_ type: UInt8, _ data: [UInt8]) throws(ISAKMPError) -> Payload {
        var r = ByteReader(data)
        switch type {
        case 1:
            let doi = try r.u32("SA"), situation = try r.u32("SA")
            var proposals: [Proposal] = []
            var next: UInt8 = r.remaining > 0 ? 2 : 0
            while next != 0 {
                guard proposals.count < maximumPayloads else { throw .tooManyPayloads }
                guard next == 2 else { throw .unexpectedPayload(next, inside: "SA") }
                next = try r.u8("proposal")
                guard try r.u8("proposal") == 0 else { throw .reservedNotZero(what: "proposal") }
                let length = Int(try r.u16("proposal"))
                guard length >= 8, length - 4 <= r.remaining else { throw .badPayloadLength(type: 2, length: length) }
                var p = ByteReader(try r.take(length - 4, "proposal"))
                let number = try p.u8("proposal"), proto = try p.u8("proposal"), spiSize = try p.u8("proposal"),
                    count = try p.u8("proposal")
                let spi = try p.take(Int(spiSize), "proposal SPI")
                var transforms: [Transform] = []
                var tnext: UInt8 = count > 0 ? 3 : 0
                while tnext != 0 {
                    guard transforms.count < Int(count) else {
                        throw .countMismatch(what: "transforms", declared: Int(count), found: transforms.count + 1)
                    }
                    guard tnext == 3 else { throw .unexpectedPayload(tnext, inside: "proposal") }
                    tnext = try p.u8("transform")
                    guard try p.u8("transform") == 0 else { throw .reservedNotZero(what: "transform") }
                    let tlen = Int(try p.u16("transform"))
                    guard tlen >= 8, tlen - 4 <= p.remaining else { throw .badPayloadLength(type: 3, length: tlen) }
                    var t = ByteReader(try p.take(tlen - 4, "transform"))
                    let tnum = try t.u8("transform"), tid = try t.u8("transform")
                    guard try t.u16("transform") == 0 else { throw .reservedNotZero(what: "transform") }
                    transforms.append(Transform(number: tnum, id: tid, attributes: try attributes(&t)))
                }
                guard transforms.count == Int(count) else {
                    throw .countMismatch(what: "transforms", declared: Int(count), found: transforms.count)
                }
                guard p.remaining == 0 else { throw .trailingBytes(p.remaining) }
                proposals.append(Proposal(number: number, protocolID: proto, spi: spi, transforms: transforms))
            }
            guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
            return .sa(doi: doi, situation: situation, proposals: proposals)
        case 4: return .keyExchange(data)
        case 5:
            let idType = try r.u8("ID"), proto = try r.u8("ID"), port = try r.u16("ID")
            return .identification(type: idType, protocolID: proto, port: port, data: try r.take(r.remaining, "ID"))
        case 6: return .certificate(encoding: try r.u8("CERT"), data: try r.take(r.remaining, "CERT"))
        case 7: return .certificateRequest(type: try r.u8("CR"), authority: try r.take(r.remaining, "CR"))
        case 8: return .hash(data)
        case 9: return .signature(data)
        case 10: return .nonce(data)
        case 11:
            let doi = try r.u32("N"), proto = try r.u8("N"), spiSize = try r.u8("N"), type = try r.u16("N")
            let spi = try r.take(Int(spiSize), "N SPI")
            return .notification(doi: doi, protocolID: proto, type: type, spi: spi, data: try r.take(r.remaining, "N"))
        case 12:
            let doi = try r.u32("D"), proto = try r.u8("D"), spiSize = try r.u8("D"), count = Int(try r.u16("D"))
            guard Int(spiSize) * count == r.remaining else {
                throw .countMismatch(what: "delete SPIs", declared: count,
                                     found: spiSize == 0 ? 0 : r.remaining / Int(spiSize))
            }
            var spis: [[UInt8]] = []
            for _ in 0..<count { spis.append(try r.take(Int(spiSize), "D SPI")) }
            return .delete(doi: doi, protocolID: proto, spiSize: spiSize, spis: spis)
        case 13: return .vendorID(data)
        case 20, 130: return .natDiscovery(data)
        case 21, 131:
            let t = try r.u8("NAT-OA")
            _ = try r.take(3, "NAT-OA reserved")
            return .natOriginalAddress(type: t, address: try r.take(r.remaining, "NAT-OA"))
        default:
            throw .unknownPayload(type)
        }
    }

    static func attributes(_ r: inout ByteReader) throws(ISAKMPError) -> [Attribute] {
        var out: [Attribute] = []
        while r.remaining > 0 {
            guard out.count < 64 else { throw .tooManyPayloads }
            let raw = try r.u16("attribute")
            let type = raw & 0x7fff
            if raw & 0x8000 != 0 {
                out.append(Attribute(basic: type, try r.u16("attribute")))
            } else {
                let length = Int(try r.u16("attribute"))
                guard length <= Attribute.maximumLength, length <= r.remaining else {
                    throw .badAttribute(type: type, length: length)
                }
                out.append(Attribute(variable: type, try r.take(length, "attribute")))
            }
        }
        return out
    }

    public static func encodeAttributes(_ attributes: [Attribute]) -> [UInt8] {
        var d: [UInt8] = []
        for a in attributes {
            if a.basic {
                d.put16(a.type | 0x8000); d += a.value
            } else {
                d.put16(a.type); d.put16(UInt16(a.value.count)); d += a.value
            }
        }
        return d
    }

    /// Encodes a payload chain; returns the first payload's type and the body.
    public static func encode(_ payloads: [Payload]) -> (first: UInt8, body: [UInt8]) {
        var body: [UInt8] = []
        for (i, p) in payloads.enumerated() {
            let data = encodeData(p)
            body.append(i + 1 < payloads.count ? payloads[i + 1].typeNumber : 0)
            body.append(0)
            body.put16(UInt16(data.count + 4))
            body += data
        }
        return (payloads.first?.typeNumber ?? 0, body)
    }

    static func encodeData(_ p: Payload) -> [UInt8] {
        var d: [UInt8] = []
        switch p {
        case .sa(let doi, let situation, let proposals):
            d.put32(doi); d.put32(situation)
            for (i, prop) in proposals.enumerated() {
                var pd: [UInt8] = [prop.number, prop.protocolID, UInt8(prop.spi.count), UInt8(prop.transforms.count)]
                    + prop.spi
                for (j, t) in prop.transforms.enumerated() {
                    var td: [UInt8] = [t.number, t.id, 0, 0]
                    for a in t.attributes {
                        if a.basic {
                            td.put16(a.type | 0x8000); td += a.value
                        } else {
                            td.put16(a.type); td.put16(UInt16(a.value.count)); td += a.value
                        }
                    }
                    pd.append(j + 1 < prop.transforms.count ? 3 : 0); pd.append(0); pd.put16(UInt16(td.count + 4))
                    pd += td
                }
                d.append(i + 1 < proposals.count ? 2 : 0); d.append(0); d.put16(UInt16(pd.count + 4)); d += pd
            }
        case .keyExchange(let x), .hash(let x), .signature(let x), .nonce(let x), .vendorID(let x),
             .natDiscovery(let x):
            d = x
        case .identification(let type, let proto, let port, let data):
            d = [type, proto]; d.put16(port); d += data
        case .certificate(let enc, let data): d = [enc] + data
        case .certificateRequest(let type, let auth): d = [type] + auth
        case .notification(let doi, let proto, let type, let spi, let data):
            d.put32(doi); d += [proto, UInt8(spi.count)]; d.put16(type); d += spi + data
        case .delete(let doi, let proto, let spiSize, let spis):
            d.put32(doi); d += [proto, spiSize]; d.put16(UInt16(spis.count)); for s in spis { d += s }
        case .natOriginalAddress(let type, let address):
            d = [type, 0, 0, 0] + address
        }
        return d
    }
}
