import CKeywayAllocationCount
import KeywayCrypto
import KeywayDatapath
import KeywayVocabulary

/// The datapath's steady state in one process, both appliances' halves: 64 KiB TSO reads split,
/// sealed (raw ESP, or ESP in UDP whose segments arrive joined as UDP GRO hands them over),
/// opened and coalesced back into super-packets, with no system call. Prints packets/s, the inner
/// Gbit/s and heap allocations per packet (the goal is none).
struct PipelineBench {
    let encryption: EncryptionAlgorithm, integrity: IntegrityAlgorithm
    let udp: Bool
    let sender: PacketPipeline, receiver: PacketPipeline
    /// The super-packet a TUN read returns: a virtio-net header, then IP and TCP and 64,000 bytes.
    let read: [UInt8]
    /// The kernel's MSS over the TUN MTU keywayd sets on a 1500-byte link for this transform.
    let mss: Int
    static let linkMTU = 1500, payload = 64_000

    init(encryption: EncryptionAlgorithm, integrity: IntegrityAlgorithm, udp: Bool) throws {
        self.encryption = encryption; self.integrity = integrity; self.udp = udp
        mss = IPsecOverhead(tunnel: true, encryption: encryption, espIntegrity: integrity, udp: udp)
            .largestInner(fitting: Self.linkMTU) - 40
        let a: UInt32 = 0xc000_0201, b: UInt32 = 0xc000_0202
        let selector = TrafficSelector(source: IPv4Prefix(0x0a01_0000, length: 24),
                                       destination: IPv4Prefix(0x0a02_0000, length: 24))
        let tx = Datapath(policies: [SecurityPolicy(id: 1, selector: selector, action: .encrypt, tunnel: true,
                                                    saSource: a, saDestination: b)])
        let rx = Datapath(policies: [SecurityPolicy(id: 1, selector: selector.mirrored, action: .encrypt, tunnel: true,
                                                    saSource: b, saDestination: a)])
        let ek = Secret.random(count: encryption.keyMaterialLength)
        let ik = integrity == .null ? nil : Secret.random(count: integrity.keyLength)
        func sa(_ encrypt: Bool) throws -> SecurityAssociation {
            SecurityAssociation(spi: 0x100, proto: .esp, source: a, destination: b, tunnel: true,
                                esp: try ESPTransform(encryption: encryption, encryptionKey: ek, integrity: integrity,
                                                      integrityKey: ik, encrypt: encrypt),
                                replayWindow: 1024, udpEncapsulation: udp ? (4500, 4500) : nil, now: 0)
        }
        tx.installOutbound(try sa(true), policyID: 1)
        rx.installInbound(try sa(false), policyID: 1)
        sender = PacketPipeline(engine: tx, offloads: true)
        receiver = PacketPipeline(engine: rx, offloads: true)

        let total = 40 + Self.payload
        var p = [UInt8](repeating: 0x5a, count: VirtioNetHeader.size + total)
        VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.Segmentation.tcpv4.rawValue,
                        headerLength: 40, gsoSize: UInt16(mss), checksumStart: 20, checksumOffset: 16)
            .write(into: &p, at: 0)
        let h = VirtioNetHeader.size, source: UInt32 = 0x0a01_0005, destination: UInt32 = 0x0a02_0007
        IPv4Header.write(into: &p, at: h, tos: 0, totalLength: total, identification: 1, flagsAndOffset: 0x4000,
                         ttl: 64, proto: 6, source: source, destination: destination)
        IPv4Header.put16(&p, h + 20, 40000); IPv4Header.put16(&p, h + 22, 5001)
        IPv4Header.put32(&p, h + 24, 1000); IPv4Header.put32(&p, h + 28, 77)
        p[h + 32] = 5 << 4; p[h + 33] = 0x10; IPv4Header.put16(&p, h + 34, 512)
        let pseudo = InternetChecksum.pseudoHeader(source: source, destination: destination, proto: 6,
                                                   length: 20 + Self.payload)
        IPv4Header.put16(&p, h + 36, UInt16(pseudo))
        read = p
    }

    /// One TUN read through both appliances; returns the segments it became, or 0 on a failure.
    mutating func pass(_ now: UInt64, _ starts: inout [Int], _ lengths: inout [Int]) -> Int {
        guard let slot = sender.nextRead() else { return 0 }
        // Each read's TCP sequence follows the last, so the receiver's coalescer sees one flow.
        PacketBytes.copy(read, from: 0, into: &sender.outbound.bytes, at: slot.offset, count: read.count)
        var segments = 0, failed = false
        sender.processRead(length: read.count, now: now) { action in
            switch action {
            case .send(let s, let n, _, _), .sendUDP(let s, let n, _, _, _):
                guard segments < starts.count else { failed = true; return }
                starts[segments] = s; lengths[segments] = n; segments += 1
            default: failed = true
            }
        }
        guard !failed, segments > 0 else { return 0 }
        // Closures passed inline, never stored: a stored closure's captures would be allocated.
        var written = 0
        let outbound = sender.outbound.bytes
        if udp {
            // The wire and UDP GRO: every segment back to back in one receive slot.
            var at = receiver.receiveStarts[0]
            for i in 0..<segments {
                PacketBytes.copy(outbound, from: starts[i], into: &receiver.inbound.bytes, at: at, count: lengths[i])
                at += lengths[i]
            }
            receiver.processUDP(start: receiver.receiveStarts[0], length: at - receiver.receiveStarts[0],
                                segmentSize: lengths[0], source: 0xc000_0201, now: now, ike: { _, _ in failed = true },
                                write: { w, _ in written += w.count }, dropped: { _ in failed = true })
        } else {
            for i in 0..<segments {
                let at = receiver.receiveStarts[i % receiver.receiveStarts.count]
                PacketBytes.copy(outbound, from: starts[i], into: &receiver.inbound.bytes, at: at, count: lengths[i])
                receiver.processInbound(start: at, length: lengths[i], now: now, write: { w, _ in written += w.count },
                                        dropped: { _ in failed = true })
            }
        }
        receiver.finishInbound(write: { w, _ in written += w.count })
        sender.sendsFlushed()
        return failed || written < Self.payload ? 0 : segments
    }
}

