import KeywayVocabulary

/// The MTU of the local interface toward one outer destination (keywayd's route look-up).
public struct OuterPath: Sendable, Equatable {
    public var destination: IPAddress
    public var mtu: UInt16

    public init(destination: IPAddress, mtu: UInt16) { self.destination = destination; self.mtu = mtu }
}

/// keywayd to keyway-datapath: how large an outer packet may leave toward each peer, from the
/// routes and interfaces only keywayd can read, and the MTU it set on the TUN device. Sent at
/// start and whenever either changes; replaces the previous one.
public struct OuterPaths: WireMessage {
    public static let type = MessageType.outerPaths
    public static let maximumPaths = 1024
    /// No interface is smaller than IPv4's minimum.
    public static let smallestMTU: UInt16 = 68

    /// For destinations not listed.
    public var defaultMTU: UInt16
    public var paths: [OuterPath]
    public var tunMTU: UInt16

    public init(defaultMTU: UInt16, paths: [OuterPath], tunMTU: UInt16) {
        self.defaultMTU = defaultMTU; self.paths = paths; self.tunMTU = tunMTU
    }

    public func encode(to w: inout WireWriter) {
        w.u16(defaultMTU); w.u16(tunMTU)
        w.count(paths.count); for p in paths { w.ipAddress(p.destination); w.u16(p.mtu) }
    }

    public init(from r: inout WireReader) throws(WireError) {
        defaultMTU = try Self.mtu(&r, "outer-paths.default")
        tunMTU = try Self.mtu(&r, "outer-paths.tun")
        var list: [OuterPath] = []
        for _ in 0..<(try r.count(limit: Self.maximumPaths)) {
            list.append(OuterPath(destination: try r.ipAddress("outer-paths.destination"),
                                  mtu: try Self.mtu(&r, "outer-paths.mtu")))
        }
        paths = list
    }

    private static func mtu(_ r: inout WireReader, _ field: String) throws(WireError) -> UInt16 {
        let v = try r.u16()
        guard v >= smallestMTU else { throw .invalidEnum(field: field, value: UInt32(v)) }
        return v
    }
}
