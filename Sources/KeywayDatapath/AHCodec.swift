import KeywayCrypto

/// AH (RFC 4302) over IPv4, transport and tunnel mode. The ICV covers the IP header with its
/// mutable fields (TOS, flags and fragment offset, TTL, checksum) zeroed, the AH header with a
/// zero ICV, and the payload.
public enum AHCodec {
    static let fixedLength = 12

    static func headerSize(_ ah: AHTransform) -> Int { (fixedLength + ah.icvLength + 3) / 4 * 4 }

    /// Applies AH to the IPv4 packet at `buffer[start..<start+length]` in place (the outer header,
    /// or the inner one moved back, and the AH header go into the headroom). Returns where the
    /// outer packet now lies.
    public static func seal(_ buffer: inout [UInt8], start: Int, length: Int, sa: SecurityAssociation, ttl: UInt8 = 64,
                            dontFragment: Bool = false,
                            identification chosen: UInt16? = nil) throws(DatapathDrop) -> (start: Int, length: Int) {
        guard let ah = sa.ah else { throw .noState }
        let ip: IPv4Header
        do { ip = try IPv4Header(buffer, at: start, length: length) } catch { throw .header }
        let ahLength = Self.headerSize(ah)
        let headerLength = sa.tunnel ? 20 : ip.headerLength
        let payloadStart = sa.tunnel ? start : start + ip.headerLength
        let payload = ip.totalLength - (payloadStart - start)
        let a = payloadStart - ahLength
        let outerStart = a - headerLength
        let total = headerLength + ahLength + payload
        guard outerStart >= 0 else { throw .header }
        guard let seq = sa.nextSequence() else { throw .sequenceExhausted }
        // The kernel fills a zero IP ID in on raw sends (IP_HDRINCL) after the ICV was computed,
        // and AH protects the ID: never send 0 (a DF packet's ID means nothing else).
        let identification = chosen.flatMap { $0 == 0 ? nil : $0 }
            ?? (ip.identification != 0
                    ? ip.identification : UInt16(truncatingIfNeeded: seq) | (seq & 0xffff == 0 ? 1 : 0))
        if sa.tunnel {
            IPv4Header.write(into: &buffer, at: outerStart, tos: ip.tos, totalLength: total,
                             identification: identification,
                             flagsAndOffset: dontFragment ? 0x4000 : 0, ttl: ttl, proto: 51, source: sa.source,
                             destination: sa.destination)
        } else {
            for i in 0..<ip.headerLength { buffer[outerStart + i] = buffer[start + i] }
            IPv4Header.put16(&buffer, outerStart + 2, UInt16(truncatingIfNeeded: total))
            IPv4Header.put16(&buffer, outerStart + 4, identification)
            buffer[outerStart + 9] = 51
        }
        buffer[a] = sa.tunnel ? 4 : ip.proto
        buffer[a + 1] = UInt8(ahLength / 4 - 2)
        buffer[a + 2] = 0; buffer[a + 3] = 0
        IPv4Header.put32(&buffer, a + 4, sa.spi)
        IPv4Header.put32(&buffer, a + 8, seq)
        for i in fixedLength..<ahLength { buffer[a + i] = 0 }
        // The ICV covers the header with its mutable fields zeroed: zeroed here, restored after.
        let saved = MutableFields(buffer, at: outerStart)
        zeroMutable(&buffer, at: outerStart)
        do {
            try ah.sign(&buffer, range: outerStart..<(outerStart + total), icvOffset: a + fixedLength)
        } catch {
            throw .integrity
        }
        saved.restore(&buffer, at: outerStart)
        IPv4Header.setChecksum(&buffer, headerAt: outerStart, length: headerLength)
        return (outerStart, total)
    }

