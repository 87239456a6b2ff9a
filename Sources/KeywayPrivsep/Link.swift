import KeywaySystem
import KeywayWire

/// One end of a SOCK_SEQPACKET link to another Keyway process.
public final class Link {
    public let peer: Role
    public let socket: Descriptor
    /// What the peer said about itself, once it has.
    public var hello: Hello?

    public init(peer: Role, socket: Descriptor) {
        self.peer = peer
        self.socket = socket
    }

    public func send(_ message: Message, requestID: UInt32 = 0, descriptors: [Int32] = []) throws(SystemError) {
        try SeqPacket.send(socket, Frame.encode(message, requestID: requestID), descriptors: descriptors)
    }
}

/// Counts accepted and rejected messages per reason; shared by every process's loop.
public struct WireCounters: Sendable {
    public private(set) var values: [String: UInt64] = [:]

    public init() {}

    public mutating func accepted() { values["wire-accepted", default: 0] += 1 }
    public mutating func rejected(_ error: WireError) { values["wire-rejected-\(error.kind)", default: 0] += 1 }
    public mutating func bump(_ name: String) { values[name, default: 0] += 1 }

    public var asCounters: [Counter] { values.sorted { $0.key < $1.key }.map { Counter(name: $0.key, value: $0.value) } }
}
