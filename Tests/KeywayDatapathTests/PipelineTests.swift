import KeywayCrypto
import KeywayVocabulary
@testable import KeywayDatapath
import XCTest

/// The datapath's batch work between system calls: ESP in UDP that the kernel joined (UDP GRO) is
/// opened segment by segment, IKE behind the non-ESP marker is handed on, keepalives end here.
final class PipelineTests: XCTestCase {
    let peerA: UInt32 = 0xc000_0201, peerB: UInt32 = 0xc000_0202

    func pair(transport: Bool = false) throws -> (PacketPipeline, PacketPipeline) {
        let key = Secret(Array(repeating: 0x42, count: 20))
        let selector = transport
            ? TrafficSelector(source: IPv4Prefix(peerA, length: 32), destination: IPv4Prefix(peerB, length: 32))
            : TrafficSelector(source: IPv4Prefix(0x0a01_0000, length: 24),
                                      destination: IPv4Prefix(0x0a02_0000, length: 24))
        let out = SecurityPolicy(id: 1, selector: selector, action: .encrypt, tunnel: !transport, saSource: peerA,
                                 saDestination: peerB)
        let back = SecurityPolicy(id: 1, selector: selector.mirrored, action: .encrypt, tunnel: !transport,
                                  saSource: peerB, saDestination: peerA)
        let sender = Datapath(policies: [out]), receiver = Datapath(policies: [back])
        func sa(_ encrypt: Bool) throws -> SecurityAssociation {
            SecurityAssociation(spi: 0x300, proto: .esp, source: peerA, destination: peerB, tunnel: !transport,
                                esp: try ESPTransform(encryption: .aes128gcm, encryptionKey: key, integrity: .null,
                                                      integrityKey: nil, encrypt: encrypt),
                                replayWindow: 1024, udpEncapsulation: (4500, 4500), now: 0)
        }
        sender.installOutbound(try sa(true), policyID: 1)
        receiver.installInbound(try sa(false), policyID: 1)
        return (PacketPipeline(engine: sender, offloads: true), PacketPipeline(engine: receiver, offloads: true))
    }