    /// Verifies the outer IPv4 + AH packet at `buffer[start..<start+length]` and returns where
    /// the inner packet lies (transport mode moves the header forward to meet the payload).
    public static func open(_ buffer: inout [UInt8], start: Int, length: Int,
                            sa: SecurityAssociation) throws(DatapathDrop) -> (start: Int, length: Int) {
        guard let ah = sa.ah else { throw .noState }
        let ip: IPv4Header
        do { ip = try IPv4Header(buffer, at: start, length: length) } catch { throw .header }
        let a = start + ip.headerLength
        guard ip.totalLength >= ip.headerLength + fixedLength else { throw .header }
        let ahLength = (Int(buffer[a + 1]) + 2) * 4
        guard ahLength == Self.headerSize(ah), ip.totalLength >= ip.headerLength + ahLength else { throw .header }
        let seq = IPv4Header.u32(buffer, a + 8)
        guard sa.replay.check(seq) == .fresh else { throw .replay }
        let icv = Array(buffer[(a + fixedLength)..<(a + fixedLength + ah.icvLength)])
        let saved = MutableFields(buffer, at: start)
        zeroMutable(&buffer, at: start)
        for i in fixedLength..<ahLength { buffer[a + i] = 0 }
        guard ah.verify(buffer, range: start..<(start + ip.totalLength), icv: icv[...]) else { throw .integrity }
        sa.replay.accept(seq)
        saved.restore(&buffer, at: start)
        let nextHeader = buffer[a]
        let payloadStart = a + ahLength, end = start + ip.totalLength
        if sa.tunnel {
            guard nextHeader == 4 else { throw .mode }
            do {
                let inner = try IPv4Header(buffer, at: payloadStart, length: end - payloadStart)
                guard inner.totalLength == end - payloadStart else { throw DatapathDrop.header }
            } catch { throw .header }
            return (payloadStart, end - payloadStart)
        }
        guard nextHeader != 4 else { throw .mode }
        let innerStart = payloadStart - ip.headerLength
        for i in stride(from: ip.headerLength - 1, through: 0, by: -1) { buffer[innerStart + i] = buffer[start + i] }
        IPv4Header.put16(&buffer, innerStart + 2, UInt16(truncatingIfNeeded: end - innerStart))
        buffer[innerStart + 9] = nextHeader
        IPv4Header.setChecksum(&buffer, headerAt: innerStart, length: ip.headerLength)
        return (innerStart, end - innerStart)
    }

    public static func encapsulate(_ inner: [UInt8], sa: SecurityAssociation, ttl: UInt8 = 64,
                                   dontFragment: Bool = false) throws(DatapathDrop) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: PacketRoom.headroom + inner.count + PacketRoom.tailroom)
        for i in inner.indices { buffer[PacketRoom.headroom + i] = inner[i] }
        let (s, n) = try seal(&buffer, start: PacketRoom.headroom, length: inner.count, sa: sa, ttl: ttl,
                              dontFragment: dontFragment)
        return Array(buffer[s..<(s + n)])
    }

    public static func decapsulate(_ packet: [UInt8], sa: SecurityAssociation) throws(DatapathDrop) -> [UInt8] {
        var buffer = packet
        let (s, n) = try open(&buffer, start: 0, length: buffer.count, sa: sa)
        return Array(buffer[s..<(s + n)])
    }

    /// The IPv4 header fields AH leaves out of its ICV (TOS, flags and offset, TTL, checksum).
    struct MutableFields {
        let tos: UInt8, flags0: UInt8, flags1: UInt8, ttl: UInt8, checksum0: UInt8, checksum1: UInt8
        init(_ p: [UInt8], at o: Int) {
            tos = p[o + 1]; flags0 = p[o + 6]; flags1 = p[o + 7]; ttl = p[o + 8]; checksum0 = p[o + 10]
            checksum1 = p[o + 11]
        }
        func restore(_ p: inout [UInt8], at o: Int) {
            p[o + 1] = tos; p[o + 6] = flags0; p[o + 7] = flags1; p[o + 8] = ttl; p[o + 10] = checksum0
            p[o + 11] = checksum1
        }
    }

    /// IPv4 options are treated as immutable: Keyway never sends any, and peers rarely do.
    static func zeroMutable(_ p: inout [UInt8], at o: Int = 0) {
        p[o + 1] = 0                 // TOS
        p[o + 6] = 0; p[o + 7] = 0   // flags, fragment offset
        p[o + 8] = 0                 // TTL
        p[o + 10] = 0; p[o + 11] = 0 // checksum
    }
}
