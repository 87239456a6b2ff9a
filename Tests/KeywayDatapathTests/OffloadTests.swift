import KeywayCrypto
@testable import KeywayDatapath
import XCTest

/// The TUN offloads done our side: a TSO super-packet split into segments as the kernel's GSO
/// would, and decrypted segments coalesced again (GRO) into exactly the bytes sent.
final class OffloadTests: XCTestCase {
    let source: UInt32 = 0x0a01_0005, destination: UInt32 = 0x0a02_0007

    /// A TCP/IPv4 packet with `payload`, its TCP checksum left partial (the pseudo-header sum) as
    /// the kernel hands a super-packet over, or complete.
    func tcp(_ payload: [UInt8], sequence: UInt32 = 1000, flags: UInt8 = 0x18, id: UInt16 = 7, partial: Bool = false,
             options: [UInt8] = []) -> [UInt8] {
        let tcpLength = 20 + options.count
        var p = [UInt8](repeating: 0, count: 20 + tcpLength + payload.count)
        IPv4Header.write(into: &p, at: 0, tos: 0, totalLength: min(p.count, 65_535), identification: id,
                         flagsAndOffset: 0x4000, ttl: 64, proto: 6, source: source, destination: destination)
        IPv4Header.put16(&p, 20, 40000); IPv4Header.put16(&p, 22, 5001)
        IPv4Header.put32(&p, 24, sequence); IPv4Header.put32(&p, 28, 77)
        p[32] = UInt8(tcpLength / 4) << 4; p[33] = flags; IPv4Header.put16(&p, 34, 512)
        for (i, b) in options.enumerated() { p[40 + i] = b }
        for (i, b) in payload.enumerated() { p[20 + tcpLength + i] = b }
        let pseudo = InternetChecksum.pseudoHeader(source: source, destination: destination, proto: 6,
                                                   length: tcpLength + payload.count)
        if partial {
            IPv4Header.put16(&p, 36, UInt16(pseudo))
        } else {
            IPv4Header.put16(&p, 36,
                             ~InternetChecksum.sum(p, start: 20, count: tcpLength + payload.count, initial: pseudo))
        }
        return p
    }

    func valid(_ p: [UInt8], at s: Int = 0, length: Int) -> Bool {
        InternetChecksum.sum(p, start: s, count: 20) == 0xffff
            && TCPSegmentation.tcpChecksumValid(p, ipStart: s, ipHeader: 20, total: length, source: source,
                                                destination: destination)
    }

    /// A pool whose slot 0 holds `packet` behind `header` as a TUN read leaves them.
    func read(_ packet: [UInt8], _ header: VirtioNetHeader, slots: Int = 64) -> PacketPool {
        var pool = PacketPool(slotCount: slots, packetCapacity: 65_535 + 64)
        header.write(into: &pool.bytes, at: pool.start(0) - VirtioNetHeader.size)
        for (i, b) in packet.enumerated() { pool.bytes[pool.start(0) + i] = b }
        return pool
    }

    func testASuperPacketIsSplitIntoWholeSegments() throws {
        let data = (0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: 1, headerLength: 40, gsoSize: 1400,
                                     checksumStart: 20, checksumOffset: 16)
        var pool = read(tcp(data, partial: true), header)
        var lengths = [Int](repeating: 0, count: pool.slotCount)
        let slots = try XCTUnwrap(TunRead.prepare(&pool, slot: 0, readLength: 10 + 40 + data.count, vnet: true,
                                                  lengths: &lengths))
        XCTAssertEqual(slots, 1..<16)
        var joined: [UInt8] = []
        for (i, slot) in slots.enumerated() {
            let s = pool.start(slot), n = lengths[slot]
            XCTAssertTrue(valid(pool.bytes, at: s, length: n), "segment \(i) checksums")
            XCTAssertEqual(IPv4Header.u32(pool.bytes, s + 24), 1000 + UInt32(i * 1400), "sequence")
            XCTAssertEqual(IPv4Header.u16(pool.bytes, s + 4), 7 &+ UInt16(i), "IP identification")
            XCTAssertEqual(pool.bytes[s + 33] & 0x08 != 0, i == slots.count - 1, "PSH on the last segment only")
            XCTAssertLessThanOrEqual(n - 40, 1400)
            joined += pool.bytes[(s + 40)..<(s + n)]
        }
        XCTAssertEqual(joined, data)
    }

