/// What IPsec adds to a packet, and so what fits a path: the arithmetic keywayd uses for the TUN
/// device's MTU and the datapath for each SA (pure, no I/O).
///
/// ESP (RFC 4303): SPI and sequence (8 bytes), the IV, the payload padded with its two trailer
/// bytes to the cipher's alignment, the ICV. AH (RFC 4302): 12 bytes and the ICV, rounded to 4.
/// Tunnel mode adds an outer header; ESP in UDP (RFC 3948) 8 bytes more.
public struct IPsecOverhead: Equatable, Sendable {
    /// The outer header's family (its size: 20 bytes for IPv4 without options).
    public var family: AddressFamily
    public var tunnel: Bool
    /// ESP's IV, ICV and alignment; nil when the packet carries no ESP.
    public var esp: (iv: Int, icv: Int, alignment: Int)?
    /// The whole AH header (0: none).
    public var ahLength: Int
    /// ESP in UDP: the UDP header.
    public var udp: Bool

    public init(family: AddressFamily = .ipv4, tunnel: Bool, esp: (iv: Int, icv: Int, alignment: Int)?,
                ahLength: Int = 0,
                udp: Bool = false) {
        self.family = family; self.tunnel = tunnel; self.esp = esp; self.ahLength = ahLength; self.udp = udp
    }

    /// From algorithm names (what keywayd knows of a configured policy).
    public init(family: AddressFamily = .ipv4, tunnel: Bool, encryption: EncryptionAlgorithm?,
                espIntegrity: IntegrityAlgorithm = .null, ahIntegrity: IntegrityAlgorithm? = nil, udp: Bool = false) {
        let esp = encryption.map { e in
            (iv: e.ivLength, icv: e.isAEAD ? e.aeadICVLength : espIntegrity.icvLength, alignment: max(4, e.blockSize))
        }
        self.init(family: family, tunnel: tunnel, esp: esp, ahLength: ahIntegrity.map(Self.ahHeaderLength) ?? 0,
                  udp: udp)
    }

    /// RFC 4302: 12 fixed bytes and the ICV, a multiple of 4 bytes long over IPv4.
    public static func ahHeaderLength(_ integrity: IntegrityAlgorithm) -> Int { (12 + integrity.icvLength + 3) / 4 * 4 }

    public static func == (a: IPsecOverhead, b: IPsecOverhead) -> Bool {
        a.family == b.family && a.tunnel == b.tunnel && a.ahLength == b.ahLength && a.udp == b.udp
            && a.esp?.iv == b.esp?.iv && a.esp?.icv == b.esp?.icv && a.esp?.alignment == b.esp?.alignment
    }

    /// The outer header Keyway writes in tunnel mode.
    public var outerHeaderLength: Int {
        switch family {
        case .ipv4: return 20
        }
    }

    /// The outer packet's length for an inner packet of `innerLength` bytes whose own header is
    /// `innerHeaderLength` bytes (transport mode keeps that header and protects what follows).
    public func outerLength(inner innerLength: Int, innerHeaderLength: Int = 20) -> Int {
        let header = tunnel ? outerHeaderLength : innerHeaderLength
        let protected = tunnel ? innerLength : max(0, innerLength - innerHeaderLength)
        var body = protected
        if let esp {
            let align = max(1, esp.alignment)
            body = 8 + esp.iv + (protected + 2 + align - 1) / align * align + esp.icv
        }
        return header + (udp ? 8 : 0) + ahLength + body
    }

    /// The largest inner packet (with a header of `innerHeaderLength` bytes) whose outer packet
    /// is at most `mtu` bytes; 0 when none is.
    public func largestInner(fitting mtu: Int, innerHeaderLength: Int = 20) -> Int {
        let header = tunnel ? outerHeaderLength : innerHeaderLength
        var room = mtu - header - (udp ? 8 : 0) - ahLength
        if let esp {
            let align = max(1, esp.alignment)
            room -= 8 + esp.iv + esp.icv
            guard room >= align else { return 0 }
            room = room / align * align - 2
        }
        guard room > 0 else { return 0 }
        return tunnel ? room : room + innerHeaderLength
    }

    /// What a packet of the largest size that fits `mtu` gains (what `installed-sa print` shows).
    public func overhead(at mtu: Int) -> Int {
        let inner = largestInner(fitting: mtu)
        return inner > 0 ? mtu - inner : outerLength(inner: 20) - 20
    }

