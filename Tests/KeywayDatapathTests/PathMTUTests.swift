import KeywayCrypto
@testable import KeywayDatapath
import KeywayVocabulary
import XCTest

/// Two appliances in one process on a path smaller than the packets: fragmentation as
/// dont-fragment says, "fragmentation needed" back to senders, path MTU discovery from validated
/// ICMP (and forged ICMP changing nothing), MSS clamping both ways.
final class PathMTUTests: XCTestCase {
    let peer1 = "192.0.2.1", peer2 = "198.51.100.2"
    var peer2Address: IPAddress { Packets.v4(peer2) }

    struct Pair {
        let r1: Datapath, r2: Datapath
        /// r1's outbound SA (for quoting what it sent).
        let outbound: SecurityAssociation
    }

    /// Router 1 (10.1.0.0/24, 192.0.2.1) and router 2 (10.2.0.0/24, 198.51.100.2), keyed as
    /// manual-sa would key them, `ah` over ESP if asked, ESP in UDP if asked.
    func pair(_ df: DontFragment = .clear, tunnel: Bool = true, esp: Bool = true, ah: Bool = false,
              udp: Bool = false) throws -> Pair {
        func policy(_ src: String, _ dst: String, _ saSrc: String, _ saDst: String) -> SecurityPolicy {
            SecurityPolicy(id: 1, selector: TrafficSelector(source: prefix(tunnel ? src : saSrc + "/32"),
                                                            destination: prefix(tunnel ? dst : saDst + "/32")),
                           action: .encrypt, useESP: esp, useAH: ah, tunnel: tunnel, saSource: ip(saSrc),
                           saDestination: ip(saDst), dontFragment: df)
        }
        let r1 = Datapath(policies: [policy("10.1.0.0/24", "10.2.0.0/24", peer1, peer2)])
        let r2 = Datapath(policies: [policy("10.2.0.0/24", "10.1.0.0/24", peer2, peer1)])
        var first: SecurityAssociation?
        for (spi, from, to, tx, rx) in [(UInt32(0x100), peer1, peer2, r1, r2), (0x101, peer2, peer1, r2, r1)] {
            let ek = Secret.random(count: 16), ik = Secret.random(count: 20)
            for (dp, out) in [(tx, true), (rx, false)] {
                if esp {
                    let sa = SecurityAssociation(spi: spi, proto: .esp, source: ip(from),
                                                 destination: ip(to), tunnel: tunnel,
                                                 esp: try ESPTransform(encryption: .aes128,
                                                                       encryptionKey: ek, integrity: .sha1,
                                                                       integrityKey: ik, encrypt: out),
                                                 replayWindow: 1024, udpEncapsulation: udp ? (4500, 4500) : nil, now: 0)
                    if out { dp.installOutbound(sa, policyID: 1) } else { dp.installInbound(sa, policyID: 1) }
                    if out, first == nil { first = sa }
                }
                if ah {
                    let sa = SecurityAssociation(spi: spi + 0x1000, proto: .ah, source: ip(from), destination: ip(to),
                                                 tunnel: tunnel && !esp, ah: try AHTransform(integrity: .sha1, key: ik),
                                                 replayWindow: 1024, now: 0)
                    if out { dp.installOutbound(sa, policyID: 1) } else { dp.installInbound(sa, policyID: 1) }
                    if out, first == nil { first = sa }
                }
            }
        }
        return Pair(r1: r1, r2: r2, outbound: try XCTUnwrap(first))
    }

    /// A UDP packet of `total` bytes between the LANs (or between the routers in transport mode).
    func inner(_ total: Int, df: Bool, id: UInt16 = 0x4242, tunnel: Bool = true) -> [UInt8] {
        tunnel ? Packets.ipv4("10.1.0.5", "10.2.0.7", total: total, id: id, flags: df ? 0x4000 : 0)
            : Packets.ipv4(peer1, peer2, total: total, id: id, flags: df ? 0x4000 : 0)
    }

