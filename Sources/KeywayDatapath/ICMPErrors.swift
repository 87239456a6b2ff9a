import KeywayCrypto
import KeywayVocabulary

/// Our outer packet as a router quoted it in an ICMP error: enough to find the SA it was sent
/// under and the sequence number it carried.
public struct QuotedPacket: Equatable, Sendable {
    public var source: IPAddress
    public var destination: IPAddress
    /// The length the packet had when we sent it (its header's total length).
    public var totalLength: Int
    /// 50 ESP, 51 AH, 17 ESP in UDP.
    public var proto: UInt8
    /// ESP in UDP: our port and the peer's (0 otherwise).
    public var sourcePort: UInt16 = 0, destinationPort: UInt16 = 0
    public var spi: UInt32
    public var sequence: UInt32
    /// Routers send "fragmentation needed" only for packets with DF.
    public var dontFragment = false

    public var family: AddressFamily { destination.family }
    /// The IPsec protocol of the SA it was sent under.
    public var ipsecProtocol: IPsecProtocol { proto == 51 ? .ah : .esp }
}

/// An ICMP "fragmentation needed and DF set" (RFC 792 type 3 code 4, RFC 1191's next-hop MTU)
/// about one of our outer packets, parsed from what the raw ICMP socket delivers: untrusted
/// bytes, every length checked.
public struct FragmentationNeeded: Equatable, Sendable {
    /// The ICMP's source: the router that could not forward.
    public var reporter: IPAddress
    /// 0: the router named none (RFC 1191 §7: estimate from the plateaus).
    public var nextHopMTU: Int
    public var quoted: QuotedPacket

    /// Why bytes from the ICMP socket are not a report about our IPsec traffic. The ones
    /// `isOurs` names were about ESP, AH or ESP in UDP but unusable: worth a counter and an audit
    /// line. The others are someone else's ICMP, not Keyway's business.
    public enum Refusal: Error, Equatable, Sendable {
        case truncated
        case badHeader
        case badChecksum
        case notFragmentationNeeded
        case notIPsec
        /// The quote holds too little of our packet to name SPI and sequence number.
        case quoteTooShort
        /// A later fragment of our packet was quoted: it carries no SPI.
        case fragmentQuoted
        /// UDP 4500 with the non-ESP marker: one of IKE's messages.
        case ikeQuoted

        public var isOurs: Bool {
            switch self {
            case .quoteTooShort, .fragmentQuoted, .badChecksum: return true
            case .truncated, .badHeader, .notFragmentationNeeded, .notIPsec, .ikeQuoted: return false
            }
        }

        public var reason: String {
            switch self {
            case .truncated: return "truncated"
            case .badHeader: return "malformed IPv4 header"
            case .badChecksum: return "bad ICMP checksum"
            case .notFragmentationNeeded: return "not fragmentation-needed"
            case .notIPsec: return "quotes no ESP or AH"
            case .quoteTooShort: return "quote too short to name SPI and sequence number"
            case .fragmentQuoted: return "quotes a later fragment"
            case .ikeQuoted: return "quotes an IKE message"
            }
        }
    }

    /// Parses the IPv4 packet at `buffer[start..<start+length]` (as a raw ICMP socket reads it).
    public init(_ buffer: [UInt8], start: Int, length: Int, natTraversalPort: UInt16 = 4500) throws(Refusal) {
        guard start >= 0, length >= 0, start + length <= buffer.count else { throw .truncated }
        let outer: IPv4Header
        do { outer = try IPv4Header(buffer, at: start, length: length) } catch { throw .badHeader }
        guard outer.proto == 1, !outer.isFragment else { throw .notFragmentationNeeded }
        let icmp = start + outer.headerLength, end = start + outer.totalLength
        guard end - icmp >= 8 else { throw .truncated }
        guard buffer[icmp] == 3, buffer[icmp + 1] == 4 else { throw .notFragmentationNeeded }
        // A checksum is all an off-path sender cannot get wrong by accident.
        guard InternetChecksum.sum(buffer, start: icmp, count: end - icmp) == 0xffff else { throw .badChecksum }
        reporter = .v4(IPv4Address(outer.source))
        nextHopMTU = Int(IPv4Header.u16(buffer, icmp + 6))
        quoted = try Self.quote(buffer, from: icmp + 8, to: end, natTraversalPort: natTraversalPort)
    }