    func testAPartialChecksumIsCompleted() throws {
        let packet = tcp(Array(repeating: 9, count: 300), partial: true)
        var pool = read(packet,
                        VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 20, checksumOffset: 16))
        var lengths = [Int](repeating: 0, count: pool.slotCount)
        XCTAssertEqual(TunRead.prepare(&pool, slot: 0, readLength: 10 + packet.count, vnet: true, lengths: &lengths),
                       0..<1)
        XCTAssertTrue(valid(pool.bytes, at: pool.start(0), length: packet.count))
        XCTAssertEqual(Array(pool.bytes[pool.start(0)..<(pool.start(0) + packet.count)]),
                       tcp(Array(repeating: 9, count: 300)))
    }

    func testHeadersPointingOutsideThePacketAreDropped() {
        let packet = tcp([1, 2, 3])
        var pool = read(packet,
                        VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 2000, checksumOffset: 16))
        var lengths = [Int](repeating: 0, count: pool.slotCount)
        XCTAssertNil(TunRead.prepare(&pool, slot: 0, readLength: 10 + packet.count, vnet: true, lengths: &lengths))
        var udp = read(packet, VirtioNetHeader(gsoType: 5, gsoSize: 100))
        XCTAssertNil(TunRead.prepare(&udp, slot: 0, readLength: 10 + packet.count, vnet: true, lengths: &lengths),
                     "no USO asked")
        var tiny = read(packet, VirtioNetHeader(gsoType: 1, gsoSize: 0))
        XCTAssertNil(TunRead.prepare(&tiny, slot: 0, readLength: 10 + packet.count, vnet: true, lengths: &lengths))
    }

    /// Splits, then coalesces in the order received: the writes the TUN device gets.
    func coalesce(_ packets: [[UInt8]]) -> [(VirtioNetHeader?, [UInt8])] {
        var pool = PacketPool(slotCount: packets.count, packetCapacity: 65_535)
        var coalescer = TCPCoalescer()
        var out: [(VirtioNetHeader?, [UInt8])] = []
        let emit: (TCPCoalescer.Write, inout PacketPool, [UInt8]) -> Void = { write, pool, output in
            switch write {
            case .pool(let s, let n): out.append((nil, Array(pool.bytes[s..<(s + n)])))
            case .coalesced(let s, let n): out.append((VirtioNetHeader(output, at: s - 10), Array(output[s..<(s + n)])))
            }
        }
        for (i, p) in packets.enumerated() {
            for (k, b) in p.enumerated() { pool.bytes[pool.start(i) + k] = b }
            coalescer.offer(&pool, start: pool.start(i), length: p.count, emit: emit)
        }
        coalescer.flush(&pool, emit: emit)
        return out
    }

    func testSegmentsOfOneFlowCoalesceIntoOneSuperPacket() throws {
        let data = (0..<14_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let segments = stride(from: 0, to: data.count, by: 1400).map { off in
            tcp(Array(data[off..<min(off + 1400, data.count)]), sequence: 1000 + UInt32(off),
                flags: off + 1400 >= data.count ? 0x18 : 0x10)
        }
        let writes = coalesce(segments)
        XCTAssertEqual(writes.count, 1)
        let (header, packet) = writes[0]
        let h = try XCTUnwrap(header)
        XCTAssertEqual(h, VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: 1, headerLength: 40,
                                          gsoSize: 1400, checksumStart: 20, checksumOffset: 16))
        XCTAssertEqual(Array(packet[40...]), data)
        XCTAssertEqual(IPv4Header.u16(packet, 2), UInt16(40 + data.count))
        XCTAssertEqual(InternetChecksum.sum(packet, start: 0, count: 20), 0xffff)
        XCTAssertEqual(packet[33] & 0x08, 0x08, "the last segment's PSH is kept")
        XCTAssertEqual(UInt32(IPv4Header.u16(packet, 36)),
                       InternetChecksum.pseudoHeader(source: source, destination: destination, proto: 6,
                                                     length: 20 + data.count))
    }

    func testWhatTheKernelWouldNotCoalesceStaysApartAndInOrder() throws {
        let a = tcp(Array(repeating: 1, count: 1000), sequence: 0, flags: 0x10)
        let gap = tcp(Array(repeating: 2, count: 1000), sequence: 5000, flags: 0x10)
        let syn = tcp([], sequence: 9000, flags: 0x02)
        var bad = tcp(Array(repeating: 3, count: 1000), sequence: 6000, flags: 0x10)
        bad[60] ^= 1
        let options = tcp(Array(repeating: 4, count: 1000), sequence: 6000, flags: 0x10, options: [1, 1, 1, 1])
        let writes = coalesce([a, gap, syn, bad, options])
        XCTAssertEqual(writes.map { $0.0?.gsoType ?? 0 }, [0, 0, 0, 0, 0], "five single packets, none segmented")
        XCTAssertEqual(writes.map(\.1), [a, gap, syn, bad, options])
    }

    func testEndToEndTheBytesSentAreTheBytesDelivered() throws {
        // Split on one appliance, sealed, opened on the other, coalesced: iperf3 sees its bytes.
        let key = Secret(Array(repeating: 0x42, count: 20))
        let policy = SecurityPolicy(id: 1,
                                    selector: .init(source: IPv4Prefix(0x0a01_0000, length: 24),
                                                    destination: IPv4Prefix(0x0a02_0000, length: 24)),
                                    action: .encrypt, tunnel: true, saSource: 0xc000_0201, saDestination: 0xc000_0202)
        let mirrored = SecurityPolicy(id: 1, selector: policy.selector.mirrored, action: .encrypt, tunnel: true,
                                      saSource: 0xc000_0202, saDestination: 0xc000_0201)
        let sender = Datapath(policies: [policy]), receiver = Datapath(policies: [mirrored])
        // Jumbo frames between the two: 1448-byte segments are sealed whole (fragmentation is PathMTUTests').
        sender.setLocalPaths(defaultMTU: 9000, paths: [])
        sender.installOutbound(SecurityAssociation(spi: 0x300, proto: .esp, source: 0xc000_0201,
                                                   destination: 0xc000_0202, tunnel: true,
                                                   esp: try ESPTransform(encryption: .aes128gcm, encryptionKey: key,
                                                                         integrity: .null, integrityKey: nil,
                                                                         encrypt: true), now: 0), policyID: 1)
        receiver.installInbound(SecurityAssociation(spi: 0x300, proto: .esp, source: 0xc000_0201,
                                                    destination: 0xc000_0202, tunnel: true,
                                                    esp: try ESPTransform(encryption: .aes128gcm, encryptionKey: key,
                                                                          integrity: .null, integrityKey: nil,
                                                                          encrypt: false), replayWindow: 1024, now: 0),
                                policyID: 1)
        let data = (0..<60_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
        var out = read(tcp(data, partial: true), VirtioNetHeader(flags: 1, gsoType: 1, headerLength: 40,
                                                                 gsoSize: 1448, checksumStart: 20, checksumOffset: 16))
        var lengths = [Int](repeating: 0, count: out.slotCount)
        let slots = try XCTUnwrap(TunRead.prepare(&out, slot: 0, readLength: 10 + 40 + data.count, vnet: true,
                                                  lengths: &lengths))
        var wire: [[UInt8]] = []
        for slot in slots {
            guard case .send(let s, let n, _, _) = sender.processOutbound(&out.bytes, start: out.start(slot),
                                                                          length: lengths[slot], now: 1) else {
                return XCTFail("not sealed")
            }
            wire.append(Array(out.bytes[s..<(s + n)]))
        }
        var inbound = PacketPool(slotCount: wire.count, packetCapacity: 2000)
        var coalescer = TCPCoalescer()
        var delivered: [UInt8] = [], writes = 0
        let emit: (TCPCoalescer.Write, inout PacketPool, [UInt8]) -> Void = { write, pool, output in
            writes += 1
            if case .coalesced(let s, let n) = write { delivered += output[(s + 40)..<(s + n)] }
            if case .pool(let s, let n) = write { delivered += pool.bytes[(s + 40)..<(s + n)] }
        }
        for (i, packet) in wire.enumerated() {
            for (k, b) in packet.enumerated() { inbound.bytes[inbound.start(i) + k] = b }
            guard case .deliver(let s, let n) = receiver.processInbound(&inbound.bytes, start: inbound.start(i),
                                                                        length: packet.count, now: 1) else {
                return XCTFail("not opened")
            }
            coalescer.offer(&inbound, start: s, length: n, emit: emit)
        }
        coalescer.flush(&inbound, emit: emit)
        XCTAssertEqual(delivered, data)
        XCTAssertEqual(writes, 1, "42 segments become one super-packet again")
    }
}