    /// A TSO super-packet read from the TUN device: sealed into ESP-in-UDP payloads.
    func sealSuperPacket(_ sender: PacketPipeline, data: [UInt8], source: UInt32,
                         destination: UInt32) throws -> [[UInt8]] {
        let total = 40 + data.count
        var p = [UInt8](repeating: 0, count: total)
        IPv4Header.write(into: &p, at: 0, tos: 0, totalLength: total, identification: 1, flagsAndOffset: 0x4000,
                         ttl: 64, proto: 6, source: source, destination: destination)
        IPv4Header.put16(&p, 20, 40000); IPv4Header.put16(&p, 22, 5001)
        IPv4Header.put32(&p, 24, 1000); IPv4Header.put32(&p, 28, 77)
        p[32] = 5 << 4; p[33] = 0x10; IPv4Header.put16(&p, 34, 512)
        for (i, b) in data.enumerated() { p[40 + i] = b }
        let pseudo = InternetChecksum.pseudoHeader(source: source, destination: destination, proto: 6,
                                                   length: 20 + data.count)
        IPv4Header.put16(&p, 36, UInt16(pseudo))
        let read = try XCTUnwrap(sender.nextRead())
        // An MSS of 1,402: segments of 1,442 bytes need no ESP padding, so the trailer and ICV are
        // shorter than the IP header the next segment's opening writes before itself.
        VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: 1, headerLength: 40, gsoSize: 1402,
                        checksumStart: 20, checksumOffset: 16).write(into: &sender.outbound.bytes, at: read.offset)
        for (i, b) in p.enumerated() { sender.outbound.bytes[read.offset + VirtioNetHeader.size + i] = b }
        var wire: [[UInt8]] = []
        sender.processRead(length: VirtioNetHeader.size + total, now: 1) { action in
            if case .sendUDP(let s, let n, let to, let port, let from) = action,
               to == peerB, port == 4500, from == peerA {
                wire.append(Array(sender.outbound.bytes[s..<(s + n)]))
            }
            // Transport mode keeps the host's DF, and ESP in UDP with DF leaves through the raw
            // socket with a UDP header of the datapath's: the ESP behind it is what the peer reads.
            if case .send(let s, let n, let to, 50) = action, to == peerB, n > 28, sender.outbound.bytes[s + 9] == 17 {
                wire.append(Array(sender.outbound.bytes[(s + 28)..<(s + n)]))
            }
        }
        return wire
    }

    /// `datagram` as the kernel hands a GRO read over, in receive slot 0; the TUN writes it causes.
    func receive(_ receiver: PacketPipeline, _ datagram: [UInt8], segmentSize: Int,
                 ike: inout [[UInt8]]) -> [(VirtioNetHeader, [UInt8])] {
        let start = receiver.receiveStarts[0]
        for (i, b) in datagram.enumerated() { receiver.inbound.bytes[start + i] = b }
        var writes: [(VirtioNetHeader, [UInt8])] = []
        var handed: [[UInt8]] = []
        let write: (PacketPipeline.TunWrite, [UInt8]) -> Void = { w, bytes in
            writes.append((VirtioNetHeader(bytes, at: w.offset) ?? VirtioNetHeader(),
                           Array(bytes[(w.offset + VirtioNetHeader.size)..<(w.offset + w.count)])))
        }
        receiver.processUDP(start: start, length: datagram.count, segmentSize: segmentSize, source: peerA, now: 1,
                            ike: { s, n in handed.append(Array(receiver.inbound.bytes[s..<(s + n)])) },
                            write: write, dropped: { XCTFail("dropped: \($0)") })
        receiver.finishInbound(write: write)
        ike = handed
        return writes
    }

    func testAJoinedDatagramIsOpenedSegmentBySegmentIntoOneSuperPacket() throws {
        for transport in [false, true] {
            let (sender, receiver) = try pair(transport: transport)
            let data = (0..<30_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 7) }
            let wire = try sealSuperPacket(sender, data: data, source: transport ? peerA : 0x0a01_0005,
                                           destination: transport ? peerB : 0x0a02_0007)
            XCTAssertEqual(wire.count, 22, "30,000 bytes at an MSS of 1,402")
            XCTAssertEqual(Set(wire.dropLast().map(\.count)).count, 1, "all segments but the last of one size")
            var ike: [[UInt8]] = []
            let writes = receive(receiver, wire.flatMap { $0 }, segmentSize: wire[0].count, ike: &ike)
            XCTAssertEqual(writes.count, 1, "transport \(transport): one write for the whole datagram")
            let (header, packet) = try XCTUnwrap(writes.first)
            XCTAssertEqual(header.gsoType, VirtioNetHeader.Segmentation.tcpv4.rawValue)
            // Compared whole, not printed: a mismatch of 30,000 bytes would bury the log.
            XCTAssertTrue(Array(packet[40...]) == data, "transport \(transport): the bytes sent")
            XCTAssertTrue(ike.isEmpty)
        }
    }

    func testIKEBehindTheMarkerIsHandedOnAndKeepalivesEndHere() throws {
        let (_, receiver) = try pair()
        var ike: [[UInt8]] = []
        let message: [UInt8] = [0, 0, 0, 0] + Array(repeating: 0x11, count: 40)
        XCTAssertTrue(receive(receiver, message, segmentSize: 0, ike: &ike).isEmpty)
        XCTAssertEqual(ike, [message])
        XCTAssertTrue(receive(receiver, [0xff], segmentSize: 0, ike: &ike).isEmpty)
        XCTAssertTrue(ike.isEmpty, "a NAT keepalive goes nowhere")
        // Two IKE messages of one size joined by the kernel: each handed on whole.
        let other: [UInt8] = [0, 0, 0, 0] + Array(repeating: 0x22, count: 40)
        _ = receive(receiver, message + other, segmentSize: message.count, ike: &ike)
        XCTAssertEqual(ike, [message, other])
    }

    func testASegmentSizeLongerThanTheDatagramIsOneDatagram() throws {
        let (_, receiver) = try pair()
        var ike: [[UInt8]] = []
        let message: [UInt8] = [0, 0, 0, 0, 9, 9]
        _ = receive(receiver, message, segmentSize: 60_000, ike: &ike)
        XCTAssertEqual(ike, [message])
    }

    func testANewPolicySetDecidesTheVeryNextPacket() throws {
        // The outbound lookup remembers its last decision; replacing the policies must forget it.
        let (sender, _) = try pair()
        var packet = [UInt8](repeating: 0, count: 28)
        IPv4Header.write(into: &packet, at: 0, tos: 0, totalLength: 28, identification: 1, flagsAndOffset: 0, ttl: 64,
                         proto: 17, source: 0x0a01_0005, destination: 0x0a02_0007)
        guard case .sendUDP = sender.engine.processOutbound(packet, now: 1) else { return XCTFail("not sealed") }
        let discard = SecurityPolicy(id: 2, selector: TrafficSelector(source: IPv4Prefix(0x0a01_0000, length: 24),
                                                                      destination: IPv4Prefix(0x0a02_0000, length: 24)),
                                     action: .discard)
        sender.engine.replacePolicies([discard])
        XCTAssertEqual(sender.engine.processOutbound(packet, now: 1), .drop(counter: "out-policy-blocked"))
    }
}
