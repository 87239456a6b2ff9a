import CKeywayCrypto
import Glibc

/// The Internet checksum (RFC 1071) over parts of a packet buffer, at memory speed (the sum runs
/// in C, 64 bits at a time): IPv4, TCP and UDP checksums for segments the datapath builds.
public enum InternetChecksum {
    /// The folded one's complement sum of `buffer[start..<start+count]` plus `initial`; the
    /// checksum is its complement. A range outside the buffer sums nothing.
    public static func sum(_ buffer: [UInt8], start: Int, count: Int, initial: UInt32 = 0) -> UInt16 {
        guard start >= 0, count >= 0, start + count <= buffer.count else { return UInt16(truncatingIfNeeded: initial) }
        return buffer.withUnsafeBytes { raw in
            guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
                return UInt16(truncatingIfNeeded: initial)
            }
            return kw_inet_sum(base + start, count, initial)
        }
    }

    /// The TCP/UDP pseudo-header's sum: addresses, protocol and the transport length.
    public static func pseudoHeader(source: UInt32, destination: UInt32, proto: UInt8, length: Int) -> UInt32 {
        var sum = (source >> 16) + (source & 0xffff) + (destination >> 16) + (destination & 0xffff)
        sum += UInt32(proto) + UInt32(length & 0xffff)
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        return sum
    }
}

/// Bulk moves inside one packet buffer (memmove): a loop of checked byte copies costs
/// microseconds per packet, and a slice of the buffer would make the next write copy all of it.
public enum PacketBytes {
    /// Moves `count` bytes from `source` to `destination` within `buffer` (the ranges may
    /// overlap). False, and nothing moved, when either range lies outside the buffer.
    @discardableResult
    public static func move(_ buffer: inout [UInt8], from source: Int, to destination: Int, count: Int) -> Bool {
        guard count >= 0, source >= 0, destination >= 0, source + count <= buffer.count,
              destination + count <= buffer.count else {
            return false
        }
        guard count > 0 else { return true }
        buffer.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            _ = memmove(base + destination, base + source, count)
        }
        return true
    }

    /// Copies `count` bytes from `source[from...]` into `destination[to...]` (two buffers).
    @discardableResult
    public static func copy(_ source: [UInt8], from: Int, into destination: inout [UInt8], at to: Int,
                            count: Int) -> Bool {
        guard count >= 0, from >= 0, to >= 0, from + count <= source.count, to + count <= destination.count else {
            return false
        }
        guard count > 0 else { return true }
        source.withUnsafeBytes { s in
            destination.withUnsafeMutableBytes { d in
                guard let sb = s.baseAddress, let db = d.baseAddress else { return }
                _ = memcpy(db + to, sb + from, count)
            }
        }
        return true
    }
}
