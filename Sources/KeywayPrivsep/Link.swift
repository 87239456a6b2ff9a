import KeywayAudit
import KeywaySystem
import SystemPackage
import KeywayWire

/// One end of a SOCK_SEQPACKET link to another Keyway process. Messages too large for one
/// datagram go out as pages and come back together here (Paging.swift); what the socket cannot
/// take at once waits in a bounded outbox that the owner's loop drains when the socket is
/// writable, so a large push is never cut short by a full socket.
public final class Link {
    public let peer: Role
    public let socket: Descriptor
    /// What the peer said about itself, once it has.
    public var hello: Hello?
    /// Reassembles paged messages from the peer; its limits may be tightened per type.
    public var assembler = PageAssembler()

    /// One message waiting to go: its frames, how many already went.
    private struct Outgoing {
        var type: MessageType
        var frames: [[UInt8]]
        var sent: Int
    }
    private var outbox: [Outgoing] = []
    private var outboxBytes = 0
    private var nextStream: UInt32 = 1
    /// What may wait at most: a little more than the largest message any link carries.
    public static let outboxLimit = 160 << 20
    /// The pid keywayd spawned on the other end (0: not known here). Audit events are attributed
    /// by it, never by what the peer says.
    public var processID: UInt32 = 0

    public init(peer: Role, socket: Descriptor) {
        self.peer = peer
        self.socket = socket
    }

    /// Whether frames wait for the socket to be writable (poll for it, then call `flush()`).
    public var hasPending: Bool { !outbox.isEmpty }
    /// Bytes waiting in the outbox.
    public var pendingBytes: Int { outboxBytes }

    /// Sends `message`, paged if it is too large for one datagram. What the socket cannot take now
    /// waits in order; a newer whole-state message (a configuration, a state report) replaces an
    /// older one of its type that has not started to go. Descriptors go only with a message that
    /// can leave at once. Throws when the link is broken or the outbox is full.
    public func send(_ message: Message, requestID: UInt32 = 0, descriptors: [Int32] = []) throws(SystemError) {
        if !descriptors.isEmpty {
            // A descriptor cannot wait: its number may be closed by the time the socket drains.
            guard outbox.isEmpty else {
                throw SystemError("sendmsg(descriptors behind queued frames)", errno: .wouldBlock)
            }
            try SeqPacket.send(socket, Frame.encode(message, requestID: requestID), descriptors: descriptors)
            return
        }
        let frames = Paging.frames(message, requestID: requestID, stream: nextStream)
        if frames.count > 1 { nextStream &+= 1 }
        if Paging.supersedes(message.type) {
            // Keep one that has begun (its receiver is assembling it); drop one that has not.
            for i in outbox.indices.reversed() where outbox[i].type == message.type && outbox[i].sent == 0 {
                outboxBytes -= outbox[i].frames.reduce(0) { $0 + $1.count }
                outbox.remove(at: i)
            }
        }
        let size = frames.reduce(0) { $0 + $1.count }
        guard outboxBytes + size <= Self.outboxLimit else {
            throw SystemError("sendmsg(outbox full)", errno: .noBufferSpace)
        }
        outbox.append(Outgoing(type: message.type, frames: frames, sent: 0))
        outboxBytes += size
        try flush()
    }

    /// Sends what waits, in order, until the socket would block. Throws when the link is broken
    /// (everything waiting is dropped then).
    public func flush() throws(SystemError) {
        while !outbox.isEmpty {
            let frame = outbox[0].frames[outbox[0].sent]
            do { try SeqPacket.send(socket, frame) } catch {
                if error.errno == .wouldBlock { return }
                outbox.removeAll()
                outboxBytes = 0
                throw error
            }
            outboxBytes -= frame.count
            outbox[0].sent += 1
            if outbox[0].sent == outbox[0].frames.count { outbox.removeFirst() }
        }
    }

    /// What one read from the link gave.
    public enum Input {
        /// Decoded, and allowed on this channel.
        case message(Envelope, descriptors: [Descriptor])
        /// A page of a message still being assembled: read on.
        case partial
        /// Refused: counted and audited by the caller; the link stays up.
        case rejected(WireError)
        /// Nothing waiting.
        case idle
        /// The peer went away (or the socket failed).
        case closed
    }

    /// Reads one datagram and decodes it strictly against what `receiver` accepts from this peer;
    /// pages are gathered until their message is whole. Every process's loop reads its links
    /// through here.
    public func receive(as receiver: Role, wait: Bool = false) -> Input {
        let result: ReceiveResult
        do { result = try SeqPacket.receive(socket, dontWait: !wait) } catch { return .closed }
        switch result {
        case .wouldBlock: return .idle
        case .closed: return .closed
        case .datagram(let d):
            guard !d.truncated else { return .rejected(.truncatedDatagram) }
            do {
                let envelope = try Frame.decode(d.bytes, from: peer, to: receiver)
                guard case .page(let page) = envelope.message else {
                    return .message(envelope, descriptors: d.descriptors)
                }
                // Pages carry no descriptors (those closed here, with the datagram).
                guard let whole = try assembler.accept(page, requestID: envelope.requestID) else { return .partial }
                return .message(whole, descriptors: [])
            } catch {
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
                               "dropped message from \(peer): \(error)",
                               [("from", peer.description), ("reason", error.kind)])
    }

    public var asCounters: [Counter] {
        values.sorted { $0.key < $1.key }.map { Counter(name: $0.key, value: $0.value) }
    }
}
