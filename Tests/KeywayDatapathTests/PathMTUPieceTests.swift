import KeywayCrypto
@testable import KeywayDatapath
import KeywayVocabulary
import XCTest

/// Test helpers: packets built by hand, and reassembly as a receiver would do it.
enum Packets {
    static func v4(_ s: String) -> IPAddress { .v4(IPv4Address(ip(s))) }

    /// An IPv4 packet of `total` bytes (payload bytes counting up), with `flags` (DF 0x4000).
    static func ipv4(_ src: String, _ dst: String, proto: UInt8 = 17, total: Int, id: UInt16 = 0x1234,
                     flags: UInt16 = 0, options: [UInt8] = []) -> [UInt8] {
        let h = 20 + options.count
        var p = [UInt8](repeating: 0, count: total)
        for i in h..<total { p[i] = UInt8(truncatingIfNeeded: i &* 13 &+ 5) }
        p[0] = 0x40 | UInt8(h / 4); IPv4Header.put16(&p, 2, UInt16(total)); IPv4Header.put16(&p, 4, id)
        IPv4Header.put16(&p, 6, flags); p[8] = 64; p[9] = proto
        IPv4Header.put32(&p, 12, ip(src)); IPv4Header.put32(&p, 16, ip(dst))
        for (i, b) in options.enumerated() { p[20 + i] = b }
        IPv4Header.setChecksum(&p, headerAt: 0, length: h)
        return p
    }

    /// Joins fragments as RFC 791 reassembly would (same ID, offsets, MF), or nil.
    static func reassemble(_ fragments: [[UInt8]]) -> [UInt8]? {
        guard let first = fragments.first, let h0 = try? IPv4Header(first) else { return nil }
        var payload: [UInt8] = [], expected = 0, sawLast = false
        for f in fragments {
            guard let h = try? IPv4Header(f), h.identification == h0.identification, h.source == h0.source,
                  h.destination == h0.destination, h.proto == h0.proto,
                  InternetChecksum.sum(f, start: 0, count: h.headerLength) == 0xffff,
                  Int(h.flagsAndOffset & 0x1fff) * 8 == expected, !sawLast else { return nil }
            payload += f[h.headerLength..<h.totalLength]
            expected += h.totalLength - h.headerLength
            sawLast = h.flagsAndOffset & 0x2000 == 0
        }
        guard sawLast else { return nil }
        var whole = Array(first[0..<h0.headerLength]) + payload
        IPv4Header.put16(&whole, 2, UInt16(whole.count))
        IPv4Header.put16(&whole, 6, h0.flagsAndOffset & 0x4000)
        IPv4Header.setChecksum(&whole, headerAt: 0, length: h0.headerLength)
        return whole
    }

    /// A TCP SYN carrying `options` (an MSS among them, or not).
    static func syn(options: [UInt8], flags: UInt8 = 0x02, payload: Int = 0) -> [UInt8] {
        let t = 20 + options.count, total = 20 + t + payload
        var p = ipv4("10.1.0.5", "10.2.0.7", proto: 6, total: total, flags: 0x4000)
        for i in 20..<(20 + t) { p[i] = 0 }
        IPv4Header.put16(&p, 20, 40000); IPv4Header.put16(&p, 22, 5001); IPv4Header.put32(&p, 24, 99)
        p[32] = UInt8(t / 4) << 4; p[33] = flags; IPv4Header.put16(&p, 34, 64240)
        for (i, b) in options.enumerated() { p[40 + i] = b }
        let pseudo = InternetChecksum.pseudoHeader(source: ip("10.1.0.5"), destination: ip("10.2.0.7"), proto: 6,
                                                   length: t + payload)
        IPv4Header.put16(&p, 36, ~InternetChecksum.sum(p, start: 20, count: t + payload, initial: pseudo))
        return p
    }

    static func tcpValid(_ p: [UInt8]) -> Bool {
        TCPSegmentation.tcpChecksumValid(p, ipStart: 0, ipHeader: 20, total: p.count, source: ip("10.1.0.5"),
                                         destination: ip("10.2.0.7"))
    }

