import KeywayCrypto
import KeywayDatapath
import KeywayVocabulary

/// The offloads done our side meet hostile bytes: a TUN read (virtio-net header and packet as a
/// host behind the appliance may shape them) split and sealed; a UDP 4500 datagram of any length
/// with any segment size the kernel might report (UDP GRO), opened; and a run of decrypted packets
/// (anything a peer holding the keys may send) through the TCP coalescer. It may drop anything,
/// but never crashes, never writes outside its buffers, and never writes more than it was given.
let key20 = Array(repeating: UInt8(0x24), count: 20)
let us: UInt32 = 0xc000_0201, peer: UInt32 = 0xc000_0202
let selector = TrafficSelector(source: IPv4Prefix(0x0a01_0000, length: 24), destination: IPv4Prefix(0x0a02_0000, length: 24))

func gcm(encrypt: Bool) -> ESPTransform? {
    try? ESPTransform(encryption: .aes128gcm, encryptionKey: Secret(key20), integrity: .null, integrityKey: nil,
                      encrypt: encrypt)
}

/// Sends from 10.1/24 to 10.2/24 in ESP in UDP; receives the mirror image.
nonisolated(unsafe) let sender: PacketPipeline = {
    let d = Datapath(policies: [SecurityPolicy(id: 1, selector: selector, action: .encrypt, tunnel: true, saSource: us,
                                               saDestination: peer)])
    if let t = gcm(encrypt: true) {
        d.installOutbound(SecurityAssociation(spi: 0x300, proto: .esp, source: us, destination: peer, tunnel: true,
                                              esp: t, udpEncapsulation: (4500, 4500), now: 0), policyID: 1)
    }
    return PacketPipeline(engine: d, offloads: true, slots: 64, receiveSlots: 2)
}()
nonisolated(unsafe) let receiver: PacketPipeline = {
    let d = Datapath(policies: [SecurityPolicy(id: 1, selector: selector.mirrored, action: .encrypt, tunnel: true,
                                               saSource: peer, saDestination: us)])
    if let t = gcm(encrypt: false) {
        d.installInbound(SecurityAssociation(spi: 0x300, proto: .esp, source: us, destination: peer, tunnel: true,
                                             esp: t, replayWindow: 1024, udpEncapsulation: (4500, 4500), now: 0),
                         policyID: 1)
    }
    return PacketPipeline(engine: d, offloads: true, slots: 64, receiveSlots: 4)
}()
nonisolated(unsafe) var clock: UInt64 = 0

/// A TUN write must lie inside the buffer it names and carry at most 64 KiB and a header.
func checked(_ w: PacketPipeline.TunWrite, _ bytes: [UInt8]) {
    precondition(w.offset >= 0 && w.count > 0 && w.offset + w.count <= bytes.count, "TUN write outside its buffer")
    precondition(w.count <= VirtioNetHeader.size + 65_535, "TUN write longer than a packet")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOffloads(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 3 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    clock += 1
    let selectorByte = bytes[0], rest = bytes.dropFirst(3)
    switch selectorByte % 3 {
    case 0:
        // A TUN read: the virtio-net header and packet exactly as given, sealed if it gets that far.
        guard let slot = sender.nextRead() else { sender.sendsFlushed(); return 0 }
        let n = min(rest.count, slot.maximum)
        for (i, b) in rest.prefix(n).enumerated() { sender.outbound.bytes[slot.offset + i] = b }
        sender.processRead(length: n, now: clock) { action in
            if case .sendUDP(let s, let length, _, _, _) = action {
                precondition(s >= 0 && s + length <= sender.outbound.bytes.count, "sealed packet outside the pool")
            }
        }
        if selectorByte & 0x80 != 0 { sender.sendsFlushed() }
    case 1:
        // A UDP 4500 datagram and the segment size the kernel would report with it.
        let segment = Int(bytes[1]) << 8 | Int(bytes[2])
        let start = receiver.receiveStarts[0]
        let n = min(rest.count, receiver.inbound.packetCapacity)
        for (i, b) in rest.prefix(n).enumerated() { receiver.inbound.bytes[start + i] = b }
        guard n > 0 else { return 0 }
        receiver.processUDP(start: start, length: n, segmentSize: segment, source: us, now: clock,
                            ike: { s, length in precondition(s >= start && s + length <= start + n, "IKE span") },
                            write: checked, dropped: { _ in })
        receiver.finishInbound(write: checked)
    default:
        // Decrypted packets as a peer may send them: chunks of the input, each offered in turn.
        var pool = PacketPool(slotCount: 8, packetCapacity: 2048)
        var coalescer = TCPCoalescer()
        let emit: (TCPCoalescer.Write, inout PacketPool, [UInt8]) -> Void = { w, p, output in
            switch w {
            case .pool(let s, let n): precondition(s >= VirtioNetHeader.size && s + n <= p.bytes.count, "pool write")
            case .coalesced(let s, let n): precondition(s >= VirtioNetHeader.size && s + n <= output.count, "run")
            }
        }
        // Each packet is a two-byte length and that many bytes (the rest, when fewer remain).
        var chunks = Array(rest)
        var slot = 0
        while chunks.count > 2 && slot < pool.slotCount {
            let declared = Int(chunks[0]) << 8 | Int(chunks[1])
            let length = min(chunks.count - 2, declared, pool.packetCapacity)
            for i in 0..<length { pool.bytes[pool.start(slot) + i] = chunks[2 + i] }
            chunks.removeFirst(2 + length)
            if length > 0 { coalescer.offer(&pool, start: pool.start(slot), length: length, emit: emit) }
            slot += 1
        }
        coalescer.flush(&pool, emit: emit)
    }
    return 0
}
