import KeywayAudit
import KeywaySystem
import KeywayWire

/// One end of a SOCK_SEQPACKET link to another Keyway process.
public final class Link {
    public let peer: Role
    public let socket: Descriptor
    /// What the peer said about itself, once it has.
    public var hello: Hello?
    /// The pid keywayd spawned on the other end (0: not known here). Audit events are attributed
    /// by it, never by what the peer says.
    public var processID: UInt32 = 0

    public init(peer: Role, socket: Descriptor) {
        self.peer = peer
        self.socket = socket
    }

    public func send(_ message: Message, requestID: UInt32 = 0, descriptors: [Int32] = []) throws(SystemError) {
        try SeqPacket.send(socket, Frame.encode(message, requestID: requestID), descriptors: descriptors)
    }

    /// What one read from the link gave.
    public enum Input {
        /// Decoded, and allowed on this channel.
        case message(Envelope, descriptors: [Descriptor])
        /// Refused: counted and audited by the caller; the link stays up.
        case rejected(WireError)
        /// Nothing waiting.
        case idle
        /// The peer went away (or the socket failed).
        case closed
    }

    /// Reads one datagram and decodes it strictly against what `receiver` accepts from this peer.
    /// Every process's loop reads its links through here.
    public func receive(as receiver: Role, wait: Bool = false) -> Input {
        let result: ReceiveResult
        do { result = try SeqPacket.receive(socket, dontWait: !wait) } catch { return .closed }
        switch result {
        case .wouldBlock: return .idle
        case .closed: return .closed
        case .datagram(let d):
            guard !d.truncated else { return .rejected(.truncatedDatagram) }
            do { return .message(try Frame.decode(d.bytes, from: peer, to: receiver), descriptors: d.descriptors) } catch {
                return .rejected(error)
            }
        }
    }
}

/// Counts accepted and rejected messages per reason; shared by every process's loop.
public struct WireCounters: Sendable {
    public private(set) var values: [String: UInt64] = [:]
    /// Rejected messages by the process that sent them (for `keyway status`).
    public private(set) var rejectedBySender: [Role: UInt64] = [:]

    public init() {}

    public mutating func accepted() { values["wire-accepted", default: 0] += 1 }
    public mutating func rejected(_ error: WireError) { values["wire-rejected-\(error.kind)", default: 0] += 1 }
    public mutating func bump(_ name: String) { values[name, default: 0] += 1 }

    /// A refused message: counted under its reason and audited at a bounded rate. Every process
    /// records rejections through here.
    public mutating func reject(_ error: WireError, from peer: Role, audit: AuditLog) {
        rejected(error)
        rejectedBySender[peer, default: 0] += 1
        audit.rateLimitedEvent(key: "wire-\(error.kind)", .warning, msgID: "wire-reject",
                               "dropped message from \(peer): \(error)", [("from", peer.description), ("reason", error.kind)])
    }

    public var asCounters: [Counter] { values.sorted { $0.key < $1.key }.map { Counter(name: $0.key, value: $0.value) } }
}
