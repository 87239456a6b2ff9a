/// Why a packet from the network or the TUN device was refused; each maps to a statistics counter.
public enum PacketError: Error, Equatable, Sendable {
    case truncated
    case notIPv4
    case badHeaderLength
    case badTotalLength
    case fragment

    public var counter: String { "in-header-errors" }
}

/// A validated view of an IPv4 header inside a byte buffer (no copy).
public struct IPv4Header: Equatable, Sendable {
    public var headerLength: Int
    public var totalLength: Int
    public var tos: UInt8
    public var identification: UInt16
    public var flagsAndOffset: UInt16
    public var ttl: UInt8
    public var proto: UInt8
    public var source: UInt32
    public var destination: UInt32

    public var isFragment: Bool { flagsAndOffset & 0x3FFF != 0 }
    public var dontFragment: Bool { flagsAndOffset & 0x4000 != 0 }

    /// Parses the header at `packet[offset...]`; every length is checked against the buffer.
    public init(_ packet: [UInt8], at offset: Int = 0, length: Int? = nil) throws(PacketError) {
        let available = min(length ?? packet.count - offset, packet.count - offset)
        guard offset >= 0, available >= 20 else { throw .truncated }
        let b0 = packet[offset]
        guard b0 >> 4 == 4 else { throw .notIPv4 }
        headerLength = Int(b0 & 0x0F) * 4
        guard headerLength >= 20, headerLength <= available else { throw .badHeaderLength }
        totalLength = Int(packet[offset + 2]) << 8 | Int(packet[offset + 3])
        guard totalLength >= headerLength, totalLength <= available else { throw .badTotalLength }
        tos = packet[offset + 1]
        identification = UInt16(packet[offset + 4]) << 8 | UInt16(packet[offset + 5])
        flagsAndOffset = UInt16(packet[offset + 6]) << 8 | UInt16(packet[offset + 7])
        ttl = packet[offset + 8]
        proto = packet[offset + 9]
        source = IPv4Header.u32(packet, offset + 12)
        destination = IPv4Header.u32(packet, offset + 16)
    }

    public static func u32(_ p: [UInt8], _ o: Int) -> UInt32 {
        UInt32(p[o]) << 24 | UInt32(p[o + 1]) << 16 | UInt32(p[o + 2]) << 8 | UInt32(p[o + 3])
    }

    /// Source and destination ports of an unfragmented TCP or UDP packet, else nil.
    public func ports(in packet: [UInt8], at offset: Int = 0) -> (UInt16, UInt16)? {
        guard proto == 6 || proto == 17, !isFragment, totalLength >= headerLength + 4 else { return nil }
        let o = offset + headerLength
        return (UInt16(packet[o]) << 8 | UInt16(packet[o + 1]), UInt16(packet[o + 2]) << 8 | UInt16(packet[o + 3]))
    }

    /// Writes a 20-byte header (no options) with a correct checksum at `offset` (no allocation).
    public static func write(into packet: inout [UInt8], at offset: Int, tos: UInt8, totalLength: Int,
                             identification: UInt16,
                             flagsAndOffset: UInt16, ttl: UInt8, proto: UInt8, source: UInt32, destination: UInt32) {
        packet[offset] = 0x45; packet[offset + 1] = tos
        put16(&packet, offset + 2, UInt16(truncatingIfNeeded: totalLength))
        put16(&packet, offset + 4, identification)
        put16(&packet, offset + 6, flagsAndOffset)
        packet[offset + 8] = ttl; packet[offset + 9] = proto
        put32(&packet, offset + 12, source)
        put32(&packet, offset + 16, destination)
        setChecksum(&packet, headerAt: offset, length: 20)
    }

    public static func put16(_ p: inout [UInt8], _ o: Int, _ v: UInt16) {
        p[o] = UInt8(v >> 8); p[o + 1] = UInt8(v & 0xff)
    }

    public static func put32(_ p: inout [UInt8], _ o: Int, _ v: UInt32) {
        p[o] = UInt8(v >> 24); p[o + 1] = UInt8(v >> 16 & 0xff); p[o + 2] = UInt8(v >> 8 & 0xff)
        p[o + 3] = UInt8(v & 0xff)
    }

    public static func u16(_ p: [UInt8], _ o: Int) -> UInt16 { UInt16(p[o]) << 8 | UInt16(p[o + 1]) }

    public static func setChecksum(_ packet: inout [UInt8], headerAt offset: Int, length: Int) {
        packet[offset + 10] = 0
        packet[offset + 11] = 0
        var sum: UInt32 = 0
        var i = offset
        while i < offset + length { sum += UInt32(packet[i]) << 8 | UInt32(packet[i + 1]); i += 2 }
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        let c = ~UInt16(sum)
        packet[offset + 10] = UInt8(c >> 8)
        packet[offset + 11] = UInt8(c & 0xff)
    }
}
