import KeywayCrypto

/// The datapath's packet work between the system calls, in batches and in place (sans-IO): where
/// the next TUN read goes, what each read becomes (segments sealed for the wire), and what each
/// packet from the network becomes (decrypted, coalesced for the TUN device). The process owns
/// the descriptors and moves the bytes; this owns the buffers and decides.
public final class PacketPipeline {
    public let engine: Datapath
    /// TUN reads and the segments split from them.
    public var outbound: PacketPool
    /// Packets from the network, decrypted in place.
    public var inbound: PacketPool
    public private(set) var coalescer = TCPCoalescer()
    /// The TUN device carries virtio-net headers (offloads on).
    public let offloads: Bool
    private var lengths: [Int]
    /// Segments split from TSO super-packets read from the TUN device.
    public private(set) var splitSegments: UInt64 = 0
    /// UDP datagrams that held several of the sender's (UDP GRO).
    public private(set) var joinedDatagrams: UInt64 = 0
    private var nextSlot = 0
    /// A read may become this many segments (64 KiB at the smallest MSS a sane path has).
    static let segmentsPerRead = 48

    public init(engine: Datapath, offloads: Bool, slots: Int = 96, receiveSlots: Int = 64) {
        self.engine = engine
        self.offloads = offloads
        outbound = PacketPool(slotCount: slots, packetCapacity: VirtioNetHeader.size + 65_535)
        inbound = PacketPool(slotCount: receiveSlots, packetCapacity: 65_535)
        receiveStarts = inbound.starts
        lengths = [Int](repeating: 0, count: slots)
    }

    // MARK: outbound

    /// Where the next TUN read goes (its virtio-net header first, when offloads are on) and how
    /// much it may hold; nil when the queued sends must go out first to free the slots.
    public func nextRead() -> (offset: Int, maximum: Int)? {
        guard nextSlot + 1 + Self.segmentsPerRead <= outbound.slotCount else { return nil }
        let header = offloads ? VirtioNetHeader.size : 0
        return (outbound.start(nextSlot) - header, header + 65_535)
    }

    /// The read of `length` bytes landed where `nextRead` said: each packet it holds goes
    /// through the SPD and is sealed in place; `visit` gets each decision (spans in `outbound`).
    public func processRead(length: Int, now: UInt64, visit: (Datapath.OutboundAction) -> Void) {
        guard let slots = TunRead.prepare(&outbound, slot: nextSlot, readLength: length, vnet: offloads,
                                          lengths: &lengths) else {
            visit(.drop(counter: "out-errors"))
            return
        }
        if slots.count > 1 { splitSegments &+= UInt64(slots.count) }
        for slot in slots {
            visit(engine.processOutbound(&outbound.bytes, start: outbound.start(slot), length: lengths[slot],
                                         capacity: outbound.packetCapacity + PacketRoom.tailroom, now: now))
        }
        nextSlot = slots.upperBound
    }

    /// The queued sends went out: every outbound slot is free again.
    public func sendsFlushed() { nextSlot = 0 }

    // MARK: inbound

    /// What to write to the TUN device: `count` bytes from `offset` of the buffer handed over
    /// with it (the virtio-net header included when offloads are on). The buffer is lent for the
    /// call only: the pipeline is using it.
    public struct TunWrite: Equatable {
        public let offset: Int
        public let count: Int
    }

    /// Receive slots' starts, for a batch receive.
    public let receiveStarts: [Int]

    /// Opens the packet at `inbound.bytes[start..<start+length]` (from a raw ESP/AH socket, or
    /// ESP in UDP from `udpSource`) and hands what is to be written to `write`; call
    /// `finishInbound` once the batch is done (coalesced packets go out then).
    public func processInbound(start: Int, length: Int, udpSource: UInt32? = nil, now: UInt64,
                               write: (TunWrite, [UInt8]) -> Void, dropped: (String) -> Void) {
        let action = udpSource.map { engine.processInboundUDP(&inbound.bytes, start: start, length: length,
                                                              source: $0, now: now) }
            ?? engine.processInbound(&inbound.bytes, start: start, length: length, now: now)
        switch action {
        case .drop(let counter): dropped(counter)
        case .deliver(let s, let n):
            guard offloads else { return write(TunWrite(offset: s, count: n), inbound.bytes) }
            coalescer.offer(&inbound, start: s, length: n) { w, pool, output in Self.emit(w, &pool, output, write) }
        }
    }

    /// A datagram from UDP 4500 at `inbound.bytes[start..<start+length]`: when the kernel joined
    /// several of the sender's (UDP GRO, `segmentSize` > 0) they lie back to back, each that long
    /// but the last. NAT keepalives end here; IKE (behind the non-ESP marker) goes to `ike` as a
    /// span of `inbound.bytes`; ESP is opened as `processInbound` does.
    public func processUDP(start: Int, length: Int, segmentSize: Int, source: UInt32, now: UInt64,
                           ike: (_ start: Int, _ length: Int) -> Void,
                           write: (TunWrite, [UInt8]) -> Void, dropped: (String) -> Void) {
        guard start >= 0, length > 0, start + length <= inbound.bytes.count else { return }
        let size = segmentSize > 0 ? min(segmentSize, length) : length
        if size < length { joinedDatagrams &+= 1 }
        var offset = 0
        for _ in 0...(length / size) where offset < length {
            let s = start + offset, n = min(size, length - offset)
            offset += n
            if n == 1 && inbound.bytes[s] == 0xff { continue }
            if n >= 4 && IPv4Header.u32(inbound.bytes, s) == 0 {
                ike(s, n)
                continue
            }
            processInbound(start: s, length: n, udpSource: source, now: now, write: write, dropped: dropped)
        }
    }

    /// The end of a batch from the network: what the coalescer still holds goes out.
    public func finishInbound(write: (TunWrite, [UInt8]) -> Void) {
        guard offloads else { return }
        coalescer.flush(&inbound) { w, pool, output in Self.emit(w, &pool, output, write) }
    }

    private static func emit(_ w: TCPCoalescer.Write, _ pool: inout PacketPool, _ output: [UInt8],
                             _ write: (TunWrite, [UInt8]) -> Void) {
        switch w {
        case .pool(let s, let n):
            // A packet alone: a zero header in the room before it (its outer headers were there).
            VirtioNetHeader().write(into: &pool.bytes, at: s - VirtioNetHeader.size)
            write(TunWrite(offset: s - VirtioNetHeader.size, count: n + VirtioNetHeader.size), pool.bytes)
        case .coalesced(let s, let n):
            write(TunWrite(offset: s - VirtioNetHeader.size, count: n + VirtioNetHeader.size), output)
        }
    }
}
