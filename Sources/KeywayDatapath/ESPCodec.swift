import KeywayCrypto

/// Why an ESP packet was dropped, named by the statistics counter it bumps.
public enum DatapathDrop: Error, Equatable, Sendable {
    case header            // in-header-errors
    case noState           // in-no-states: unknown SPI
    case replay            // in-state-sequence-errors
    case integrity         // in-state-protocol-errors: ICV failed
    case padding           // in-state-protocol-errors: bad padding or next header
    case expired           // in-state-expired / out-state-expired
    case mode              // in-state-mode-errors: tunnel/transport mismatch
    case sequenceExhausted // out-state-sequence-errors

    public var counter: String {
        switch self {
        case .header: return "in-header-errors"
        case .noState: return "in-no-states"
        case .replay: return "in-state-sequence-errors"
        case .integrity, .padding: return "in-state-protocol-errors"
        case .expired: return "in-state-expired"
        case .mode: return "in-state-mode-errors"
        case .sequenceExhausted: return "out-state-sequence-errors"
        }
    }
}

/// ESP (RFC 4303) in transport and tunnel mode over IPv4. Sans-IO: bytes in, bytes out.
public enum ESPCodec {
    static let headerLength = 8

    /// Builds the outer packet for `inner` (a whole IPv4 packet). Transport mode keeps the inner
    /// header (its protocol becomes 50); tunnel mode adds a new header from the SA's addresses.
    public static func encapsulate(_ inner: [UInt8], sa: SecurityAssociation, explicitIV: [UInt8]? = nil,
                                   ttl: UInt8 = 64, dontFragment: Bool = false) throws(DatapathDrop) -> [UInt8] {
        guard let esp = sa.esp else { throw .noState }
        let ip: IPv4Header
        do { ip = try IPv4Header(inner) } catch { throw .header }
        guard let seq = sa.nextSequence() else { throw .sequenceExhausted }
        let (payloadStart, nextHeader): (Int, UInt8) = sa.tunnel ? (0, 4) : (ip.headerLength, ip.proto)
        let payload = ip.totalLength - payloadStart
        // Payload + pad + pad length + next header, aligned as the cipher needs.
        let padded = (payload + 2 + esp.alignment - 1) / esp.alignment * esp.alignment
        let padLength = padded - payload - 2
        let outerHeader = sa.tunnel ? 20 : ip.headerLength
        let espLength = headerLength + esp.ivLength + padded + esp.icvLength
        var out = [UInt8](repeating: 0, count: outerHeader + espLength)
        if sa.tunnel {
            IPv4Header.write(into: &out, at: 0, tos: ip.tos, totalLength: out.count, identification: ip.identification,
                             flagsAndOffset: dontFragment ? 0x4000 : 0, ttl: ttl, proto: 50, source: sa.source, destination: sa.destination)
        } else {
            out.replaceSubrange(0..<ip.headerLength, with: inner[0..<ip.headerLength])
            out[2] = UInt8(out.count >> 8); out[3] = UInt8(out.count & 0xff)
            out[9] = 50
            IPv4Header.setChecksum(&out, headerAt: 0, length: ip.headerLength)
        }
        let e = outerHeader
        for (i, b) in [UInt8(sa.spi >> 24), UInt8(sa.spi >> 16 & 0xff), UInt8(sa.spi >> 8 & 0xff), UInt8(sa.spi & 0xff),
                       UInt8(seq >> 24), UInt8(seq >> 16 & 0xff), UInt8(seq >> 8 & 0xff), UInt8(seq & 0xff)].enumerated() { out[e + i] = b }
        let p = e + headerLength + esp.ivLength
        // Bulk copies: a per-byte loop with bounds checks cost microseconds per packet.
        out.replaceSubrange(p..<(p + payload), with: inner[payloadStart..<(payloadStart + payload)])
        // RFC 4303 2.4: the default padding is 1, 2, 3, ...
        for i in 0..<padLength { out[p + payload + i] = UInt8(truncatingIfNeeded: i + 1) }
        out[p + payload + padLength] = UInt8(padLength)
        out[p + payload + padLength + 1] = nextHeader
        do { try esp.seal(&out, offset: e, length: espLength, sequence: UInt64(seq), explicitIV: explicitIV) } catch { throw .integrity }
        return out
    }

    /// Checks and decrypts `packet` (outer IPv4 + ESP) in place and returns the inner IPv4 packet.
    /// The replay window advances only after the ICV verified.
    public static func decapsulate(_ packet: inout [UInt8], sa: SecurityAssociation) throws(DatapathDrop) -> [UInt8] {
        guard let esp = sa.esp else { throw .noState }
        let ip: IPv4Header
        do { ip = try IPv4Header(packet) } catch { throw .header }
        let e = ip.headerLength
        let espLength = ip.totalLength - e
        guard espLength >= headerLength + esp.ivLength + esp.icvLength + 2 else { throw .header }
        let seq = IPv4Header.u32(packet, e + 4)
        guard sa.replay.check(seq) == .fresh else { throw .replay }
        let range: Range<Int>
        do { range = try esp.open(&packet, offset: e, length: espLength) } catch {
            throw error == .authenticationFailed ? .integrity : .header
        }
        sa.replay.accept(seq)
        guard range.count >= 2 else { throw .padding }
        let nextHeader = packet[range.upperBound - 1]
        let padLength = Int(packet[range.upperBound - 2])
        let payloadEnd = range.upperBound - 2 - padLength
        guard payloadEnd >= range.lowerBound else { throw .padding }
        for i in 0..<padLength where packet[payloadEnd + i] != UInt8(truncatingIfNeeded: i + 1) { throw .padding }
        if sa.tunnel {
            guard nextHeader == 4 else { throw .mode }
            let inner = Array(packet[range.lowerBound..<payloadEnd])
            do {
                let innerIP = try IPv4Header(inner)
                guard innerIP.totalLength == inner.count else { throw DatapathDrop.padding }
            } catch { throw .padding }
            return inner
        }
        guard nextHeader != 4 else { throw .mode }
        var inner = Array(packet[0..<ip.headerLength]) + packet[range.lowerBound..<payloadEnd]
        inner[2] = UInt8(inner.count >> 8); inner[3] = UInt8(inner.count & 0xff)
        inner[9] = nextHeader
        IPv4Header.setChecksum(&inner, headerAt: 0, length: ip.headerLength)
        return inner
    }
}