    /// An ICMP fragmentation-needed from `reporter` to `to`, quoting `quote`, with a valid checksum.
    static func fragmentationNeeded(from reporter: String, to: String, mtu: UInt16, quote: [UInt8]) -> [UInt8] {
        var p = ipv4(reporter, to, proto: 1, total: 28 + quote.count)
        p[20] = 3; p[21] = 4; p[22] = 0; p[23] = 0; p[24] = 0; p[25] = 0
        IPv4Header.put16(&p, 26, mtu)
        for (i, b) in quote.enumerated() { p[28 + i] = b }
        IPv4Header.put16(&p, 22, ~InternetChecksum.sum(p, start: 20, count: 8 + quote.count))
        return p
    }
}

final class PathMTUTableTests: XCTestCase {
    let peer = Packets.v4("198.51.100.2"), other = Packets.v4("203.0.113.9")

    func testLocalMTUsComeFromKeywaydAndLearnedOnesLowerThem() {
        var t = PathMTUTable()
        XCTAssertEqual(t.mtu(toward: peer, now: 0), 1500, "before keywayd said anything")
        t.setLocal(defaultMTU: 1400, paths: [(peer, 1492)])
        XCTAssertEqual(t.mtu(toward: peer, now: 0), 1492)
        XCTAssertEqual(t.mtu(toward: other, now: 0), 1400, "the default for destinations keywayd did not name")
        XCTAssertEqual(t.lower(toward: peer, to: 1280, now: 10), 1280)
        XCTAssertEqual(t.mtu(toward: peer, now: 11), 1280)
        XCTAssertNil(t.lower(toward: peer, to: 1300, now: 12), "a report never raises the path")
        XCTAssertNil(t.lower(toward: peer, to: 1280, now: 12))
        XCTAssertEqual(t.mtu(toward: other, now: 11), 1400, "paths are per destination")
        t.setLocal(defaultMTU: 1400, paths: [(peer, 1200)])
        XCTAssertEqual(t.mtu(toward: peer, now: 13), 1200, "a smaller interface wins over what was learned")
    }

    func testNothingLowersAPathBelowTheFloor() {
        var t = PathMTUTable()
        XCTAssertEqual(t.lower(toward: peer, to: 68, now: 0), 576)
        XCTAssertEqual(t.mtu(toward: peer, now: 1), 576)
        XCTAssertNil(t.lower(toward: peer, to: 0, now: 2))
        t.setLocal(defaultMTU: 500, paths: [])
        XCTAssertEqual(t.mtu(toward: other, now: 0), 500, "an interface smaller than the floor is a fact, not a report")
    }

    func testALoweredPathGrowsBackAfterTenMinutes() {
        var t = PathMTUTable()
        _ = t.lower(toward: peer, to: 1280, now: 1_000)
        XCTAssertEqual(t.mtu(toward: peer, now: 1_599), 1280)
        XCTAssertEqual(t.mtu(toward: peer, now: 1_600), 1500, "aged out")
        XCTAssertEqual(t.age(now: 1_599), [])
        XCTAssertEqual(t.age(now: 1_600), [peer])
        XCTAssertEqual(t.learnedCount, 0)
        _ = t.lower(toward: peer, to: 1280, now: 2_000)
        _ = t.lower(toward: peer, to: 1000, now: 2_500)
        XCTAssertEqual(t.mtu(toward: peer, now: 3_050), 1000, "each lowering starts the ten minutes again")
    }

    func testLearnedEntriesAreBounded() {
        var t = PathMTUTable()
        for i in 0..<(PathMTUTable.maximumLearned + 10) {
            _ = t.lower(toward: .v4(IPv4Address(UInt32(0x0a00_0000 + i))), to: 1000, now: UInt64(i))
        }
        XCTAssertEqual(t.learnedCount, PathMTUTable.maximumLearned)
        XCTAssertEqual(t.mtu(toward: .v4(IPv4Address(0x0a00_0000)), now: 5_000), 1500, "the oldest gave way")
    }
}

final class ICMPErrorTests: XCTestCase {
    func espQuote(spi: UInt32 = 0x1234, seq: UInt32 = 7, body: Int = 8) -> [UInt8] {
        var p = Packets.ipv4("192.0.2.1", "198.51.100.2", proto: 50, total: 1500, flags: 0x4000)
        IPv4Header.put32(&p, 20, spi); IPv4Header.put32(&p, 24, seq)
        return Array(p[0..<(20 + body)])
    }