    func local(_ d: Datapath, _ mtu: Int) {
        d.setLocalPaths(defaultMTU: 1500, paths: [(peer2Address, mtu), (Packets.v4(peer1), mtu)])
    }

    // MARK: dont-fragment=clear: Keyway fragments the outer packet

    func testClearFragmentsTheOuterPacketAndThePeerGetsTheInnerOneWhole() throws {
        for (ah, esp) in [(false, true), (true, false), (true, true)] {
            let p = try pair(.clear, esp: esp, ah: ah)
            local(p.r1, 1280)
            let packet = inner(1400, df: true)
            guard case .sendRun(let pieces, let to) = p.r1.processOutbound(packet, now: 1) else {
                return XCTFail("not fragmented (ah \(ah) esp \(esp))")
            }
            XCTAssertEqual(to, ip(peer2))
            XCTAssertTrue(pieces.allSatisfy { $0.count <= 1280 }, "every fragment fits the path")
            XCTAssertTrue(pieces.allSatisfy { IPv4Header.u16($0, 6) & 0x4000 == 0 }, "dont-fragment=clear")
            let outer = try XCTUnwrap(Packets.reassemble(pieces), "the fragments reassemble")
            XCTAssertEqual(p.r2.processInbound(outer, now: 1), .deliver(packet),
                           "ah \(ah) esp \(esp): the peer opens it")
            XCTAssertEqual(p.r1.statistics["out-fragmented"], 1)
            XCTAssertEqual(p.r1.policyCounters[1]?.outTransformed, 1)
        }
    }

    func testOuterIdentificationsNeverRepeatAnInnerOne() throws {
        let p = try pair(.clear)
        local(p.r1, 1280)
        var ids: Set<UInt16> = []
        for _ in 0..<3 {
            for size in [1400, 200] {
                switch p.r1.processOutbound(inner(size, df: false, id: 7), now: 1) {
                case .sendRun(let pieces, _): ids.insert(IPv4Header.u16(pieces[0], 4))
                case .send(let outer, _): ids.insert(IPv4Header.u16(outer, 4))
                default: XCTFail("not sent")
                }
            }
        }
        XCTAssertEqual(ids.count, 6, "two inner hosts reusing ID 7 must not make outer fragments that mix")
        XCTAssertFalse(ids.contains(7))
    }

    func testInheritFragmentsWhatCarriesNoDFAndRefusesWhatDoes() throws {
        let p = try pair(.inherit)
        local(p.r1, 1280)
        guard case .sendRun = p.r1.processOutbound(inner(1400, df: false), now: 1) else { return XCTFail("fragmented") }
        guard case .tooBig(_, let mtu) = p.r1.processOutbound(inner(1400, df: true), now: 1)
        else { return XCTFail("refused") }
        XCTAssertEqual(mtu, 1214)
    }

    func testWithoutRoomForTheFragmentsThePacketIsDroppedAndCounted() throws {
        let p = try pair(.clear)
        local(p.r1, 1280)
        var buffer = [UInt8](repeating: 0, count: 96) + inner(1400, df: false) + [UInt8](repeating: 0, count: 200)
        XCTAssertEqual(p.r1.processOutbound(&buffer, start: 96, length: 1400, capacity: 1400 + 96, now: 1),
                       .drop(counter: "out-frag-errors"))
        XCTAssertEqual(p.r1.statistics["out-frag-errors"], 1)
        XCTAssertEqual(p.r1.policyCounters[1]?.outDropped, 1)
    }

    // MARK: dont-fragment=set: DF packets are refused with the right MTU, others split first

