import KeywayVocabulary

/// The shared words on the wire: addresses and prefixes as big-endian numbers, enumerations as
/// their position in `allCases`, every value validated as it is read.
extension WireWriter {
    public mutating func address(_ a: IPv4Address) { u32(a.value) }
    public mutating func prefix(_ p: IPv4Prefix) { u32(p.address.value); u8(UInt8(p.length)) }

    /// Ports and protocol use 0 and 255 for "any", as the datapath matches them.
    public mutating func selector(_ s: TrafficSelector) {
        prefix(s.source); u16(s.sourcePort ?? 0); prefix(s.destination); u16(s.destinationPort ?? 0); u8(s.proto ?? 255)
    }

    public mutating func choice<E: CaseIterable & Equatable>(_ value: E) {
        u8(UInt8(E.allCases.firstIndex(of: value).map {
            E.allCases.distance(from: E.allCases.startIndex, to: $0)
        } ?? 0))
    }

    public mutating func choices<E: CaseIterable & Equatable>(_ values: [E]) {
        count(values.count); for v in values { choice(v) }
    }

    /// 0 clamp to the path, 1 off, 2 at most the u16 that follows (always written).
    public mutating func tcpMSS(_ m: TCPMSSClamp) {
        switch m {
        case .clampToPathMTU: u8(0); u16(0)
        case .off: u8(1); u16(0)
        case .atMost(let n): u8(2); u16(n)
        }
    }

    public mutating func ipAddress(_ a: IPAddress) {
        switch a {
        case .v4(let v4): u8(AddressFamily.ipv4.rawValue); address(v4)
        }
    }
}

extension WireReader {
    public mutating func address() throws(WireError) -> IPv4Address { IPv4Address(try u32()) }

    public mutating func prefix(_ field: String) throws(WireError) -> IPv4Prefix {
        let a = try u32(), l = try u8()
        guard l <= 32 else { throw .invalidEnum(field: field + ".length", value: UInt32(l)) }
        // A prefix arrives masked; host bits set are a sender that does not mean what it says.
        let p = IPv4Prefix(a, length: Int(l))
        guard p.address.value == a else { throw .invalidEnum(field: field + ".host-bits", value: a) }
        return p
    }

    public mutating func selector(_ field: String) throws(WireError) -> TrafficSelector {
        let source = try prefix(field + ".source"), sourcePort = try u16()
        let destination = try prefix(field + ".destination"), destinationPort = try u16()
        let proto = try u8()
        return TrafficSelector(source: source, destination: destination, sourcePort: sourcePort == 0 ? nil : sourcePort,
                               destinationPort: destinationPort == 0 ? nil : destinationPort,
                               proto: proto == 255 ? nil : proto)
    }

    public mutating func choice<E: CaseIterable>(_ field: String, _: E.Type) throws(WireError) -> E {
        let index = Int(try u8())
        guard index < E.allCases.count else { throw .invalidEnum(field: field, value: UInt32(index)) }
        return E.allCases[E.allCases.index(E.allCases.startIndex, offsetBy: index)]
    }

    public mutating func choices<E: CaseIterable>(_ field: String, _ type: E.Type) throws(WireError) -> [E] {
        var out: [E] = []
        for _ in 0..<(try count(limit: E.allCases.count)) { out.append(try choice(field, type)) }
        return out
    }

    public mutating func tcpMSS(_ field: String) throws(WireError) -> TCPMSSClamp {
        let kind = try u8(), value = try u16()
        switch kind {
        case 0 where value == 0: return .clampToPathMTU
        case 1 where value == 0: return .off
        case 2 where value >= TCPMSSClamp.smallest && value <= 65_495: return .atMost(value)
        default: throw .invalidEnum(field: field, value: UInt32(kind) << 16 | UInt32(value))
        }
    }

    public mutating func ipAddress(_ field: String) throws(WireError) -> IPAddress {
        let family = try u8()
        switch AddressFamily(rawValue: family) {
        case .ipv4?: return .v4(try address())
        case nil: throw .invalidEnum(field: field + ".family", value: UInt32(family))
        }
    }
}