    /// The quoted header is cut short by design (a router quotes at least eight bytes past it,
    /// RFC 1812 routers up to 576 in all), so its total length may exceed what follows.
    static func quote(_ b: [UInt8], from q: Int, to end: Int,
                      natTraversalPort: UInt16) throws(Refusal) -> QuotedPacket {
        guard end - q >= 20 else { throw .quoteTooShort }
        guard b[q] >> 4 == 4 else { throw .notIPsec }
        let ihl = Int(b[q] & 0x0f) * 4
        guard ihl >= 20, end - q >= ihl else { throw .quoteTooShort }
        let total = Int(IPv4Header.u16(b, q + 2))
        guard total >= ihl else { throw .badHeader }
        let proto = b[q + 9]
        guard proto == 50 || proto == 51 || proto == 17 else { throw .notIPsec }
        let fragmentOffset = IPv4Header.u16(b, q + 6) & 0x1fff
        let dontFragment = IPv4Header.u16(b, q + 6) & 0x4000 != 0
        let source = IPAddress.v4(IPv4Address(IPv4Header.u32(b, q + 12)))
        let destination = IPAddress.v4(IPv4Address(IPv4Header.u32(b, q + 16)))
        let p = q + ihl, available = end - p
        switch proto {
        case 50:
            guard fragmentOffset == 0 else { throw .fragmentQuoted }
            guard available >= 8 else { throw .quoteTooShort }
            return QuotedPacket(source: source, destination: destination, totalLength: total, proto: 50,
                                spi: IPv4Header.u32(b, p), sequence: IPv4Header.u32(b, p + 4),
                                dontFragment: dontFragment)
        case 51:
            guard fragmentOffset == 0 else { throw .fragmentQuoted }
            // Next header, length and reserved, then SPI and sequence number.
            guard available >= 12 else { throw .quoteTooShort }
            return QuotedPacket(source: source, destination: destination, totalLength: total, proto: 51,
                                spi: IPv4Header.u32(b, p + 4), sequence: IPv4Header.u32(b, p + 8),
                                dontFragment: dontFragment)
        default:
            guard available >= 4 else { throw .notIPsec }
            let sourcePort = IPv4Header.u16(b, p), destinationPort = IPv4Header.u16(b, p + 2)
            guard sourcePort == natTraversalPort else { throw .notIPsec }
            guard fragmentOffset == 0 else { throw .fragmentQuoted }
            guard available >= 16 else { throw .quoteTooShort }
            let spi = IPv4Header.u32(b, p + 8)
            guard spi != 0 else { throw .ikeQuoted }
            return QuotedPacket(source: source, destination: destination, totalLength: total, proto: 17,
                                sourcePort: sourcePort, destinationPort: destinationPort, spi: spi,
                                sequence: IPv4Header.u32(b, p + 12), dontFragment: dontFragment)
        }
    }
}

/// The ICMP "fragmentation needed" Keyway sends back to an inner sender whose DF packet does not
/// fit the SA's path (RFC 1191), built in place in the room before the packet.
public enum FragmentationNeededReply {
    /// RFC 1812 §4.3.2.3: the error with its quote fits 576 bytes.
    public static let maximumLength = 576
    static let headers = 28

    /// Whether RFC 1122 §3.2.2 allows an error about this packet: never about an ICMP error, a
    /// later fragment, or a packet from no one, a multicast or broadcast or loopback address.
    public static func allowed(_ buffer: [UInt8], start: Int, header: IPv4Header) -> Bool {
        let s = header.source
        guard s != 0, s != 0xffff_ffff, s >> 28 != 0xe, s >> 24 != 127, header.flagsAndOffset & 0x1fff == 0 else {
            return false
        }
        if header.proto == 1, header.totalLength >= header.headerLength + 1 {
            // Errors (destination unreachable, source quench, redirect, time exceeded, parameter problem).
            return ![3, 4, 5, 11, 12].contains(buffer[start + header.headerLength])
        }
        return true
    }

    /// Writes the error for the packet at `buffer[start...]` (its header already parsed) into the 28
    /// bytes before it, quoting the packet's first bytes, from the packet's destination to its
    /// source (an address the sender routes through us and that is not ours, so the kernel
    /// accepts it from the TUN device). Returns where the error lies, or nil without room.
    public static func build(_ buffer: inout [UInt8], packetAt start: Int, header: IPv4Header,
                             mtu: Int) -> (start: Int, length: Int)? {
        let at = start - headers
        guard at >= 0 else { return nil }
        let quote = min(header.totalLength, maximumLength - headers)
        IPv4Header.write(into: &buffer, at: at, tos: 0xc0, totalLength: headers + quote, identification: 0,
                         flagsAndOffset: 0,
                         ttl: 64, proto: 1, source: header.destination, destination: header.source)
        let icmp = at + 20
        buffer[icmp] = 3; buffer[icmp + 1] = 4
        buffer[icmp + 2] = 0; buffer[icmp + 3] = 0
        buffer[icmp + 4] = 0; buffer[icmp + 5] = 0
        IPv4Header.put16(&buffer, icmp + 6, UInt16(clamping: mtu))
        IPv4Header.put16(&buffer, icmp + 2, ~InternetChecksum.sum(buffer, start: icmp, count: 8 + quote))
        return (at, headers + quote)
    }
}

/// How many "fragmentation needed" errors Keyway sends: at most `perSource` a second to one
/// sender and `perSecond` in all (RFC 1812 §4.3.2.8 asks for a limit). Holds at most `perSecond`
/// entries, emptied each second.
public struct ICMPRateLimit: Sendable {
    public let perSource: Int
    public let perSecond: Int
    private var second: UInt64 = .max
    private var sent = 0
    private var bySource: [IPAddress: Int] = [:]

    public init(perSource: Int = 10, perSecond: Int = 100) {
        self.perSource = perSource
        self.perSecond = perSecond
    }

    public mutating func allow(_ source: IPAddress, now: UInt64) -> Bool {
        if now != second {
            second = now
            sent = 0
            bySource.removeAll(keepingCapacity: true)
        }
        guard sent < perSecond, bySource[source, default: 0] < perSource else { return false }
        sent += 1
        bySource[source, default: 0] += 1
        return true
    }

    public var sourcesThisSecond: Int { bySource.count }
}