    func testSetRefusesADFPacketThatDoesNotFitWithTheMTUThatFits() throws {
        let p = try pair(.set)
        local(p.r1, 1280)
        guard case .tooBig(let icmp, let mtu) = p.r1.processOutbound(inner(1215, df: true), now: 1) else {
            return XCTFail("refused")
        }
        XCTAssertEqual(mtu, 1214, "1280 less ESP tunnel with aes-128/sha1")
        let reply = try XCTUnwrap(icmp)
        let header = try IPv4Header(reply)
        XCTAssertEqual([header.source, header.destination], [ip("10.2.0.7"), ip("10.1.0.5")])
        XCTAssertEqual([reply[20], reply[21]], [3, 4])
        XCTAssertEqual(Int(IPv4Header.u16(reply, 26)), 1214)
        XCTAssertEqual(InternetChecksum.sum(reply, start: 20, count: reply.count - 20), 0xffff)
        XCTAssertEqual(p.r1.statistics["out-frag-needed"], 1)
        XCTAssertEqual(p.r1.statistics["icmp-frag-needed-sent"], 1)
        guard case .send(let outer, _) = p.r1.processOutbound(inner(1214, df: true), now: 1) else {
            return XCTFail("what fits is sent")
        }
        XCTAssertLessThanOrEqual(outer.count, 1280)
        XCTAssertTrue(try IPv4Header(outer).dontFragment)
        XCTAssertEqual(p.r2.processInbound(outer, now: 1), .deliver(inner(1214, df: true)))
    }

    func testRepliesAreRateLimitedButEveryDropIsCounted() throws {
        let p = try pair(.set)
        local(p.r1, 1280)
        var replies = 0
        for _ in 0..<25 {
            if case .tooBig(let icmp?, _) = p.r1.processOutbound(inner(1400, df: true), now: 7) {
                _ = icmp; replies += 1
            }
        }
        XCTAssertEqual(replies, 10, "ten a second to one sender")
        XCTAssertEqual(p.r1.statistics["out-frag-needed"], 25)
        XCTAssertEqual(p.r1.statistics["icmp-frag-needed-limited"], 15)
        if case .tooBig(let icmp, _) = p.r1.processOutbound(inner(1400, df: true), now: 8) { XCTAssertNotNil(icmp) }
    }

    func testSetSplitsAPacketWithoutDFBeforeSealingSoEveryOuterPacketKeepsDF() throws {
        for udp in [false, true] {
            let p = try pair(.set, udp: udp)
            local(p.r1, 1280)
            let packet = inner(3000, df: false)
            guard case .sendRun(let outers, _) = p.r1.processOutbound(packet, now: 1) else { return XCTFail("split") }
            XCTAssertEqual(outers.count, 3)
            var pieces: [[UInt8]] = []
            for outer in outers {
                let h = try IPv4Header(outer)
                XCTAssertLessThanOrEqual(outer.count, 1280)
                XCTAssertTrue(h.dontFragment, "DF on every outer packet")
                XCTAssertFalse(h.isFragment, "no outer packet is a fragment")
                let opened: Datapath.Inbound
                if udp {
                    XCTAssertEqual(h.proto, 17)
                    XCTAssertEqual([IPv4Header.u16(outer, 20), IPv4Header.u16(outer, 22)], [4500, 4500])
                    opened = p.r2.processInboundUDP(outer[28...], source: ip(peer1), now: 1)
                } else {
                    opened = p.r2.processInbound(outer, now: 1)
                }
                guard case .deliver(let piece) = opened else { return XCTFail("opened (udp \(udp))") }
                pieces.append(piece)
            }
            XCTAssertEqual(Packets.reassemble(pieces), packet, "the inner host reassembles the original")
            XCTAssertEqual(p.r1.statistics["out-prefragmented"], 1)
        }
    }

