import KeywayCrypto

/// Where a packet split in pieces lies in the buffer: `count` pieces from `start`, `stride`
/// bytes apart, each `length` bytes long but the last (`lastLength`).
public struct PacketRun: Equatable, Sendable {
    public var start: Int
    public var stride: Int
    public var count: Int
    public var length: Int
    public var lastLength: Int

    public func start(_ i: Int) -> Int { start + i * stride }
    public func length(_ i: Int) -> Int { i == count - 1 ? lastLength : length }
    /// Where the last piece ends.
    public var end: Int { count == 0 ? start : start(count - 1) + lastLength }
}

/// IPv4 fragmentation (RFC 791 §3.2), sans-IO and without allocation: the pieces are written
/// one after another into free room of the same buffer (after the packet, in its slot), so they
/// can join the same sendmmsg. Keyway does this itself because a raw socket with IP_HDRINCL
/// refuses (EMSGSIZE) what exceeds the interface rather than fragment it, and because AH signs
/// the IP identification, which a kernel-built header would choose after the fact.
public enum IPv4Fragmenter {
    /// Splits the IPv4 packet at `buffer[start..<start+length]` into fragments of at most `mtu`
    /// bytes, the first at `destination` and each next one `spacing` bytes further (0: packed),
    /// all of them before `limit`. Every fragment carries the header (options the RFC does not
    /// copy become NOPs, so all headers are the same length), `identification` if given, MF on
    /// all but the last (which keeps the packet's own MF), the offsets, a fresh checksum. Nil
    /// when the packet is not one this can split, the MTU leaves no room for eight bytes, or
    /// the room is short; nothing is then written before `destination`.
    public static func fragment(_ buffer: inout [UInt8], packetAt start: Int, length: Int, mtu: Int,
                                into destination: Int,
                                spacing: Int = 0, limit: Int, identification: UInt16? = nil) -> PacketRun? {
        guard let ip = try? IPv4Header(buffer, at: start, length: length), destination >= start + ip.totalLength else {
            return nil
        }
        let h = ip.headerLength
        let payload = ip.totalLength - h
        let chunk = (mtu - h) / 8 * 8
        guard chunk >= 8, payload > 0 else { return nil }
        let count = (payload + chunk - 1) / chunk
        let stride = max(spacing, h + chunk)
        let lastLength = h + payload - (count - 1) * chunk
        let run = PacketRun(start: destination, stride: stride, count: count, length: h + chunk, lastLength: lastLength)
        guard limit <= buffer.count, run.end <= limit else { return nil }
        let baseOffset = Int(ip.flagsAndOffset & 0x1fff)
        guard baseOffset * 8 + payload <= 65_535 else { return nil }
        let moreAfter = ip.flagsAndOffset & 0x2000 != 0
        // Bit 0x8000 is reserved and stays as it was; DF goes (the caller fragments only without it).
        let reserved = ip.flagsAndOffset & 0x8000
        for i in 0..<count {
            let d = run.start(i)
            PacketBytes.move(&buffer, from: start, to: d, count: h)
            if i > 0, !blankUncopiedOptions(&buffer, headerAt: d, length: h) { return nil }
            PacketBytes.move(&buffer, from: start + h + i * chunk, to: d + h, count: run.length(i) - h)
            let more = i < count - 1 || moreAfter
            let flags = reserved | (more ? 0x2000 : 0) | UInt16(baseOffset + i * chunk / 8)
            IPv4Header.put16(&buffer, d + 2, UInt16(run.length(i)))
            if let identification { IPv4Header.put16(&buffer, d + 4, identification) }
            IPv4Header.put16(&buffer, d + 6, flags)
            IPv4Header.setChecksum(&buffer, headerAt: d, length: h)
        }
        return run
    }

    /// Options whose copied flag is clear appear in the first fragment only (RFC 791): in the
    /// others they become NOPs. False on a malformed option list.
    static func blankUncopiedOptions(_ buffer: inout [UInt8], headerAt d: Int, length h: Int) -> Bool {
        var i = d + 20
        while i < d + h {
            let kind = buffer[i]
            if kind == 0 { return true }
            if kind == 1 { i += 1; continue }
            guard i + 1 < d + h else { return false }
            let l = Int(buffer[i + 1])
            guard l >= 2, i + l <= d + h else { return false }
            if kind & 0x80 == 0 { for j in i..<(i + l) { buffer[j] = 1 } }
            i += l
        }
        return true
    }
}
