/// Messages whose size follows the configuration or the SA count (the pushed configurations, the
/// state reports, the console's commands and replies, counters) can outgrow one datagram. They
/// travel as pages: each a `Page` frame of its own, under the one-datagram-per-message rule,
/// numbered within a stream (a per-sender generation), carrying the paged message's type, its
/// total length and its index. The receiver (`PageAssembler`) checks the paged type against the
/// channel's allowlist on every page, bounds the whole by that type's limit before it keeps a
/// byte, holds at most one message in assembly per link, and decodes the message strictly only
/// once its last page is in: nothing acts on half a configuration. A page out of order, of
/// another stream or inconsistent with the first drops what was being assembled.
public struct Page: WireMessage {
    public static let type = MessageType.page
    /// stream u32, paged type u16, index u32, count u32, total u32, chunk length u32.
    public static let headerSize = 22
    /// Bytes of the paged body per page (every page but the last carries exactly this many).
    public static let chunkCapacity = FrameHeader.maximumBody - headerSize

    /// The sender's number for this paged message: pages of one message share it.
    public var stream: UInt32
    public var pagedType: MessageType
    public var index: UInt32
    public var count: UInt32
    /// Length of the whole paged body.
    public var totalLength: UInt32
    public var chunk: [UInt8]

    public init(stream: UInt32, pagedType: MessageType, index: UInt32, count: UInt32, totalLength: UInt32,
                chunk: [UInt8]) {
        self.stream = stream; self.pagedType = pagedType; self.index = index; self.count = count
        self.totalLength = totalLength; self.chunk = chunk
    }

    public func encode(to w: inout WireWriter) {
        w.u32(stream); w.u16(pagedType.rawValue); w.u32(index); w.u32(count); w.u32(totalLength); w.data(chunk)
    }

    /// Strict: only a type that may be paged, within its limit, split exactly as `Paging.frames` splits.
    public init(from r: inout WireReader) throws(WireError) {
        stream = try r.u32()
        let raw = try r.u16()
        guard let type = MessageType(rawValue: raw) else { throw .unknownType(raw) }
        guard let limit = Paging.maximumBytes(type) else { throw .invalidEnum(field: "page.type", value: UInt32(raw)) }
        pagedType = type
        index = try r.u32(); count = try r.u32(); totalLength = try r.u32()
        guard Int(totalLength) <= limit else { throw .overlongLength(declared: Int(totalLength), limit: limit) }
        // A message that fits one frame is never paged.
        guard totalLength > UInt32(FrameHeader.maximumBody) else {
            throw .invalidEnum(field: "page.total", value: totalLength)
        }
        guard Int(count) == Paging.pageCount(Int(totalLength)) else {
            throw .invalidEnum(field: "page.count", value: count)
        }
        guard index < count else { throw .invalidEnum(field: "page.index", value: index) }
        let expected = index + 1 < count ? Self.chunkCapacity : Int(totalLength) - Int(count - 1) * Self.chunkCapacity
        chunk = try r.data(limit: Self.chunkCapacity)
        guard chunk.count == expected else {
            throw .invalidEnum(field: "page.chunk-length", value: UInt32(chunk.count))
        }
    }
}

public enum Paging {
    /// The largest body each type may reach when paged; a type without one is never paged.
    public static func maximumBytes(_ type: MessageType) -> Int? {
        switch type {
        // `print detail`, `--json`, `export` of 100,000 policies; installed-sa of every SA.
        case .consoleReply: return 128 << 20
        // A script of 100,000 policies as one transaction (administrators; see ControlServer).
        case .consoleCommand: return 32 << 20
        // Four per-policy counters for each policy that saw traffic.
        case .counterReply: return 32 << 20
        case .datapathConfig: return 32 << 20
        case .policyAuthority: return 16 << 20
        // Peers carry their certificates.
        case .ikeConfig: return 64 << 20
        case .datapathState: return 32 << 20
        case .ikeState: return 16 << 20
        case .generatedPolicySet: return 1 << 20
        default: return nil
        }
    }

    public static func pageCount(_ totalLength: Int) -> Int {
        (totalLength + Page.chunkCapacity - 1) / Page.chunkCapacity
    }