    func testESPInUDPWithoutDFIsLeftToTheKernelAndWithDFGoesRawWithItsOwnUDPHeader() throws {
        let clear = try pair(.clear, udp: true)
        local(clear.r1, 1280)
        guard case .sendUDP(let esp, let offset, _, let port) = clear.r1.processOutbound(inner(1400, df: true), now: 1)
        else {
            return XCTFail("the UDP socket fragments it (the kernel never sets DF there)")
        }
        XCTAssertEqual(port, 4500)
        XCTAssertEqual(clear.r2.processInboundUDP(esp[offset...], source: ip(peer1), now: 1),
                       .deliver(inner(1400, df: true)))
        let set = try pair(.set, udp: true)
        guard case .send(let raw, _) = set.r1.processOutbound(inner(1000, df: false), now: 1)
        else { return XCTFail("raw") }
        let h = try IPv4Header(raw)
        XCTAssertEqual(h.proto, 17)
        XCTAssertTrue(h.dontFragment)
        XCTAssertEqual(InternetChecksum.sum(raw, start: 0, count: 20), 0xffff)
        XCTAssertEqual(Int(IPv4Header.u16(raw, 24)), raw.count - 20, "UDP length")
        XCTAssertEqual(IPv4Header.u16(raw, 26), 0, "RFC 3948: UDP checksum zero")
        XCTAssertEqual(set.r2.processInboundUDP(raw[28...], source: ip(peer1), now: 1),
                       .deliver(inner(1000, df: false)))
    }

    func testTransportModeKeepsTheHostsDFAndTellsTheHost() throws {
        let p = try pair(.clear, tunnel: false)
        local(p.r1, 1280)
        guard case .tooBig(let icmp?, let mtu) = p.r1.processOutbound(inner(1300, df: true, tunnel: false), now: 1)
        else {
            return XCTFail("the host's own DF packet is refused")
        }
        XCTAssertEqual(mtu, 1234, "transport mode keeps the host's 20-byte header: 1214 of payload fit")
        XCTAssertEqual(IPv4Header.u32(icmp, 16), ip(peer1), "to the host itself")
        guard case .sendRun(let pieces, _) = p.r1.processOutbound(inner(1300, df: false, tunnel: false), now: 1) else {
            return XCTFail("fragmented")
        }
        let outer = try XCTUnwrap(Packets.reassemble(pieces))
        XCTAssertEqual(p.r2.processInbound(outer, now: 1), .deliver(inner(1300, df: false, tunnel: false)))
    }

    // MARK: path MTU discovery

    /// The ICMP a router at 192.0.2.254 would send about `outer`.
    func routerReport(about outer: [UInt8], mtu: UInt16, quote: Int = 548) -> [UInt8] {
        Packets.fragmentationNeeded(from: "192.0.2.254", to: peer1, mtu: mtu, quote: Array(outer.prefix(quote)))
    }

    struct NotSent: Error {}

    func sentDF(_ p: Pair, _ size: Int = 1400, now: UInt64 = 1) throws -> [UInt8] {
        guard case .send(let outer, _) = p.r1.processOutbound(inner(size, df: true), now: now) else {
            XCTFail("a \(size)-byte DF packet was not sent whole")
            throw NotSent()
        }
        return outer
    }

    func testAValidReportLowersThePathAndTheNextPacketIsRefusedWithTheRightMTU() throws {
        let p = try pair(.set)
        let outer = try sentDF(p)
        let report = routerReport(about: outer, mtu: 1280)
        XCTAssertEqual(p.r1.processICMP(report, start: 0, length: report.count, now: 2),
                       .lowered(destination: peer2Address, mtu: 1280, reporter: Packets.v4("192.0.2.254"), spi: 0x100))
        XCTAssertEqual(p.r1.paths.mtu(toward: peer2Address, now: 2), 1280)
        guard case .tooBig(_, let mtu) = p.r1.processOutbound(inner(1400, df: true), now: 3) else { return XCTFail() }
        XCTAssertEqual(mtu, 1214)
        XCTAssertEqual(p.r1.processICMP(report, start: 0, length: report.count, now: 4), .unchanged, "told twice")
        XCTAssertEqual(p.r1.statistics["pmtu-lowered"], 1)
    }