    /// The smallest largest-inner over every combination a policy may be keyed with: what the
    /// TUN device's MTU must respect for it. An empty list stands for "anything": the worst the
    /// vocabulary offers.
    public static func largestInner(fitting mtu: Int, tunnel: Bool, esp: Bool, ah: Bool,
                                    encryption: [EncryptionAlgorithm],
                                     integrity: [IntegrityAlgorithm], udp: Bool,
                                     family: AddressFamily = .ipv4) -> Int {
        let ciphers: [EncryptionAlgorithm?] = esp
            ? (encryption.isEmpty ? EncryptionAlgorithm.allCases : encryption) : [nil]
        let macs = integrity.isEmpty ? IntegrityAlgorithm.allCases : integrity
        var smallest = Int.max
        for cipher in ciphers {
            for mac in macs {
                let o = IPsecOverhead(family: family, tunnel: tunnel, encryption: cipher, espIntegrity: mac,
                                      ahIntegrity: ah ? mac : nil, udp: udp && esp)
                smallest = min(smallest, o.largestInner(fitting: mtu))
            }
        }
        return smallest == .max ? 0 : smallest
    }
}

/// The path MTU rules Keyway applies per address family (RFC 4301 §8, RFC 1191).
public enum PathMTURule {
    /// No ICMP lowers a path below this: RFC 4301 §8.2.1 lets an implementation ignore smaller
    /// values, so a forged "fragmentation needed" cannot shrink the path to nothing.
    public static func floor(_ family: AddressFamily) -> Int {
        switch family {
        case .ipv4: return 576
        }
    }

    /// The smallest MTU an interface of the family may have.
    public static func minimum(_ family: AddressFamily) -> Int {
        switch family {
        case .ipv4: return 68
        }
    }

    /// A lowered path MTU goes back up after this long (RFC 1191 §6.3 suggests ten minutes).
    public static let ageingSeconds: UInt64 = 600

    /// RFC 1191 §7's plateaus: where a router's ICMP names no MTU, the next one below the packet.
    public static let plateaus = [65_535, 32_000, 17_914, 8_166, 4_352, 2_002, 1_492, 1_006, 508, 296, 68]

    public static func plateau(below length: Int) -> Int { plateaus.first { $0 < length } ?? 68 }

    /// IPv4 and TCP headers without options: an MSS is the packet size less these.
    public static func tcpHeaders(_ family: AddressFamily) -> Int {
        switch family {
        case .ipv4: return 40
        }
    }
}

/// `/ip ipsec policy tcp-mss` (Keyway's extension): what happens to the MSS option of TCP SYNs
/// entering or leaving the tunnel.
public enum TCPMSSClamp: Hashable, Sendable, CustomStringConvertible {
    /// Lowered to fit the SA's path MTU (the default).
    case clampToPathMTU
    /// Left alone.
    case off
    /// Lowered to at most this (and still to fit the path).
    case atMost(UInt16)

    /// An MSS smaller than this cannot carry TCP's own options (RFC 6691's examples start at 536
    /// for hosts; paths of 576 bytes less IPsec need less).
    public static let smallest: UInt16 = 88

    public var description: String {
        switch self {
        case .clampToPathMTU: return "clamp-to-pmtu"
        case .off: return "off"
        case .atMost(let n): return String(n)
        }
    }

    /// `clamp-to-pmtu`, `off`, or a number from 88 to 65495.
    public init?(_ text: String) {
        switch text {
        case "clamp-to-pmtu": self = .clampToPathMTU
        case "off": self = .off
        default:
            guard text.allSatisfy({ $0.isASCII && $0.isNumber }), text.count <= 5, let n = Int(text),
                  n >= Int(Self.smallest), n <= 65_495 else { return nil }
            self = .atMost(UInt16(n))
        }
    }

    /// The MSS a SYN may carry on a path whose largest inner packet is `largestInner` bytes; nil: leave it.
    public func limit(largestInner: Int, family: AddressFamily = .ipv4) -> UInt16? {
        let fits = max(Int(Self.smallest), largestInner - PathMTURule.tcpHeaders(family))
        switch self {
        case .off: return nil
        case .clampToPathMTU: return UInt16(clamping: fits)
        case .atMost(let n): return UInt16(clamping: min(Int(n), fits))
        }
    }
}