    /// The datagrams that carry `message`: one frame when it fits, otherwise its pages (stream
    /// `stream`), each carrying `requestID`. A message of a type that may not be paged, or over
    /// its type's limit, is encoded as one frame all the same: the receiver refuses it, as it
    /// would any over-long datagram, and the sender learns nothing that could mislead it.
    public static func frames(_ message: Message, requestID: UInt32 = 0, stream: UInt32) -> [[UInt8]] {
        var body = WireWriter()
        message.encodeBody(to: &body)
        let bytes = body.bytes
        guard bytes.count > FrameHeader.maximumBody, let limit = maximumBytes(message.type), bytes.count <= limit else {
            return [Frame.frame(type: message.type, body: bytes, requestID: requestID)]
        }
        let count = pageCount(bytes.count)
        var out: [[UInt8]] = []
        out.reserveCapacity(count)
        for index in 0..<count {
            let start = index * Page.chunkCapacity
            let page = Page(stream: stream, pagedType: message.type, index: UInt32(index), count: UInt32(count),
                            totalLength: UInt32(bytes.count),
                            chunk: Array(bytes[start..<min(bytes.count, start + Page.chunkCapacity)]))
            out.append(Frame.encode(.page(page), requestID: requestID))
        }
        return out
    }

    /// Whether a newer message of this type makes a queued, unsent older one pointless: each
    /// carries the whole of what it describes (a configuration, a state report, a set).
    public static func supersedes(_ type: MessageType) -> Bool {
        switch type {
        case .datapathConfig, .ikeConfig, .policyAuthority, .datapathState, .ikeState, .generatedPolicySet,
             .hostAddresses, .refusalReport, .accessPolicy:
            return true
        default:
            return false
        }
    }
}

/// Reassembles paged messages arriving on one link (pure; `Link` and the `keyway` client own one).
/// At most one message is in assembly at a time; its memory is bounded by its type's limit (or
/// the tighter one the receiver set for that type), declared by the first page before any of it
/// is kept.
public struct PageAssembler: Sendable {
    private struct Assembly: Sendable {
        var stream: UInt32
        var type: MessageType
        var count: UInt32
        var totalLength: UInt32
        var requestID: UInt32
        var next: UInt32
        var body: [UInt8]
    }

    private var assembly: Assembly?
    /// Tighter limits per type than `Paging.maximumBytes` (the monitor's for read-only operators).
    public var limits: [MessageType: Int] = [:]
    /// Bytes held for the message in assembly.
    public var heldBytes: Int { assembly?.body.count ?? 0 }

    public init() {}

    /// One page, already allowed on this channel (Frame.decode checked its paged type). Returns the
    /// whole message once its last page is in, nil while more are due. A throw drops what was
    /// being assembled.
    public mutating func accept(_ page: Page, requestID: UInt32) throws(WireError) -> Envelope? {
        if page.index == 0 {
            if let limit = limits[page.pagedType], Int(page.totalLength) > limit {
                assembly = nil
                throw .overlongLength(declared: Int(page.totalLength), limit: limit)
            }
            let abandoned = assembly
            var body: [UInt8] = []
            body.reserveCapacity(Int(page.totalLength))
            assembly = Assembly(stream: page.stream, type: page.pagedType, count: page.count,
                                totalLength: page.totalLength, requestID: requestID, next: 0, body: body)
            // A sender starts a message only after finishing the last: one left unfinished is refused.
            if let abandoned {
                try take(page)
                throw .unexpectedPage("\(abandoned.type) (stream \(abandoned.stream)) ended after page "
                                      + "\(abandoned.next) of \(abandoned.count)")
            }
        }
        return try take(page, requestID: requestID)
    }

    @discardableResult
    private mutating func take(_ page: Page, requestID: UInt32? = nil) throws(WireError) -> Envelope? {
        guard var a = assembly else {
            throw .unexpectedPage("page \(page.index) of \(page.pagedType) without its first")
        }
        guard page.stream == a.stream, page.pagedType == a.type, page.count == a.count,
              page.totalLength == a.totalLength, page.index == a.next, requestID.map({ $0 == a.requestID }) ?? true
        else {
            assembly = nil
            throw .unexpectedPage("page \(page.index) of \(page.pagedType) (stream \(page.stream)) while page "
                                  + "\(a.next) of \(a.type) (stream \(a.stream)) was due")
        }
        assembly = nil
        a.body += page.chunk
        a.next += 1
        guard a.next == a.count else {
            assembly = a
            return nil
        }
        return try Frame.decodeAssembled(type: a.type, body: a.body, requestID: a.requestID)
    }
}