@MainActor func pipelineBenchmarks(runs: Int) {
    emit("# pipeline TRANSFORM PATH mss=MSS PACKETS/s INNER_Gbit/s ALLOCATIONS/PACKET (64 KiB TSO reads, "
         + "the MSS of the TUN "
         + "MTU over a 1500-byte link, split, sealed, opened, coalesced; both appliances' halves on one core, "
         + "no system calls)")
    for (name, enc, integ) in [("aes-128-gcm", EncryptionAlgorithm.aes128gcm, IntegrityAlgorithm.null),
                               ("aes-128/sha1", .aes128, .sha1)] {
        for udp in [false, true] {
            let path = udp ? "esp-in-udp-gro" : "raw-esp"
            guard var bench = try? PipelineBench(encryption: enc, integrity: integ, udp: udp) else {
                emit("pipeline \(name) \(path) error: no transform")
                continue
            }
            var starts = [Int](repeating: 0, count: 64), lengths = [Int](repeating: 0, count: 64)
            // Warm up: buffers, dictionaries and the coalescer reach their steady size.
            for _ in 0..<50 { _ = bench.pass(1, &starts, &lengths) }
            var rates: [Double] = [], perPacket: [Double] = []
            for _ in 0..<runs {
                let passes = 400
                var packets = 0
                let a0 = kw_allocation_count(), t0 = now()
                for _ in 0..<passes { packets += bench.pass(1, &starts, &lengths) }
                let t1 = now(), a1 = kw_allocation_count()
                guard packets > 0 else { break }
                rates.append(Double(packets) / (t1 - t0))
                perPacket.append(Double(a1 - a0) / Double(packets))
            }
            guard rates.count == runs else {
                emit("pipeline \(name) \(path) error: a packet was dropped")
                continue
            }
            let pps = median(rates)
            let gbits = pps * Double(bench.mss) * 8 / 1e9
            emit("pipeline \(name) \(path) mss=\(bench.mss) \(fmt(pps)) \(String(format: "%.2f", gbits)) "
                 + String(format: "%.2f", median(perPacket)))
        }
    }
}
