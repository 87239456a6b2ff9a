/// What a policy matches: source and destination networks, optionally one protocol and ports.
public struct TrafficSelector: Hashable, Sendable, CustomStringConvertible {
    public var source: IPv4Prefix
    public var destination: IPv4Prefix
    public var sourcePort: UInt16?
    public var destinationPort: UInt16?
    /// nil: any protocol.
    public var proto: UInt8?

    public init(source: IPv4Prefix, destination: IPv4Prefix, sourcePort: UInt16? = nil, destinationPort: UInt16? = nil,
                proto: UInt8? = nil) {
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.proto = proto
    }

    /// A port in the selector matches only TCP/UDP packets whose ports are known and equal.
    public func matches(source s: UInt32, destination d: UInt32, proto p: UInt8, ports: (UInt16, UInt16)?) -> Bool {
        guard source.contains(s), destination.contains(d) else { return false }
        if let want = proto, want != p { return false }
        if let sp = sourcePort { guard let ports, ports.0 == sp else { return false } }
        if let dp = destinationPort { guard let ports, ports.1 == dp else { return false } }
        return true
    }

    /// The selector the peer's traffic under the same policy has: sides swapped.
    public var mirrored: TrafficSelector {
        TrafficSelector(source: destination, destination: source, sourcePort: destinationPort,
                        destinationPort: sourcePort, proto: proto)
    }

    public var description: String {
        func side(_ p: IPv4Prefix, _ port: UInt16?) -> String { port.map { "\(p):\($0)" } ?? p.description }
        return "\(side(source, sourcePort)) -> \(side(destination, destinationPort))"
            + (proto.map { " proto \($0)" } ?? "")
    }
}
