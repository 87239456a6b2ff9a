/// `u16 version | u16 type | u32 body length | u32 request id`, big-endian, then the body.
public struct FrameHeader: Equatable, Sendable {
    public static let size = 12
    /// 2: lists that grow with the configuration carry 32-bit counts, and large messages are paged.
    public static let currentVersion: UInt16 = 2
    /// No Keyway message is larger; anything longer is refused before it is read.
    public static let maximumBody = 65536 - size

    public var version: UInt16
    public var type: UInt16
    public var bodyLength: UInt32
    /// 0 for events; otherwise echoed in the reply.
    public var requestID: UInt32
}

/// A decoded message with its request id.
public struct Envelope: Equatable, Sendable {
    public var requestID: UInt32
    public var message: Message

    public init(_ message: Message, requestID: UInt32 = 0) {
        self.message = message
        self.requestID = requestID
    }
}

public enum Frame {
    /// One frame, whatever its size (`Paging.frames` splits what does not fit).
    public static func encode(_ message: Message, requestID: UInt32 = 0) -> [UInt8] {
        var body = WireWriter()
        message.encodeBody(to: &body)
        return frame(type: message.type, body: body.bytes, requestID: requestID)
    }

    static func frame(type: MessageType, body: [UInt8], requestID: UInt32) -> [UInt8] {
        var w = WireWriter(reserving: FrameHeader.size + body.count)
        w.u16(FrameHeader.currentVersion)
        w.u16(type.rawValue)
        w.u32(UInt32(clamping: body.count))
        w.u32(requestID)
        return w.bytes + body
    }

    public static func decodeHeader(_ bytes: [UInt8]) throws(WireError) -> FrameHeader {
        guard bytes.count >= FrameHeader.size else { throw .truncatedHeader(received: bytes.count) }
        var r = WireReader(Array(bytes.prefix(FrameHeader.size)))
        let header = FrameHeader(version: try r.u16(), type: try r.u16(), bodyLength: try r.u32(),
                                 requestID: try r.u32())
        guard header.version == FrameHeader.currentVersion else { throw .wrongVersion(header.version) }
        return header
    }

    /// Strict decoding: one datagram is exactly one message, nothing more, nothing less.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> Envelope {
        try decode(bytes, accepting: nil)
    }

    /// Decodes with the channel's allowlist applied to the header's type, before the body is parsed.
    public static func decode(_ bytes: [UInt8], from sender: Role, to receiver: Role) throws(WireError) -> Envelope {
        try decode(bytes, accepting: (sender, receiver))
    }

    private static func decode(_ bytes: [UInt8], accepting channel: (Role, Role)?) throws(WireError) -> Envelope {
        let header = try decodeHeader(bytes)
        guard let type = MessageType(rawValue: header.type) else { throw .unknownType(header.type) }
        if let (sender, receiver) = channel, !ChannelPolicy.accepts(type, from: sender, to: receiver) {
            throw .notAllowed(type: type, from: sender, to: receiver)
        }
        // A page is allowed where the message it carries is: its type is checked here, on every
        // page, before anything of it is kept.
        if type == .page, let (sender, receiver) = channel, bytes.count >= FrameHeader.size + 6 {
            let raw = UInt16(bytes[FrameHeader.size + 4]) << 8 | UInt16(bytes[FrameHeader.size + 5])
            guard let paged = MessageType(rawValue: raw) else { throw .unknownType(raw) }
            guard paged != .page, ChannelPolicy.accepts(paged, from: sender, to: receiver) else {
                throw .notAllowed(type: paged, from: sender, to: receiver)
            }
        }
        let declared = Int(header.bodyLength)
        guard declared <= FrameHeader.maximumBody else {
            throw .overlongLength(declared: declared, limit: FrameHeader.maximumBody)
        }
        let present = bytes.count - FrameHeader.size
        guard declared <= present else { throw .shortBody(needed: declared, remaining: present) }
        guard declared == present else { throw .trailingBytes(count: present - declared) }
        var r = WireReader(bytes, from: FrameHeader.size, to: bytes.count)
        let message = try Message.decodeBody(type, from: &r)
        try r.expectEnd()
        return Envelope(message, requestID: header.requestID)
    }

    /// The body of a paged message, whole: decoded as strictly as one frame.
    static func decodeAssembled(type: MessageType, body: [UInt8], requestID: UInt32) throws(WireError) -> Envelope {
        var r = WireReader(body)
        let message = try Message.decodeBody(type, from: &r)
        try r.expectEnd()
        return Envelope(message, requestID: requestID)
    }
}
