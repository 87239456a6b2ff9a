import KeywayHostNet
import KeywayPrivsep
import XCTest

/// The rtnetlink requests KernelHost sends, read back field by field against the kernel's
/// UAPI numbers (linux/netlink.h, rtnetlink.h, fib_rules.h, if_link.h), written out here.
final class NetlinkMessageTests: XCTestCase {
    struct Parsed {
        let type: UInt16, flags: UInt16, sequence: UInt32
        let header: [UInt8]
        var attributes: [UInt16: [UInt8]] = [:]
    }

    func u16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }
    func u32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * $1) } }

    /// The request for `change`, split into its netlink header, its family header of
    /// `headerLength` bytes and its attributes.
    func parse(_ change: RoutingChange, sequence: UInt32 = 1, headerLength: Int = 12,
               file: StaticString = #filePath, line: UInt = #line) throws -> Parsed {
        let b = try XCTUnwrap(KernelHost.message(for: change, sequence: sequence), file: file, line: line)
        XCTAssertEqual(Int(u32(b, 0)), b.count, "nlmsg_len", file: file, line: line)
        var p = Parsed(type: u16(b, 4), flags: u16(b, 6), sequence: u32(b, 8), header: Array(b[16..<16 + headerLength]))
        var at = 16 + headerLength
        while at + 4 <= b.count {
            let length = Int(u16(b, at)), type = u16(b, at + 2)
            XCTAssertGreaterThanOrEqual(length, 4, file: file, line: line)
            p.attributes[type] = Array(b[at + 4..<at + length])
            at += (length + 3) & ~3
        }
        XCTAssertEqual(at, b.count, "attributes fill the message", file: file, line: line)
        return p
    }

    let request: UInt16 = 0x1, ack: UInt16 = 0x4, replace: UInt16 = 0x100, excl: UInt16 = 0x200, create: UInt16 = 0x400
    func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    func testRouteReplaceIsALinkScopeUnicastRouteInOurTableViaTheDevice() throws {
        let route = KernelRoute(address: 0xc000_0202, prefixLength: 32, preferredSource: 0xc000_0201)
        let m = try parse(.replaceRoute(route, table: 19287, interfaceIndex: 7), sequence: 42)
        XCTAssertEqual(m.type, 24, "RTM_NEWROUTE")
        XCTAssertEqual(m.flags, request | ack | create | replace)
        XCTAssertEqual(m.sequence, 42)
        // family AF_INET, dst_len 32, src_len, tos, table (19287 > 255: RT_TABLE_UNSPEC), RTPROT_BOOT,
        // RT_SCOPE_LINK, RTN_UNICAST
        XCTAssertEqual(Array(m.header[0..<8]), [2, 32, 0, 0, 0, 3, 253, 1])
        XCTAssertEqual(m.attributes[15], le32(19287), "RTA_TABLE")
        XCTAssertEqual(m.attributes[1], [192, 0, 2, 2], "RTA_DST, network order")
        XCTAssertEqual(m.attributes[4], le32(7), "RTA_OIF")
        XCTAssertEqual(m.attributes[7], [192, 0, 2, 1], "RTA_PREFSRC")
        XCTAssertEqual(m.attributes.count, 4)
    }

    func testRouteWithoutSourceHasNoPrefsrcAndHostBitsAreCleared() throws {
        let route = KernelRoute(address: 0x0a02_0009, prefixLength: 24)
        let m = try parse(.replaceRoute(route, table: 19287, interfaceIndex: 7), sequence: 1)
        XCTAssertEqual(m.attributes[1], [10, 2, 0, 0])
        XCTAssertNil(m.attributes[7])
    }

    func testRouteDeleteMatchesAnyScopeAndOptionallyAnyDevice() throws {
        let route = KernelRoute(address: 0x0a02_0000, prefixLength: 24)
        let m = try parse(.deleteRoute(route, table: 19287, interfaceIndex: nil), sequence: 9)
        XCTAssertEqual(m.type, 25, "RTM_DELROUTE")
        XCTAssertEqual(m.flags, request | ack)
        XCTAssertEqual(Array(m.header[0..<8]), [2, 24, 0, 0, 0, 0, 255, 0], "RT_SCOPE_NOWHERE, any protocol and type")
        XCTAssertEqual(m.attributes[15], le32(19287))
        XCTAssertNil(m.attributes[4], "no device: whatever it is")
        let viaDevice = try parse(.deleteRoute(route, table: 19287, interfaceIndex: 3), sequence: 9)
        XCTAssertEqual(viaDevice.attributes[4], le32(3))
    }

    func testRuleIsNotFwmarkLookupTableAtPriority() throws {
        let add = try parse(.addRule(notMark: 0x4b57, table: 19287, priority: 32000), sequence: 5)
        XCTAssertEqual(add.type, 32, "RTM_NEWRULE")
        XCTAssertEqual(add.flags, request | ack | create | excl)
        // family, dst_len, src_len, tos, table (unspec: see FRA_TABLE), res1, res2, FR_ACT_TO_TBL;
        // flags FIB_RULE_INVERT
        XCTAssertEqual(Array(add.header[0..<8]), [2, 0, 0, 0, 0, 0, 0, 1])
        XCTAssertEqual(u32(add.header, 8), 2)
        XCTAssertEqual(add.attributes[15], le32(19287), "FRA_TABLE")
        XCTAssertEqual(add.attributes[10], le32(0x4b57), "FRA_FWMARK")
        XCTAssertEqual(add.attributes[16], le32(0xffff_ffff), "FRA_FWMASK")
        XCTAssertEqual(add.attributes[6], le32(32000), "FRA_PRIORITY")
        let delete = try parse(.deleteRule(notMark: 0x4b57, table: 19287, priority: 32000), sequence: 5)
        XCTAssertEqual(delete.type, 33, "RTM_DELRULE")
        XCTAssertEqual(delete.flags, request | ack)
        XCTAssertEqual(delete.attributes, add.attributes)
    }

    func testQueueLengthIsALinkChangeByIndex() throws {
        let m = try parse(.setQueueLength(interfaceIndex: 7, packets: 4096), sequence: 3, headerLength: 16)
        XCTAssertEqual(m.type, 16, "RTM_NEWLINK")
        XCTAssertEqual(m.flags, request | ack, "changes an existing link, creates none")
        XCTAssertEqual(u32(m.header, 4), 7, "ifi_index")
        XCTAssertEqual(m.attributes, [13: le32(4096)], "IFLA_TXQLEN")
    }

    func testTheTunMTUIsALinkChangeByIndex() throws {
        let m = try parse(.setMTU(interfaceIndex: 7, bytes: 1214), sequence: 3, headerLength: 16)
        XCTAssertEqual(m.type, 16, "RTM_NEWLINK")
        XCTAssertEqual(m.flags, request | ack)
        XCTAssertEqual(u32(m.header, 4), 7, "ifi_index")
        XCTAssertEqual(m.attributes, [4: le32(1214)], "IFLA_MTU")
        XCTAssertNil(KernelHost.message(for: .setMTU(interfaceIndex: 0, bytes: 1400), sequence: 1))
    }

    func testAPathMTULookUpReadsTheRouteAndItsInterface() throws {
        // The loopback route, as every namespace has it: lo's MTU (65536 here) within a u16.
        let answers = KernelHost().pathMTUs(toward: [0x7f00_0001, 0xc000_02fe], mark: 0x4b57)
        XCTAssertEqual(answers.count, 2)
        let loopback = try answers[0].get()
        XCTAssertGreaterThanOrEqual(loopback, 1500)
        XCTAssertLessThanOrEqual(loopback, 65_535)
        if case .success(let mtu) = answers[1] {
            // A host with a default route answers with that interface's MTU.
            XCTAssertGreaterThanOrEqual(mtu, 68)
        }
    }

    func testChangesThatCannotBeExpressedAreRefused() {
        let overlong = KernelRoute(address: 0, prefixLength: 33), plain = KernelRoute(address: 0, prefixLength: 8)
        XCTAssertNil(KernelHost.message(for: .replaceRoute(overlong, table: 1, interfaceIndex: 7), sequence: 1))
        XCTAssertNil(KernelHost.message(for: .replaceRoute(plain, table: 1, interfaceIndex: 0), sequence: 1),
                     "no device")
        XCTAssertNil(KernelHost.message(for: .setQueueLength(interfaceIndex: -1, packets: 1), sequence: 1))
    }
}