    func testAFragmentationNeededAboutOurESPParses() throws {
        let icmp = Packets.fragmentationNeeded(from: "192.0.2.254", to: "192.0.2.1", mtu: 1280,
                                               quote: espQuote(body: 548))
        let report = try FragmentationNeeded(icmp, start: 0, length: icmp.count)
        XCTAssertEqual(report.reporter, Packets.v4("192.0.2.254"))
        XCTAssertEqual(report.nextHopMTU, 1280)
        XCTAssertEqual(report.quoted, QuotedPacket(source: Packets.v4("192.0.2.1"),
                                                   destination: Packets.v4("198.51.100.2"),
                                                   totalLength: 1500, proto: 50, spi: 0x1234, sequence: 7,
                                                   dontFragment: true))
        let minimal = Packets.fragmentationNeeded(from: "192.0.2.254", to: "192.0.2.1", mtu: 1280,
                                                  quote: espQuote(body: 8))
        XCTAssertEqual(try FragmentationNeeded(minimal, start: 0, length: minimal.count).quoted.sequence, 7,
                       "RFC 792's eight bytes hold ESP's SPI and sequence number")
    }

    func testAHAndESPInUDPQuotesNeedMoreThanEightBytes() throws {
        var ah = Packets.ipv4("192.0.2.1", "198.51.100.2", proto: 51, total: 1500)
        IPv4Header.put32(&ah, 24, 0xabc); IPv4Header.put32(&ah, 28, 42)
        let ahICMP = Packets.fragmentationNeeded(from: "192.0.2.254", to: "192.0.2.1", mtu: 1400,
                                                 quote: Array(ah[0..<32]))
        let parsed = try FragmentationNeeded(ahICMP, start: 0, length: ahICMP.count).quoted
        XCTAssertEqual([parsed.spi, parsed.sequence], [0xabc, 42])
        let shortAH = Packets.fragmentationNeeded(from: "192.0.2.254", to: "192.0.2.1", mtu: 1400,
                                                  quote: Array(ah[0..<28]))
        XCTAssertThrowsError(try FragmentationNeeded(shortAH, start: 0, length: shortAH.count)) {
            XCTAssertEqual($0 as? FragmentationNeeded.Refusal, .quoteTooShort)
        }
        var udp = Packets.ipv4("192.0.2.1", "198.51.100.2", proto: 17, total: 1500)
        IPv4Header.put16(&udp, 20, 4500); IPv4Header.put16(&udp, 22, 4501)
        IPv4Header.put32(&udp, 28, 0xdef); IPv4Header.put32(&udp, 32, 9)
        let udpICMP = Packets.fragmentationNeeded(from: "192.0.2.254", to: "192.0.2.1", mtu: 1400,
                                                  quote: Array(udp[0..<36]))
        let q = try FragmentationNeeded(udpICMP, start: 0, length: udpICMP.count).quoted
        XCTAssertEqual([q.spi, q.sequence, UInt32(q.destinationPort)], [0xdef, 9, 4501])
        XCTAssertEqual(q.ipsecProtocol, .esp)
        IPv4Header.put32(&udp, 28, 0)
        let ike = Packets.fragmentationNeeded(from: "192.0.2.254", to: "192.0.2.1", mtu: 1400,
                                              quote: Array(udp[0..<36]))
        XCTAssertThrowsError(try FragmentationNeeded(ike, start: 0, length: ike.count)) {
            XCTAssertEqual($0 as? FragmentationNeeded.Refusal, .ikeQuoted)
        }
    }

