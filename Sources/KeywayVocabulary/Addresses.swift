/// The address families Keyway speaks. IPv6 will be a second case: new types take the family as
/// a case rather than assuming IPv4.
public enum AddressFamily: UInt8, Sendable, CaseIterable {
    case ipv4 = 4
}

/// An IPv4 address in host byte order.
public struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    /// Strict dotted quad: four decimal parts of at most three digits, each 0...255.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }), let b = UInt8(p) else {
                return nil
            }
            v = v << 8 | UInt32(b)
        }
        value = v
    }

    /// Network byte order, as on the wire.
    public var bytes: [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    public var description: String { "\(value >> 24).\(value >> 16 & 255).\(value >> 8 & 255).\(value & 255)" }

    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.value < b.value }

    /// 0.0.0.0: "not set" in RouterOS's printouts.
    public static let any = IPv4Address(0)

    /// Dotted-quad text of a host-order value, for code that still carries raw numbers.
    public static func text(_ value: UInt32) -> String { IPv4Address(value).description }
}

/// An address of any family Keyway speaks.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(IPv4Address)

    public var family: AddressFamily {
        switch self {
        case .v4: return .ipv4
        }
    }

    public var description: String {
        switch self {
        case .v4(let a): return a.description
        }
    }
}

/// An IPv4 network: the address is kept masked to the prefix length (0...32).
public struct IPv4Prefix: Hashable, Sendable, CustomStringConvertible {
    public let address: IPv4Address
    public let length: Int

    /// Clamps the length to 0...32 and masks the address (10.1.2.3/24 is 10.1.2.0/24).
    public init(_ address: IPv4Address, length: Int) {
        let l = max(0, min(32, length))
        self.length = l
        self.address = IPv4Address(address.value & Self.mask(l))
    }

    public init(_ value: UInt32, length: Int) { self.init(IPv4Address(value), length: length) }

    /// `a.b.c.d/n`, or a bare address for /32.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let a = IPv4Address(parts[0]) else { return nil }
        var l = 32
        if parts.count == 2 {
            guard parts[1].count <= 2, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }),
                  let n = Int(parts[1]), n <= 32 else { return nil }
            l = n
        }
        self.init(a, length: l)
    }

    public static func host(_ address: IPv4Address) -> IPv4Prefix { IPv4Prefix(address, length: 32) }
    /// 0.0.0.0/0: every address.
    public static let all = IPv4Prefix(IPv4Address.any, length: 0)

    public static func mask(_ length: Int) -> UInt32 {
        length <= 0 ? 0 : length >= 32 ? ~0 : ~UInt32(0) << UInt32(32 - length)
    }
    public var mask: UInt32 { Self.mask(length) }
    public var isAll: Bool { length == 0 }

    public func contains(_ a: IPv4Address) -> Bool { a.value & mask == address.value }
    /// Hot-path form for code holding raw header values.
    public func contains(_ value: UInt32) -> Bool { value & mask == address.value }
    /// Every address of `other` is inside this prefix.
    public func covers(_ other: IPv4Prefix) -> Bool { length <= other.length && contains(other.address) }
    public func overlaps(_ other: IPv4Prefix) -> Bool { covers(other) || other.covers(self) }

    public var description: String { "\(address)/\(length)" }
}
