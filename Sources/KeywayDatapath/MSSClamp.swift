/// TCP MSS clamping (sans-IO, in place): a SYN's maximum segment size option lowered so that the
/// segments both ends then send fit the tunnel's path, with the TCP checksum updated
/// incrementally (RFC 1624) rather than recomputed. With TUN offloads the kernel hands over TCP
/// super-packets cut by the MSS it negotiated: a clamped SYN makes those segments fit too.
public enum MSSClamp {
    /// Lowers the MSS option of the TCP SYN at `buffer[start...]` (its IPv4 header `ip`) to
    /// `limit` when it is larger. Returns the MSS it had when it changed it; nil for anything
    /// else (not a SYN, no MSS option, already small enough, malformed).
    @discardableResult
    public static func clamp(_ buffer: inout [UInt8], start: Int, header ip: IPv4Header, limit: UInt16) -> UInt16? {
        guard ip.proto == 6, ip.flagsAndOffset & 0x1fff == 0, ip.totalLength >= ip.headerLength + 20 else { return nil }
        let tcp = start + ip.headerLength
        guard tcp + 20 <= buffer.count, buffer[tcp + 13] & 0x02 != 0 else { return nil }
        let optionsEnd = tcp + Int(buffer[tcp + 12] >> 4) * 4
        guard optionsEnd >= tcp + 20, optionsEnd <= start + ip.totalLength else { return nil }
        var i = tcp + 20
        while i < optionsEnd {
            let kind = buffer[i]
            if kind == 0 { return nil }
            if kind == 1 { i += 1; continue }
            guard i + 1 < optionsEnd else { return nil }
            let l = Int(buffer[i + 1])
            guard l >= 2, i + l <= optionsEnd else { return nil }
            if kind == 2 {
                guard l == 4 else { return nil }
                let old = IPv4Header.u16(buffer, i + 2)
                guard old > limit else { return nil }
                replace(&buffer, at: i + 2, with: limit, segmentStart: tcp)
                return old
            }
            i += l
        }
        return nil
    }

    /// Writes `value` at `offset` and folds the change into the checksum at segment + 16: the
    /// 16-bit words the checksum sums are aligned to the segment's start, so a field at an odd
    /// offset touches two of them.
    static func replace(_ buffer: inout [UInt8], at offset: Int, with value: UInt16, segmentStart: Int) {
        let first = offset - (offset - segmentStart) % 2
        let words = (offset + 2 - first + 1) / 2
        var old: [UInt16] = []
        for w in 0..<words { old.append(IPv4Header.u16(buffer, first + 2 * w)) }
        IPv4Header.put16(&buffer, offset, value)
        var checksum = IPv4Header.u16(buffer, segmentStart + 16)
        for w in 0..<words {
            checksum = updated(checksum, old: old[w], new: IPv4Header.u16(buffer, first + 2 * w))
        }
        IPv4Header.put16(&buffer, segmentStart + 16, checksum)
    }

    /// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
    static func updated(_ checksum: UInt16, old: UInt16, new: UInt16) -> UInt16 {
        var sum = UInt32(~checksum) + UInt32(~old) + UInt32(new)
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }
}