    func testRefusalsAreTypedAndOnlyOursAreWorthAnAudit() {
        func refusal(_ p: [UInt8]) -> FragmentationNeeded.Refusal? {
            do { _ = try FragmentationNeeded(p, start: 0, length: p.count); return nil } catch { return error }
        }
        var bad = Packets.fragmentationNeeded(from: "192.0.2.254", to: "192.0.2.1", mtu: 1280, quote: espQuote())
        bad[30] ^= 1
        XCTAssertEqual(refusal(bad), .badChecksum)
        var unreachable = Packets.fragmentationNeeded(from: "192.0.2.254", to: "192.0.2.1", mtu: 1280,
                                                      quote: espQuote())
        unreachable[21] = 3
        XCTAssertEqual(refusal(unreachable), .notFragmentationNeeded)
        let tcp = Packets.fragmentationNeeded(from: "192.0.2.254", to: "192.0.2.1", mtu: 1280,
                                              quote: Array(Packets.ipv4("192.0.2.1", "198.51.100.2", proto: 6,
                                                                        total: 60)[0..<28]))
        XCTAssertEqual(refusal(tcp), .notIPsec)
        var later = espQuote()
        IPv4Header.put16(&later, 6, 0x00b9); IPv4Header.setChecksum(&later, headerAt: 0, length: 20)
        XCTAssertEqual(refusal(Packets.fragmentationNeeded(from: "192.0.2.254", to: "192.0.2.1", mtu: 1280,
                                                           quote: later)),
                       .fragmentQuoted)
        XCTAssertEqual(refusal([0x45, 0, 0]), .badHeader)
        XCTAssertEqual(refusal(Packets.ipv4("192.0.2.254", "192.0.2.1", proto: 1, total: 24)), .truncated)
        XCTAssertTrue(FragmentationNeeded.Refusal.quoteTooShort.isOurs)
        XCTAssertFalse(FragmentationNeeded.Refusal.notIPsec.isOurs)
        // Every prefix of a valid report parses or is refused; none traps.
        let good = Packets.fragmentationNeeded(from: "192.0.2.254", to: "192.0.2.1", mtu: 1280,
                                               quote: espQuote(body: 40))
        for n in 0...good.count { _ = refusal(Array(good[0..<n])) }
    }

    func testTheReplyQuotesTheSenderAndFitsFiveHundredSeventySixBytes() throws {
        var buffer = [UInt8](repeating: 0, count: 96)
            + Packets.ipv4("10.1.0.5", "10.2.0.7", proto: 17, total: 1400, flags: 0x4000)
        let header = try IPv4Header(buffer, at: 96)
        let (s, n) = try XCTUnwrap(FragmentationNeededReply.build(&buffer, packetAt: 96, header: header, mtu: 1214))
        XCTAssertEqual(s, 68)
        XCTAssertEqual(n, 576)
        let reply = Array(buffer[s..<(s + n)])
        let parsed = try IPv4Header(reply)
        XCTAssertEqual([parsed.source, parsed.destination], [ip("10.2.0.7"), ip("10.1.0.5")])
        XCTAssertEqual(parsed.proto, 1)
        XCTAssertEqual(InternetChecksum.sum(reply, start: 0, count: 20), 0xffff)
        XCTAssertEqual(InternetChecksum.sum(reply, start: 20, count: n - 20), 0xffff, "ICMP checksum")
        XCTAssertEqual([reply[20], reply[21]], [3, 4])
        XCTAssertEqual(IPv4Header.u16(reply, 26), 1214)
        XCTAssertEqual(IPv4Header.u32(reply, 28 + 12), ip("10.1.0.5"), "the quote starts with the packet's header")
        XCTAssertNil(FragmentationNeededReply.build(&buffer, packetAt: 20, header: header, mtu: 1214),
                     "no room before it")
    }

    func testNoErrorAboutErrorsLaterFragmentsOrNobody() throws {
        func allowed(_ p: [UInt8]) throws -> Bool {
            FragmentationNeededReply.allowed(p, start: 0, header: try IPv4Header(p))
        }
        XCTAssertTrue(try allowed(Packets.ipv4("10.1.0.5", "10.2.0.7", total: 100, flags: 0x4000)))
        XCTAssertFalse(try allowed(Packets.ipv4("0.0.0.0", "10.2.0.7", total: 100, flags: 0x4000)))
        XCTAssertFalse(try allowed(Packets.ipv4("224.0.0.5", "10.2.0.7", total: 100, flags: 0x4000)))
        XCTAssertFalse(try allowed(Packets.ipv4("10.1.0.5", "10.2.0.7", total: 100, flags: 0x4010)))
        var error = Packets.ipv4("10.1.0.5", "10.2.0.7", proto: 1, total: 100, flags: 0x4000)
        error[20] = 3
        XCTAssertFalse(try allowed(error))
        error[20] = 8
        XCTAssertTrue(try allowed(error), "an echo request may get one")
    }

