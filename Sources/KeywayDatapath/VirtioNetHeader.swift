/// The `virtio_net_hdr` that precedes every packet read from or written to a TUN device opened
/// with IFF_VNET_HDR (Linux include/uapi/linux/virtio_net.h): how the kernel hands over a
/// super-packet to segment (GSO) and a checksum still to complete, and how we hand it one to
/// segment on its side. Ten bytes, fields in the host's (little-endian) order.
public struct VirtioNetHeader: Equatable, Sendable {
    public static let size = 10
    /// The checksum at checksumStart + checksumOffset still has to be completed.
    public static let needsChecksum: UInt8 = 1
    /// The checksums are known good.
    public static let dataValid: UInt8 = 2

    public enum Segmentation: UInt8, Sendable {
        case none = 0, tcpv4 = 1, udp = 3, tcpv6 = 4, udpL4 = 5
    }
    /// ECN bit ORed into the GSO type: the segments carry CWR.
    public static let ecn: UInt8 = 0x80

    public var flags: UInt8 = 0
    public var gsoType: UInt8 = 0
    /// IP and transport headers together.
    public var headerLength: UInt16 = 0
    /// Payload bytes per segment.
    public var gsoSize: UInt16 = 0
    public var checksumStart: UInt16 = 0
    public var checksumOffset: UInt16 = 0

    public init(flags: UInt8 = 0, gsoType: UInt8 = 0, headerLength: UInt16 = 0, gsoSize: UInt16 = 0,
                checksumStart: UInt16 = 0,
                checksumOffset: UInt16 = 0) {
        self.flags = flags; self.gsoType = gsoType; self.headerLength = headerLength; self.gsoSize = gsoSize
        self.checksumStart = checksumStart; self.checksumOffset = checksumOffset
    }

    /// Nil when fewer than ten bytes lie at `offset`.
    public init?(_ buffer: [UInt8], at offset: Int) {
        guard offset >= 0, offset + Self.size <= buffer.count else { return nil }
        func u16(_ o: Int) -> UInt16 { UInt16(buffer[offset + o]) | UInt16(buffer[offset + o + 1]) << 8 }
        flags = buffer[offset]; gsoType = buffer[offset + 1]
        headerLength = u16(2); gsoSize = u16(4); checksumStart = u16(6); checksumOffset = u16(8)
    }

    public var segmentation: Segmentation? { Segmentation(rawValue: gsoType & ~Self.ecn) }

    public func write(into buffer: inout [UInt8], at offset: Int) {
        func put(_ o: Int, _ v: UInt16) { buffer[offset + o] = UInt8(v & 0xff); buffer[offset + o + 1] = UInt8(v >> 8) }
        buffer[offset] = flags; buffer[offset + 1] = gsoType
        put(2, headerLength); put(4, gsoSize); put(6, checksumStart); put(8, checksumOffset)
    }
}
