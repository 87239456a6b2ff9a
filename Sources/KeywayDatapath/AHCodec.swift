import KeywayCrypto

/// AH (RFC 4302) over IPv4, transport and tunnel mode. The ICV covers the IP header with its
/// mutable fields (TOS, flags and fragment offset, TTL, checksum) zeroed, the AH header with a
/// zero ICV, and the payload.
public enum AHCodec {
    static let fixedLength = 12

    static func length(_ ah: AHTransform) -> Int { (fixedLength + ah.icvLength + 3) / 4 * 4 }

    public static func encapsulate(_ inner: [UInt8], sa: SecurityAssociation, ttl: UInt8 = 64, dontFragment: Bool = false) throws(DatapathDrop) -> [UInt8] {
        guard let ah = sa.ah else { throw .noState }
        let ip: IPv4Header
        do { ip = try IPv4Header(inner) } catch { throw .header }
        guard let seq = sa.nextSequence() else { throw .sequenceExhausted }
        let ahLength = length(ah)
        let headerLength = sa.tunnel ? 20 : ip.headerLength
        let payload = sa.tunnel ? Array(inner[0..<ip.totalLength]) : Array(inner[ip.headerLength..<ip.totalLength])
        var out = [UInt8](repeating: 0, count: headerLength + ahLength + payload.count)
        // The kernel fills a zero IP ID in on raw sends (IP_HDRINCL) after the ICV was computed,
        // and AH protects the ID: never send 0 (a DF packet's ID means nothing else).
        let identification = ip.identification != 0 ? ip.identification : UInt16(truncatingIfNeeded: seq) | (seq & 0xffff == 0 ? 1 : 0)
        if sa.tunnel {
            IPv4Header.write(into: &out, at: 0, tos: ip.tos, totalLength: out.count, identification: identification,
                             flagsAndOffset: dontFragment ? 0x4000 : 0, ttl: ttl, proto: 51, source: sa.source, destination: sa.destination)
        } else {
            out.replaceSubrange(0..<ip.headerLength, with: inner[0..<ip.headerLength])
            out[2] = UInt8(out.count >> 8); out[3] = UInt8(out.count & 0xff)
            out[4] = UInt8(identification >> 8); out[5] = UInt8(identification & 0xff)
            out[9] = 51
        }
        let a = headerLength
        out[a] = sa.tunnel ? 4 : ip.proto
        out[a + 1] = UInt8(ahLength / 4 - 2)
        for (i, b) in [UInt8(sa.spi >> 24), UInt8(sa.spi >> 16 & 0xff), UInt8(sa.spi >> 8 & 0xff), UInt8(sa.spi & 0xff),
                       UInt8(seq >> 24), UInt8(seq >> 16 & 0xff), UInt8(seq >> 8 & 0xff), UInt8(seq & 0xff)].enumerated() { out[a + 4 + i] = b }
        out.replaceSubrange((a + ahLength)..<(a + ahLength + payload.count), with: payload)
        // The ICV is computed over a copy with the mutable header fields zeroed.
        var scratch = out
        zeroMutable(&scratch)
        do { try ah.sign(&scratch, range: 0..<scratch.count, icvOffset: a + fixedLength) } catch { throw .integrity }
        out.replaceSubrange((a + fixedLength)..<(a + fixedLength + ah.icvLength), with: scratch[(a + fixedLength)..<(a + fixedLength + ah.icvLength)])
        IPv4Header.setChecksum(&out, headerAt: 0, length: headerLength)
        return out
    }

    public static func decapsulate(_ packet: [UInt8], sa: SecurityAssociation) throws(DatapathDrop) -> [UInt8] {
        guard let ah = sa.ah else { throw .noState }
        let ip: IPv4Header
        do { ip = try IPv4Header(packet) } catch { throw .header }
        let a = ip.headerLength
        guard ip.totalLength >= a + fixedLength else { throw .header }
        let ahLength = (Int(packet[a + 1]) + 2) * 4
        guard ahLength == length(ah), ip.totalLength >= a + ahLength else { throw .header }
        let seq = IPv4Header.u32(packet, a + 8)
        guard sa.replay.check(seq) == .fresh else { throw .replay }
        let icv = packet[(a + fixedLength)..<(a + fixedLength + ah.icvLength)]
        var scratch = Array(packet[0..<ip.totalLength])
        zeroMutable(&scratch)
        for i in 0..<(ahLength - fixedLength) { scratch[a + fixedLength + i] = 0 }
        guard ah.verify(scratch, range: 0..<scratch.count, icv: icv) else { throw .integrity }
        sa.replay.accept(seq)
        let nextHeader = packet[a]
        let payload = Array(packet[(a + ahLength)..<ip.totalLength])
        if sa.tunnel {
            guard nextHeader == 4 else { throw .mode }
            do { let inner = try IPv4Header(payload); guard inner.totalLength == payload.count else { throw DatapathDrop.header } } catch { throw .header }
            return payload
        }
        guard nextHeader != 4 else { throw .mode }
        var inner = Array(packet[0..<a]) + payload
        inner[2] = UInt8(inner.count >> 8); inner[3] = UInt8(inner.count & 0xff)
        inner[9] = nextHeader
        IPv4Header.setChecksum(&inner, headerAt: 0, length: a)
        return inner
    }

    /// IPv4 options are treated as immutable: Keyway never sends any, and peers rarely do.
    static func zeroMutable(_ p: inout [UInt8]) {
        p[1] = 0             // TOS
        p[6] = 0; p[7] = 0   // flags, fragment offset
        p[8] = 0             // TTL
        p[10] = 0; p[11] = 0 // checksum
    }
}