    func testRepliesAreRateLimitedPerSenderAndInAll() {
        var limit = ICMPRateLimit(perSource: 2, perSecond: 3)
        let a = Packets.v4("10.1.0.5"), b = Packets.v4("10.1.0.6"), c = Packets.v4("10.1.0.7")
        XCTAssertEqual([limit.allow(a, now: 5), limit.allow(a, now: 5), limit.allow(a, now: 5)], [true, true, false])
        XCTAssertEqual([limit.allow(b, now: 5), limit.allow(c, now: 5)], [true, false], "three a second in all")
        XCTAssertTrue(limit.allow(a, now: 6), "a new second")
        XCTAssertEqual(limit.sourcesThisSecond, 1)
    }
}

final class FragmenterTests: XCTestCase {
    func testAPacketSplitsIntoFragmentsThatReassembleToIt() throws {
        for (total, mtu) in [(1500, 1280), (1438, 576), (8000, 1400), (1281, 1280), (600, 576)] {
            let packet = Packets.ipv4("192.0.2.1", "198.51.100.2", proto: 50, total: total, id: 0)
            var buffer = packet + [UInt8](repeating: 0, count: 2 * total + 400)
            let run = try XCTUnwrap(IPv4Fragmenter.fragment(&buffer, packetAt: 0, length: total, mtu: mtu, into: total,
                                                            limit: buffer.count, identification: 0x7777))
            let pieces = (0..<run.count).map { Array(buffer[run.start($0)..<(run.start($0) + run.length($0))]) }
            for p in pieces { XCTAssertLessThanOrEqual(p.count, mtu, "\(total) at \(mtu)") }
            XCTAssertEqual(pieces.dropLast().allSatisfy { ($0.count - 20) % 8 == 0 }, true, "offsets in eights")
            XCTAssertTrue(pieces.allSatisfy { IPv4Header.u16($0, 4) == 0x7777 },
                          "one identification, never the kernel's")
            var expected = packet
            IPv4Header.put16(&expected, 4, 0x7777); IPv4Header.setChecksum(&expected, headerAt: 0, length: 20)
            XCTAssertEqual(Packets.reassemble(pieces), expected, "\(total) at \(mtu)")
            XCTAssertEqual(run.count, (total - 20 + (mtu - 20) / 8 * 8 - 1) / ((mtu - 20) / 8 * 8))
        }
    }

    func testOptionsNotToBeCopiedBecomeNOPsAfterTheFirstFragment() throws {
        // Record route (7, not copied) and a copied option (0x82, security), padded with EOL.
        let options: [UInt8] = [7, 7, 4, 0, 0, 0, 0, 0x82, 4, 1, 2, 0]
        let packet = Packets.ipv4("192.0.2.1", "198.51.100.2", proto: 50, total: 1000, options: options)
        var buffer = packet + [UInt8](repeating: 0, count: 1400)
        let run = try XCTUnwrap(IPv4Fragmenter.fragment(&buffer, packetAt: 0, length: 1000, mtu: 576, into: 1000,
                                                        limit: buffer.count))
        XCTAssertEqual(Array(buffer[(run.start(0) + 20)..<(run.start(0) + 32)]), options)
        XCTAssertEqual(Array(buffer[(run.start(1) + 20)..<(run.start(1) + 32)]),
                       [1, 1, 1, 1, 1, 1, 1, 0x82, 4, 1, 2, 0])
        XCTAssertEqual(InternetChecksum.sum(buffer, start: run.start(1), count: 32), 0xffff)
    }

