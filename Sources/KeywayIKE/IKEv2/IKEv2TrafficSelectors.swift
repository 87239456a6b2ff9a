import KeywayVocabulary

/// Traffic selectors (RFC 7296 2.9) against policies: a policy's selectors as TS payloads, and the
/// responder's narrowing of what a peer proposes to exactly one configured (or generated) policy.
struct SelectorRange: Equatable, CustomStringConvertible {
    var addresses: ClosedRange<UInt32>
    var ports: ClosedRange<UInt16>
    /// 0: any protocol.
    var proto: UInt8

    init(prefix address: UInt32, length: Int, port: UInt16, proto: UInt8?) {
        let mask: UInt32 = length <= 0 ? 0 : ~UInt32(0) << UInt32(32 - min(length, 32))
        addresses = (address & mask)...((address & mask) | ~mask)
        ports = port == 0 ? 0...65535 : port...port
        self.proto = proto ?? 0
    }

    /// An IPv4 range TS; nil for IPv6 and inverted ranges.
    init?(_ ts: IKEv2TrafficSelector) {
        guard ts.type == IKEv2TSType.ipv4Range, ts.start.count == 4, ts.end.count == 4,
              ts.startPort <= ts.endPort else {
            return nil
        }
        let start = ts.start.reduce(0) { $0 << 8 | UInt32($1) }, end = ts.end.reduce(0) { $0 << 8 | UInt32($1) }
        guard start <= end else { return nil }
        addresses = start...end
        ports = ts.startPort...ts.endPort
        proto = ts.ipProtocol
    }

    var payload: IKEv2TrafficSelector {
        IKEv2TrafficSelector(ipProtocol: proto, startPort: ports.lowerBound, endPort: ports.upperBound,
                             start: addresses.lowerBound.bytes, end: addresses.upperBound.bytes)
    }

    func contains(_ other: SelectorRange) -> Bool {
        addresses.lowerBound <= other.addresses.lowerBound && other.addresses.upperBound <= addresses.upperBound
            && ports.lowerBound <= other.ports.lowerBound && other.ports.upperBound <= ports.upperBound
            && (proto == 0 || proto == other.proto)
    }

    /// The range as a prefix, a single port (0: any) and a protocol, when it is one.
    var prefix: (address: UInt32, length: Int, port: UInt16)? {
        let size = UInt64(addresses.upperBound) - UInt64(addresses.lowerBound) + 1
        guard size & (size - 1) == 0 else { return nil }
        let length = 32 - (size.trailingZeroBitCount)
        guard UInt64(addresses.lowerBound) % size == 0 else { return nil }
        let port: UInt16
        if ports == 0...65535 { port = 0 } else if ports.lowerBound == ports.upperBound, ports.lowerBound != 0 {
            port = ports.lowerBound
        } else {
            return nil
        }
        return (addresses.lowerBound, length, port)
    }

    var description: String {
        var text: String
        if let p = prefix { text = "\(IPv4Address.text(p.address))/\(p.length)" } else {
            text = "\(IPv4Address.text(addresses.lowerBound))-\(IPv4Address.text(addresses.upperBound))"
        }
        if proto != 0 { text += " proto \(proto)" }
        if ports != 0...65535 {
            text += ports.lowerBound == ports.upperBound ? " port \(ports.lowerBound)" : " ports \(ports)"
        }
        return text
    }
}

extension IKEPolicy {
    var sourceRange: SelectorRange {
        SelectorRange(prefix: source, length: sourceLength, port: sourcePort, proto: proto)
    }
    var destinationRange: SelectorRange {
        SelectorRange(prefix: destination, length: destinationLength, port: destinationPort, proto: proto)
    }

    /// Whether a peer's proposal covers this policy from the peer's side: their TSi contains our
    /// destination and their TSr our source (narrowing may then pick exactly the policy).
    func fits(initiatorSide tsi: [SelectorRange], responderSide tsr: [SelectorRange]) -> Bool {
        tsi.contains { $0.contains(destinationRange) } && tsr.contains { $0.contains(sourceRange) }
    }
}

func describe(_ selectors: [SelectorRange]) -> String {
    selectors.isEmpty ? "nothing" : selectors.map(\.description).joined(separator: ",")
}
