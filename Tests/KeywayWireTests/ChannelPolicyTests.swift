import XCTest
@testable import KeywayWire

final class ChannelPolicyTests: XCTestCase {
    func testClientCannotSendParentOnlyMessages() {
        for type in [MessageType.fdGrant, .enterSandbox, .shutdown, .reloadConfig, .peerRestarted] {
            XCTAssertFalse(ChannelPolicy.accepts(type, from: .client, to: .monitor), "\(type)")
        }
        XCTAssertTrue(ChannelPolicy.accepts(.statusRequest, from: .client, to: .monitor))
    }

    func testOnlyTheParentGrantsDescriptorsOrOrdersTheSandbox() {
        for receiver in Role.allCases {
            for sender in Role.allCases where sender != .parent {
                XCTAssertFalse(ChannelPolicy.accepts(.fdGrant, from: sender, to: receiver), "\(sender)->\(receiver)")
                XCTAssertFalse(ChannelPolicy.accepts(.enterSandbox, from: sender, to: receiver),
                               "\(sender)->\(receiver)")
                XCTAssertFalse(ChannelPolicy.accepts(.shutdown, from: sender, to: receiver), "\(sender)->\(receiver)")
            }
        }
    }

    func testOnlyTheMonitorReloadsConfiguration() {
        XCTAssertTrue(ChannelPolicy.accepts(.reloadConfig, from: .parent, to: .monitor))
        XCTAssertFalse(ChannelPolicy.accepts(.reloadConfig, from: .parent, to: .ike))
        XCTAssertFalse(ChannelPolicy.accepts(.reloadConfig, from: .parent, to: .datapath))
    }

    func testClientsReachOnlyTheMonitor() {
        for receiver in Role.allCases where receiver != .monitor {
            XCTAssertTrue(ChannelPolicy.allowed(from: .client, to: receiver).isEmpty, "\(receiver)")
        }
    }

    func testDecodeAppliesTheAllowlist() throws {
        let bytes = Frame.encode(.statusReply(StatusReply(processes: [])))
        XCTAssertThrowsError(try Frame.decode(bytes, from: .parent, to: .monitor)) { error in
            XCTAssertEqual(error as? WireError, .notAllowed(type: .statusReply, from: .parent, to: .monitor))
        }
        XCTAssertNoThrow(try Frame.decode(bytes, from: .monitor, to: .client))
    }

    func testAllowlistIsCheckedBeforeTheBodyIsParsed() {
        // An EnterSandbox from a client with a malformed body is refused for its type alone.
        var w = WireWriter()
        w.u16(FrameHeader.currentVersion); w.u16(MessageType.enterSandbox.rawValue); w.u32(4); w.u32(0); w.u32(1)
        XCTAssertThrowsError(try Frame.decode(w.bytes, from: .client, to: .monitor)) { error in
            XCTAssertEqual(error as? WireError, .notAllowed(type: .enterSandbox, from: .client, to: .monitor))
        }
    }

    func testOnlyTheMonitorSaysWhatMayExist() {
        for sender in Role.allCases where sender != .monitor {
            for receiver in Role.allCases {
                XCTAssertFalse(ChannelPolicy.accepts(.policyAuthority, from: sender, to: receiver),
                               "\(sender)->\(receiver)")
                XCTAssertFalse(ChannelPolicy.accepts(.datapathConfig, from: sender, to: receiver),
                               "\(sender)->\(receiver)")
                XCTAssertFalse(ChannelPolicy.accepts(.ikeConfig, from: sender, to: receiver), "\(sender)->\(receiver)")
            }
        }
        XCTAssertTrue(ChannelPolicy.accepts(.policyAuthority, from: .monitor, to: .parent))
    }

    func testNoChildNamesARouteOrFirewallRulePrefix() {
        // The datapath may only name generated policies (checked by keywayd); IKE reaches keywayd with nothing.
        XCTAssertEqual(ChannelPolicy.allowed(from: .datapath, to: .parent),
                       [.hello, .pong, .auditEvent, .generatedPolicySet])
        XCTAssertEqual(ChannelPolicy.allowed(from: .ike, to: .parent), [.hello, .pong, .auditEvent])
    }

    func testAuditEventsGoOnlyToKeywaydAndRecordsOnlyFromIt() {
        // Children never speak for each other: events travel on their own link to keywayd, which
        // attributes them; only keywayd hands attributed records on, and only to the monitor.
        for sender in Role.allCases {
            for receiver in Role.allCases {
                XCTAssertEqual(ChannelPolicy.accepts(.auditEvent, from: sender, to: receiver),
                               receiver == .parent && Role.children.contains(sender), "\(sender)->\(receiver)")
                XCTAssertEqual(ChannelPolicy.accepts(.auditRecords, from: sender, to: receiver),
                               sender == .parent && receiver == .monitor, "\(sender)->\(receiver)")
            }
        }
        XCTAssertFalse(ChannelPolicy.accepts(.consoleOutput, from: .client, to: .monitor))
        XCTAssertTrue(ChannelPolicy.accepts(.consoleOutput, from: .monitor, to: .client))
    }

    func testOnlyKeywaydTellsTheDatapathItsOuterPaths() {
        // The MTU toward a peer comes from routes only keywayd reads: no child may claim one.
        for sender in Role.allCases {
            for receiver in Role.allCases {
                XCTAssertEqual(ChannelPolicy.accepts(.outerPaths, from: sender, to: receiver),
                               sender == .parent && receiver == .datapath, "\(sender)->\(receiver)")
            }
        }
    }

    func testChildrenPeersAreSymmetric() {
        for role in Role.children {
            for peer in role.peers { XCTAssertTrue(peer.peers.contains(role), "\(role)<->\(peer)") }
        }
    }
}