    func testSpacingLeavesRoomAroundEachPieceAndTheRoomIsChecked() throws {
        let packet = Packets.ipv4("10.1.0.5", "10.2.0.7", total: 1400)
        var buffer = packet + [UInt8](repeating: 0, count: 4000)
        let run = try XCTUnwrap(IPv4Fragmenter.fragment(&buffer, packetAt: 0, length: 1400, mtu: 600, into: 1496,
                                                        spacing: 800, limit: buffer.count))
        XCTAssertEqual([run.start(0), run.start(1), run.start(2)], [1496, 2296, 3096])
        XCTAssertEqual(run.count, 3)
        var short = packet + [UInt8](repeating: 0, count: 1000)
        XCTAssertNil(IPv4Fragmenter.fragment(&short, packetAt: 0, length: 1400, mtu: 600, into: 1400,
                                             limit: short.count))
        XCTAssertNil(IPv4Fragmenter.fragment(&buffer, packetAt: 0, length: 1400, mtu: 27, into: 1400,
                                             limit: buffer.count),
                     "an MTU that leaves no room for eight bytes")
        XCTAssertNil(IPv4Fragmenter.fragment(&buffer, packetAt: 0, length: 1400, mtu: 600, into: 100,
                                             limit: buffer.count),
                     "never over the packet itself")
    }

    func testAFragmentSplitsFurtherKeepingItsOffsetAndMF() throws {
        var middle = Packets.ipv4("192.0.2.1", "198.51.100.2", total: 1020)
        IPv4Header.put16(&middle, 6, 0x2000 | 100); IPv4Header.setChecksum(&middle, headerAt: 0, length: 20)
        var buffer = middle + [UInt8](repeating: 0, count: 2000)
        let run = try XCTUnwrap(IPv4Fragmenter.fragment(&buffer, packetAt: 0, length: 1020, mtu: 576, into: 1020,
                                                        limit: buffer.count))
        XCTAssertEqual(IPv4Header.u16(buffer, run.start(0) + 6), 0x2000 | 100)
        XCTAssertEqual(IPv4Header.u16(buffer, run.start(1) + 6), 0x2000 | (100 + 552 / 8), "MF stays: more followed it")
    }
}

final class MSSClampTests: XCTestCase {
    func testASYNsMSSIsLoweredAndItsChecksumStillHolds() throws {
        var syn = Packets.syn(options: [2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 0, 0])
        XCTAssertTrue(Packets.tcpValid(syn))
        XCTAssertEqual(MSSClamp.clamp(&syn, start: 0, header: try IPv4Header(syn), limit: 1398), 1460)
        XCTAssertEqual(IPv4Header.u16(syn, 42), 1398)
        XCTAssertTrue(Packets.tcpValid(syn), "RFC 1624's update agrees with a full sum")
    }

    func testAnMSSAtAnOddOffsetTouchesTwoWords() throws {
        for limit in [UInt16(1174), 1398, 536, 88] {
            var syn = Packets.syn(options: [1, 2, 4, 0x05, 0xb4, 1, 1, 0])
            XCTAssertEqual(MSSClamp.clamp(&syn, start: 0, header: try IPv4Header(syn), limit: limit), 1460)
            XCTAssertEqual(IPv4Header.u16(syn, 43), limit)
            XCTAssertTrue(Packets.tcpValid(syn), "limit \(limit)")
        }
    }

    func testOnlySYNsWithALargerMSSChange() throws {
        for (options, flags, why) in [([UInt8]([2, 4, 0x05, 0xb4]), UInt8(0x10), "not a SYN"),
                                      ([2, 4, 0x04, 0x00], 0x02, "already small enough"),
                                      ([1, 1, 4, 2], 0x12, "no MSS option"),
                                      ([2, 3, 0x05, 0xb4], 0x02, "an MSS option of the wrong length"),
                                      ([8, 40, 2, 4], 0x02, "an option running past the header"),
                                      ([0, 0, 2, 4, 5, 0xb4, 0, 0], 0x02, "after the end of the list")] {
            var p = Packets.syn(options: options, flags: flags)
            let before = p
            XCTAssertNil(MSSClamp.clamp(&p, start: 0, header: try IPv4Header(p), limit: 1200), why)
            XCTAssertEqual(p, before, why)
        }
        var synAck = Packets.syn(options: [2, 4, 0x05, 0xb4], flags: 0x12)
        XCTAssertEqual(MSSClamp.clamp(&synAck, start: 0, header: try IPv4Header(synAck), limit: 1200), 1460,
                       "SYN-ACK too")
        XCTAssertTrue(Packets.tcpValid(synAck))
    }
}
