import KeywayCrypto

/// The TUN device's offloads, done our side (sans-IO): completing a checksum the kernel left
/// partial, and splitting a TCP super-packet (TSO) into the segments the wire carries, each with
/// its own IPv4 and TCP header and correct checksums, as the kernel's own GSO would.
public enum TCPSegmentation {
    static let tcpFIN: UInt8 = 0x01, tcpSYN: UInt8 = 0x02, tcpRST: UInt8 = 0x04, tcpPSH: UInt8 = 0x08
    static let tcpACK: UInt8 = 0x10, tcpURG: UInt8 = 0x20, tcpECE: UInt8 = 0x40, tcpCWR: UInt8 = 0x80

    /// Completes the partial checksum the header names (VIRTIO_NET_HDR_F_NEEDS_CSUM): the field
    /// holds the pseudo-header sum; the sum from checksumStart to the end completes it. False when
    /// the header points outside the packet.
    public static func completeChecksum(_ buffer: inout [UInt8], start: Int, length: Int,
                                        header: VirtioNetHeader) -> Bool {
        let from = Int(header.checksumStart), field = from + Int(header.checksumOffset)
        guard from < length, field + 2 <= length else { return false }
        let sum = InternetChecksum.sum(buffer, start: start + from, count: length - from)
        var checksum = ~sum
        // UDP sends a computed zero as all ones (RFC 768); TCP never has one here.
        if checksum == 0 { checksum = 0xffff }
        IPv4Header.put16(&buffer, start + field, checksum)
        return true
    }

    /// Splits the TCP/IPv4 super-packet at `buffer[start..<start+length]` into segments of at most
    /// `header.gsoSize` payload bytes, written whole to pool slots `firstSlot`, `firstSlot + 1`, ...
    /// (`lengths[slot]` gets each one's length). Returns how many, or nil when the packet is not a
    /// TCP/IPv4 packet this can split or the slots do not suffice (then nothing is sent: a
    /// super-packet never leaves unsegmented).
    public static func split(_ pool: inout PacketPool, start: Int, length: Int, header: VirtioNetHeader, firstSlot: Int,
                             lengths: inout [Int]) -> Int? {
        guard let ip = try? IPv4Header(pool.bytes, at: start, length: length), ip.proto == 6, !ip.isFragment else {
            return nil
        }
        let tcp = start + ip.headerLength
        guard ip.totalLength >= ip.headerLength + 20 else { return nil }
        let tcpHeader = Int(pool.bytes[tcp + 12] >> 4) * 4
        let headers = ip.headerLength + tcpHeader
        let mss = Int(header.gsoSize)
        guard tcpHeader >= 20, headers <= ip.totalLength, mss > 0, headers + mss <= pool.packetCapacity else {
            return nil
        }
        let payload = ip.totalLength - headers
        let count = max(1, (payload + mss - 1) / mss)
        guard firstSlot >= 0, firstSlot + count <= pool.slotCount, lengths.count >= firstSlot + count else {
            return nil
        }
        let sequence = IPv4Header.u32(pool.bytes, tcp + 4)
        let flags = pool.bytes[tcp + 13]
        for i in 0..<count {
            let chunk = min(mss, payload - i * mss)
            let d = pool.start(firstSlot + i)
            PacketBytes.move(&pool.bytes, from: start, to: d, count: headers)
            let from = start + headers + i * mss
            PacketBytes.move(&pool.bytes, from: from, to: d + headers, count: chunk)
            let total = headers + chunk
            IPv4Header.put16(&pool.bytes, d + 2, UInt16(total))
            IPv4Header.put16(&pool.bytes, d + 4, ip.identification &+ UInt16(truncatingIfNeeded: i))
            IPv4Header.setChecksum(&pool.bytes, headerAt: d, length: ip.headerLength)
            let t = d + ip.headerLength
            IPv4Header.put32(&pool.bytes, t + 4, sequence &+ UInt32(truncatingIfNeeded: i * mss))
            var f = flags
            if i < count - 1 { f &= ~(tcpFIN | tcpPSH) }
            if i > 0 { f &= ~tcpCWR }
            pool.bytes[t + 13] = f
            setTCPChecksum(&pool.bytes, ipStart: d, ipHeader: ip.headerLength, total: total, source: ip.source,
                           destination: ip.destination)
            lengths[firstSlot + i] = total
        }
        return count
    }

    static func setTCPChecksum(_ buffer: inout [UInt8], ipStart: Int, ipHeader: Int, total: Int, source: UInt32,
                               destination: UInt32) {
        let t = ipStart + ipHeader
        buffer[t + 16] = 0; buffer[t + 17] = 0
        let pseudo = InternetChecksum.pseudoHeader(source: source, destination: destination, proto: 6,
                                                   length: total - ipHeader)
        IPv4Header.put16(&buffer, t + 16,
                         ~InternetChecksum.sum(buffer, start: t, count: total - ipHeader, initial: pseudo))
    }

    /// Whether the TCP/IPv4 packet's checksum verifies (its sum with the pseudo header is all ones).
    static func tcpChecksumValid(_ buffer: [UInt8], ipStart: Int, ipHeader: Int, total: Int, source: UInt32,
                                 destination: UInt32) -> Bool {
        let pseudo = InternetChecksum.pseudoHeader(source: source, destination: destination, proto: 6,
                                                   length: total - ipHeader)
        return InternetChecksum.sum(buffer, start: ipStart + ipHeader, count: total - ipHeader,
                                    initial: pseudo) == 0xffff
    }
}

/// What one read from the TUN device becomes before the SPD sees it.
public enum TunRead {
    /// The read at pool slot `slot` (`readLength` bytes; with `vnet`, the virtio-net header is
    /// the first ten of them, just before the slot's start): partial checksums completed, a TSO
    /// super-packet split into the slots after it. Returns the slots that hold the packets to
    /// process (their lengths in `lengths`), or nil when the read must be dropped.
    public static func prepare(_ pool: inout PacketPool, slot: Int, readLength: Int, vnet: Bool,
                               lengths: inout [Int]) -> Range<Int>? {
        guard slot >= 0, slot < pool.slotCount, lengths.count >= pool.slotCount else { return nil }
        guard vnet else {
            lengths[slot] = readLength
            return slot..<(slot + 1)
        }
        let start = pool.start(slot)
        guard readLength >= VirtioNetHeader.size,
              let header = VirtioNetHeader(pool.bytes, at: start - VirtioNetHeader.size) else {
            return nil
        }
        let length = readLength - VirtioNetHeader.size
        switch header.segmentation {
        case .none?:
            if header.flags & VirtioNetHeader.needsChecksum != 0 {
                guard TCPSegmentation.completeChecksum(&pool.bytes, start: start, length: length, header: header) else {
                    return nil
                }
            }
            lengths[slot] = length
            return slot..<(slot + 1)
        case .tcpv4?:
            guard let n = TCPSegmentation.split(&pool, start: start, length: length, header: header,
                                                firstSlot: slot + 1,
                                                lengths: &lengths) else { return nil }
            return (slot + 1)..<(slot + 1 + n)
        default:
            return nil
        }
    }
}