    func testForgedReportsChangeNothing() throws {
        let p = try pair(.set)
        let outer = try sentDF(p)
        func forged(_ edit: (inout [UInt8]) -> Void, mtu: UInt16 = 600) -> ICMPOutcome {
            var quote = outer
            edit(&quote)
            IPv4Header.setChecksum(&quote, headerAt: 0, length: 20)
            let report = routerReport(about: quote, mtu: mtu)
            return p.r1.processICMP(report, start: 0, length: report.count, now: 2)
        }
        var outcomes: [ICMPOutcome] = []
        outcomes.append(forged { IPv4Header.put32(&$0, 20, 0x999) })                  // an SPI we never used
        outcomes.append(forged { IPv4Header.put32(&$0, 24, 1_000_000) })              // a sequence number not sent
        outcomes.append(forged { IPv4Header.put32(&$0, 24, 0) })
        outcomes.append(forged { IPv4Header.put16(&$0, 6, 0) })                       // no DF: no router would say this
        outcomes.append(forged { IPv4Header.put32(&$0, 16, ip("203.0.113.9")) })      // another destination
        outcomes.append(forged({ _ in }, mtu: 1500))                                  // an MTU the packet fit
        for outcome in outcomes {
            guard case .refused = outcome else { return XCTFail("\(outcome) should be refused") }
        }
        XCTAssertEqual(p.r1.statistics["pmtu-icmp-refused"], 6)
        XCTAssertEqual(p.r1.paths.mtu(toward: peer2Address, now: 3), 1500, "the path is untouched")
        XCTAssertEqual(p.r1.paths.learnedCount, 0)
        guard case .send = p.r1.processOutbound(inner(1400, df: true), now: 3)
        else { return XCTFail("still sent whole") }
        var someoneElses = outer
        IPv4Header.put32(&someoneElses, 12, ip("192.0.2.77"))
        IPv4Header.put32(&someoneElses, 20, 0x5555)
        IPv4Header.setChecksum(&someoneElses, headerAt: 0, length: 20)
        let other = routerReport(about: someoneElses, mtu: 600)
        XCTAssertEqual(p.r1.processICMP(other, start: 0, length: other.count, now: 3), .ignored,
                       "ESP of another host on this machine is not ours to judge")
    }

    func testAnOldSequenceNumberIsRefusedAndTheFloorHolds() throws {
        let p = try pair(.set)
        let outer = try sentDF(p)
        let smaller = try sentDF(p, 1000)
        for _ in 0..<3 { _ = try sentDF(p) }
        var replayed = outer
        IPv4Header.put32(&replayed, 24, UInt32(p.outbound.sequence) &- Datapath.icmpSequenceWindow)
        let old = routerReport(about: replayed, mtu: 600)
        guard case .refused = p.r1.processICMP(old, start: 0, length: old.count, now: 2) else { return XCTFail() }
        let tiny = routerReport(about: outer, mtu: 68)
        guard case .lowered(_, 576, _, _) = p.r1.processICMP(tiny, start: 0, length: tiny.count, now: 2) else {
            return XCTFail("a valid report lowers to the floor, never below")
        }
        let zero = routerReport(about: smaller, mtu: 0)
        XCTAssertEqual(p.r1.processICMP(zero, start: 0, length: zero.count, now: 2), .unchanged,
                       "no MTU named: RFC 1191's plateau below 1068 is 1006, above what is known")
    }

    func testALoweredPathGrowsBackAfterTenMinutes() throws {
        let p = try pair(.set)
        let report = routerReport(about: try sentDF(p), mtu: 1280)
        _ = p.r1.processICMP(report, start: 0, length: report.count, now: 100)
        guard case .tooBig = p.r1.processOutbound(inner(1400, df: true), now: 699)
        else { return XCTFail("still small") }
        p.r1.agePaths(now: 700)
        guard case .send = p.r1.processOutbound(inner(1400, df: true), now: 700) else { return XCTFail("grown back") }
    }

    func testAnAHReportNeedsTheSequenceNumberAndESPInUDPItsPorts() throws {
        let ah = try pair(.set, esp: false, ah: true)
        let sent = try sentDF(ah)
        let short = routerReport(about: sent, mtu: 1280, quote: 28)
        guard case .refused = ah.r1.processICMP(short, start: 0, length: short.count, now: 2) else {
            return XCTFail("eight bytes of AH do not reach its sequence number")
        }
        let full = routerReport(about: sent, mtu: 1280)
        guard case .lowered = ah.r1.processICMP(full, start: 0, length: full.count, now: 2) else { return XCTFail() }
        let udp = try pair(.set, udp: true)
        let raw = try sentDF(udp, 1000)
        var otherPort = raw
        IPv4Header.put16(&otherPort, 22, 4501)
        let wrongPort = routerReport(about: otherPort, mtu: 700)
        guard case .refused = udp.r1.processICMP(wrongPort, start: 0, length: wrongPort.count, now: 2)
        else { return XCTFail() }
        let right = routerReport(about: raw, mtu: 700)
        guard case .lowered(_, 700, _, _) = udp.r1.processICMP(right, start: 0, length: right.count, now: 2) else {
            return XCTFail()
        }
    }

    // MARK: MSS clamping

    func syn(_ from: String, _ to: String, mss: UInt16, flags: UInt8 = 0x02) -> [UInt8] {
        var p = Packets.syn(options: [2, 4, UInt8(mss >> 8), UInt8(mss & 0xff)], flags: flags)
        IPv4Header.put32(&p, 12, ip(from)); IPv4Header.put32(&p, 16, ip(to))
        IPv4Header.setChecksum(&p, headerAt: 0, length: 20)
        p[36] = 0; p[37] = 0
        let pseudo = InternetChecksum.pseudoHeader(source: ip(from), destination: ip(to), proto: 6,
                                                   length: p.count - 20)
        IPv4Header.put16(&p, 36, ~InternetChecksum.sum(p, start: 20, count: p.count - 20, initial: pseudo))
        return p
    }

    func mss(_ p: [UInt8]) -> UInt16 { IPv4Header.u16(p, 42) }

    func tcpValid(_ p: [UInt8]) -> Bool {
        TCPSegmentation.tcpChecksumValid(p, ipStart: 0, ipHeader: 20, total: p.count, source: IPv4Header.u32(p, 12),
                                         destination: IPv4Header.u32(p, 16))
    }

    func testSYNsAreClampedToThePathBothWays() throws {
        let p = try pair(.clear)
        local(p.r2, 1280)   // only router 2 knows its link is small
        guard case .send(let outer, _) = p.r1.processOutbound(syn("10.1.0.5", "10.2.0.7", mss: 1460), now: 1),
              case .deliver(let arrived) = p.r2.processInbound(outer, now: 1) else { return XCTFail() }
        XCTAssertEqual(mss(arrived), 1174, "router 1 clamps to its 1500 path (1398), router 2 to its own 1280 one")
        XCTAssertTrue(tcpValid(arrived))
        guard case .send(let back, _) = p.r2.processOutbound(syn("10.2.0.7", "10.1.0.5", mss: 1460, flags: 0x12),
                                                             now: 1),
              case .deliver(let synAck) = p.r1.processInbound(back, now: 1) else { return XCTFail() }
        XCTAssertEqual(mss(synAck), 1174, "the SYN-ACK leaving router 2")
        XCTAssertTrue(tcpValid(synAck))
        XCTAssertEqual(p.r2.statistics["mss-clamped"], 2)
    }

    func testTheClampFollowsPathMTUDiscoveryAndThePolicysSetting() throws {
        let p = try pair(.set)
        let report = routerReport(about: try sentDF(p), mtu: 1280)
        _ = p.r1.processICMP(report, start: 0, length: report.count, now: 2)
        func clamped(_ d: Datapath) -> UInt16? {
            guard case .send(let outer, _) = d.processOutbound(syn("10.1.0.5", "10.2.0.7", mss: 1460), now: 3),
                  case .deliver(let arrived) = p.r2.processInbound(outer, now: 3) else { return nil }
            return mss(arrived)
        }
        XCTAssertEqual(clamped(p.r1), 1174)
        p.r1.tcpMSS[1] = .atMost(1000)
        XCTAssertEqual(clamped(p.r1), 1000)
        p.r1.tcpMSS[1] = .off
        p.r2.tcpMSS[1] = .off
        XCTAssertEqual(clamped(p.r1), 1460, "tcp-mss=off on both")
    }
}
