import KeywayVocabulary
import XCTest
@testable import KeywayWire

final class RejectionTests: XCTestCase {
    func assertRejects(_ bytes: [UInt8], _ expected: WireError, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Frame.decode(bytes), file: file, line: line) { error in
            XCTAssertEqual(error as? WireError, expected, file: file, line: line)
        }
    }

    func header(version: UInt16 = FrameHeader.currentVersion, type: UInt16, length: UInt32, id: UInt32 = 0) -> [UInt8] {
        var w = WireWriter()
        w.u16(version); w.u16(type); w.u32(length); w.u32(id)
        return w.bytes
    }

    func testTruncatedHeader() {
        assertRejects([], .truncatedHeader(received: 0))
        assertRejects([0, 1, 0, 7, 0], .truncatedHeader(received: 5))
    }

    func testWrongVersion() {
        // Version 1 counted lists in 16 bits and knew no pages: its messages would be misread.
        assertRejects(header(version: 1, type: 7, length: 8) + [UInt8](repeating: 0, count: 8), .wrongVersion(1))
    }

    func testUnknownType() {
        assertRejects(header(type: 999, length: 0), .unknownType(999))
        assertRejects(header(type: 0, length: 0), .unknownType(0))
    }

    func testShortBodyWhenDatagramIsCut() {
        let full = Frame.encode(.ping(Ping(nonce: 5)))
        assertRejects(Array(full.dropLast(3)), .shortBody(needed: 8, remaining: 5))
    }

    func testShortBodyWhenFieldRunsPastDeclaredBody() {
        // A Ping whose header declares 4 body bytes: the u64 nonce cannot be read.
        assertRejects(header(type: 7, length: 4) + [0, 0, 0, 1], .shortBody(needed: 8, remaining: 4))
    }

    func testOverlongDeclaredBody() {
        assertRejects(header(type: 7, length: 0xFFFF_FFF0),
                      .overlongLength(declared: 0xFFFF_FFF0, limit: FrameHeader.maximumBody))
    }

    func testOverlongStringField() {
        // EnterSandbox whose root claims 1 MiB.
        var w = WireWriter()
        w.u32(1); w.u32(1); w.u32(1 << 20)
        assertRejects(header(type: 3, length: UInt32(w.bytes.count)) + w.bytes,
                      .overlongLength(declared: 1 << 20, limit: 1024))
    }

    func testOverlongArrayCount() {
        var w = WireWriter()
        w.u16(5000)
        assertRejects(header(type: 10, length: 2) + w.bytes,
                      .overlongLength(declared: 5000, limit: StatusReply.maximumProcesses))
    }

    func testInvalidEnumValues() {
        assertRejects(header(type: 2, length: 1) + [0], .invalidEnum(field: "fdgrant.kind", value: 0))
        assertRejects(header(type: 2, length: 1) + [200], .invalidEnum(field: "fdgrant.kind", value: 200))
        var hello = Frame.encode(.hello(Hello(role: .ike, pid: 1, startedAt: 1, sandboxed: true)))
        hello[12] = 9
        assertRejects(hello, .invalidEnum(field: "hello.role", value: 9))
        var bool = Frame.encode(.hello(Hello(role: .ike, pid: 1, startedAt: 1, sandboxed: true)))
        bool[bool.count - 1] = 2
        assertRejects(bool, .invalidEnum(field: "hello.sandboxed", value: 2))
        assertRejects(header(type: 20, length: 1) + [17], .invalidEnum(field: "flush.proto", value: 17))
        // A /33 prefix, host bits beyond the prefix, and a replay window beyond what the datapath allocates.
        var set = Frame.encode(.generatedPolicySet(GeneratedPolicySet(
            policies: [samplePolicy(id: 0x4000_0000, tunnel: true)])))
        let sourceLength = 12 + 4 + 4 + 4
        set[sourceLength] = 33
        assertRejects(set, .invalidEnum(field: "policy.source.length", value: 33))
        set[sourceLength] = 8
        assertRejects(set, .invalidEnum(field: "policy.source.host-bits", value: 0x0a010000))
        var record = SARecord(policyID: 1, inbound: true, proto: .esp, spi: 1, source: a(1), destination: a(2),
                              tunnel: true, encryption: .aes128, integrity: .sha1, encryptionKey: [], integrityKey: [],
                              lifetimeSeconds: 0)
        record.replayWindow = 1 << 20
        let config = Frame.encode(.datapathConfig(DatapathConfig(generation: 1,
                                                                 bounds: ConfigurationBounds(policies: [], peers: []),
                                                                 sas: [record])))
        assertRejects(config, .invalidEnum(field: "sa.replay-window", value: 1 << 20))
        // An algorithm or IPsec protocol number that does not exist.
        var bad = Frame.encode(.saRemove(SARemove(entries: [.init(spi: 1, proto: .esp, destination: a(2))])))
        bad[12 + 2 + 4] = 17
        assertRejects(bad, .invalidEnum(field: "remove.proto", value: 17))
        var peer = Frame.encode(.hostAddresses(HostAddresses(addresses: [.v4(a(1))])))
        peer[12 + 2] = 6
        assertRejects(peer, .invalidEnum(field: "host-address.family", value: 6))
    }

    func testPathValuesOutsideTheirBoundsAreRefused() {
        // An MTU below IPv4's minimum, wherever it sits.
        var paths = Frame.encode(.outerPaths(OuterPaths(defaultMTU: 1500,
                                                        paths: [OuterPath(destination: .v4(a(2)), mtu: 1280)],
                                                        tunMTU: 1214)))
        paths[12] = 0; paths[13] = 67
        assertRejects(paths, .invalidEnum(field: "outer-paths.default", value: 67))
        var path = Frame.encode(.outerPaths(OuterPaths(defaultMTU: 1500,
                                                       paths: [OuterPath(destination: .v4(a(2)), mtu: 1280)],
                                                       tunMTU: 1214)))
        path[path.count - 2] = 0; path[path.count - 1] = 0
        assertRejects(path, .invalidEnum(field: "outer-paths.mtu", value: 0))
        var tooMany = WireWriter()
        tooMany.u16(1500); tooMany.u16(1400); tooMany.u16(UInt16(OuterPaths.maximumPaths + 1))
        assertRejects(header(type: MessageType.outerPaths.rawValue,
                             length: UInt32(tooMany.bytes.count)) + tooMany.bytes,
                      .overlongLength(declared: OuterPaths.maximumPaths + 1, limit: OuterPaths.maximumPaths))
        // An SA overhead no transform has, a path MTU below the minimum.
        func state(overhead: UInt16, pathMTU: UInt16) -> [UInt8] {
            var sa = SAStatus(spi: 1, proto: 50, source: 1, destination: 2, encryption: "aes-128", integrity: "sha1",
                              state: "mature", ageSeconds: 0, sinceFirstUse: 0, used: false, bytes: 0, replayWindow: 32,
                              softSeconds: 0, hardSeconds: 0, softBytes: 0, hardBytes: 0)
            sa.overhead = overhead; sa.pathMTU = pathMTU
            return Frame.encode(.datapathState(DatapathState(sas: [sa], policies: [], statistics: [])))
        }
        assertRejects(state(overhead: 513, pathMTU: 1500), .invalidEnum(field: "sa.overhead", value: 513))
        assertRejects(state(overhead: 62, pathMTU: 67), .invalidEnum(field: "sa.path-mtu", value: 67))
        // tcp-mss: an unknown kind, a value with "off", a value below what TCP needs.
        for (kind, value) in [(UInt8(3), UInt16(0)), (1, 1200), (2, 87), (2, 65_496)] {
            var policy = Frame.encode(.generatedPolicySet(GeneratedPolicySet(policies: [samplePolicy(id: 0x4000_0000,
                                                                                                    tunnel: true)])))
            policy[policy.count - 3] = kind
            policy[policy.count - 2] = UInt8(value >> 8); policy[policy.count - 1] = UInt8(value & 0xff)
            assertRejects(policy, .invalidEnum(field: "policy.tcp-mss", value: UInt32(kind) << 16 | UInt32(value)))
        }
        var bounds = Frame.encode(.policyAuthority(PolicyAuthority(generation: 1, bounds: ConfigurationBounds(
            policies: [], peers: [AllowedPeer(address: IPv4Prefix(0xc0000200, length: 24), generatePolicy: false)]))))
        bounds[bounds.count - 5] = 2
        assertRejects(bounds, .invalidEnum(field: "peer.nat-traversal", value: 2))
    }

    /// IKEv2's additions: the auth method, the exchange's version, identities and the group list.
    func testIKEv2FieldsAreValidated() {
        var request = IKEv2SignRequest(id: 1, exchange: sampleIKEv2Exchange, certificate: "c", method: 14,
                                       peerHashes: [], message: [1], nonce: [2], macedID: [3])
        request.method = 2
        // The method byte follows id (8), the exchange (4+8, 4, 1, 1, 1, 4+8) and the certificate (4+1).
        assertRejects(Frame.encode(.ikev2SignRequest(request)), .invalidEnum(field: "sign.method", value: 2))
        var exchange = sampleIKEv2Exchange
        exchange.version = 3
        assertRejects(Frame.encode(.signAnnounce(SignAnnounce(exchange: exchange, certificate: "c"))),
                      .invalidEnum(field: "exchange.version", value: 3))
        var peer = IKEPeerRecord(address: IPv4Prefix(0xc0000202, length: 32), port: 500, secret: [1],
                                 exchangeMode: .ike2,
                                 natTraversal: false, generatePolicy: false, sendInitialContact: true,
                                 proposalCheck: .strict, hash: .sha256, encryption: .aes128, dhGroup: .modp2048,
                                 lifetime: 3600, lifebytes: 0)
        let fallback = IKEPolicyRecord(policy: samplePolicy(id: 0, tunnel: true), authAlgorithms: [.sha1],
                                       encAlgorithms: [.aes128], lifetime: 1800, pfsGroup: nil)
        peer.myID = "fqdn:bad name"
        assertRejects(Frame.encode(.ikeConfig(IKEConfig(generation: 1, peers: [peer], policies: [],
                                                        defaultProposal: fallback))),
                      .invalidEnum(field: "peer.my-id", value: 0))
        peer.myID = "auto"
        peer.dhGroups = []
        assertRejects(Frame.encode(.ikeConfig(IKEConfig(generation: 1, peers: [peer], policies: [],
                                                        defaultProposal: fallback))),
                      .invalidEnum(field: "peer.dh-group.count", value: 0))
    }

    func testTrailingBytesAfterDeclaredBody() {
        assertRejects(Frame.encode(.shutdown(Shutdown())) + [0xAA], .trailingBytes(count: 1))
    }

    func testTrailingBytesInsideDeclaredBody() {
        // Body length covers an extra byte that no field consumes.
        assertRejects(header(type: 5, length: 2) + [1, 2], .trailingBytes(count: 2))
        assertRejects(header(type: 7, length: 9) + [0, 0, 0, 0, 0, 0, 0, 1, 0xFF], .trailingBytes(count: 1))
    }

    func testInvalidUTF8() {
        var w = WireWriter()
        w.data([0xC3, 0x28])
        assertRejects(header(type: 13, length: UInt32(w.bytes.count)) + w.bytes, .invalidText(field: "error.reason"))
    }

    func testEveryTruncationOfEverySampleIsRejectedNotCrashed() {
        for message in samples {
            let bytes = Frame.encode(message)
            for cut in 0..<bytes.count {
                XCTAssertThrowsError(try Frame.decode(Array(bytes.prefix(cut))), "\(message.type) cut at \(cut)")
            }
        }
    }

    /// A RefusalReport body: a count, then (role, u64) per entry.
    func refusalReport(_ entries: [(UInt8, UInt64)]) -> [UInt8] {
        var w = WireWriter()
        w.u16(UInt16(entries.count)); for (role, n) in entries { w.u8(role); w.u64(n) }
        return header(type: MessageType.refusalReport.rawValue, length: UInt32(w.bytes.count)) + w.bytes
    }

    func testARefusalReportNamingARoleTwiceIsRefused() {
        // Decoded into a dictionary, the second count would silently replace the first.
        assertRejects(refusalReport([(1, 5), (1, 7)]), .unorderedKey(field: "refusal.role"))
    }

    func testARefusalReportWithRolesOutOfOrderIsRefused() {
        // What libFuzzer found: re-encoded, the roles came out sorted, not as they arrived.
        assertRejects([0x00, 0x02, 0x00, 0x1f, 0x00, 0x00, 0x00, 0x14, 0x2e, 0x01, 0x25, 0x83, 0x00, 0x02,
                       0x01, 0x04, 0x2e, 0x52, 0x00, 0x00, 0x65, 0x01, 0x00,
                       0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20], .unorderedKey(field: "refusal.role"))
        assertRejects(refusalReport([(2, 1), (1, 1)]), .unorderedKey(field: "refusal.role"))
    }

    func testARefusalReportWithRolesAscendingDecodesToTheSameBytes() throws {
        let bytes = refusalReport([(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)])
        let envelope = try Frame.decode(bytes)
        guard case .refusalReport(let report) = envelope.message else { return XCTFail("decoded \(envelope.message)") }
        XCTAssertEqual(report.refused, [.parent: 1, .ike: 2, .datapath: 3, .monitor: 4, .client: 5])
        XCTAssertEqual(Frame.encode(envelope.message, requestID: envelope.requestID), bytes)
    }

    func testEachErrorHasADistinctKind() {
        let errors: [WireError] = [.truncatedHeader(received: 0), .wrongVersion(0), .unknownType(0),
                                   .shortBody(needed: 0, remaining: 0), .overlongLength(declared: 0, limit: 0),
                                   .invalidEnum(field: "", value: 0), .trailingBytes(count: 0),
                                   .invalidText(field: ""), .notAllowed(type: .ping, from: .client, to: .ike),
                                   .truncatedDatagram, .unexpectedPage(""), .unorderedKey(field: "")]
        XCTAssertEqual(Set(errors.map(\.kind)).count, errors.count)
    }

    // MARK: pages

    func page(stream: UInt32 = 1, type: MessageType = .datapathState, index: UInt32, count: UInt32 = 2,
              total: Int = Page.chunkCapacity + 100, chunk: Int? = nil) -> Page {
        let length = chunk ?? (index + 1 < count ? Page.chunkCapacity : total - Int(count - 1) * Page.chunkCapacity)
        return Page(stream: stream, pagedType: type, index: index, count: count, totalLength: UInt32(total),
                    chunk: Array(repeating: 0, count: max(0, length)))
    }

    func testPagesSplitExactlyAsPagingSplits() {
        // Only types that grow with the configuration are paged.
        assertRejects(Frame.encode(.page(page(type: .ping, index: 0))), .invalidEnum(field: "page.type", value: 7))
        assertRejects(Frame.encode(.page(page(type: .page, index: 0))),
                      .invalidEnum(field: "page.type", value: UInt32(MessageType.page.rawValue)))
        // Over the type's limit, declared before anything is kept.
        let limit = Paging.maximumBytes(.generatedPolicySet) ?? 0
        let over = limit + 1
        assertRejects(Frame.encode(.page(page(type: .generatedPolicySet, index: 0,
                                              count: UInt32(Paging.pageCount(over)), total: over))),
                      .overlongLength(declared: over, limit: limit))
        // A body that fits one frame travels as one frame.
        assertRejects(Frame.encode(.page(page(index: 0, count: 1, total: 100, chunk: 100))),
                      .invalidEnum(field: "page.total", value: 100))
        assertRejects(Frame.encode(.page(page(index: 0, count: 3))), .invalidEnum(field: "page.count", value: 3))
        assertRejects(Frame.encode(.page(page(index: 2))), .invalidEnum(field: "page.index", value: 2))
        assertRejects(Frame.encode(.page(page(index: 0, chunk: 100))),
                      .invalidEnum(field: "page.chunk-length", value: 100))
        assertRejects(Frame.encode(.page(page(index: 1, chunk: 101))),
                      .invalidEnum(field: "page.chunk-length", value: 101))
    }

    func testAPageIsAllowedOnlyWhereTheMessageItCarriesIs() {
        // A client may not send state, the datapath no console command, paged or not.
        for (type, from, to) in [(MessageType.datapathState, Role.client, Role.monitor),
                                 (.consoleCommand, .datapath, .monitor), (.datapathConfig, .datapath, .monitor)] {
            XCTAssertThrowsError(try Frame.decode(Frame.encode(.page(page(type: type, index: 0))),
                                                  from: from, to: to)) {
                XCTAssertEqual($0 as? WireError, .notAllowed(type: type, from: from, to: to))
            }
        }
        // keyway-ike sends the datapath nothing that may be paged: no page at all.
        XCTAssertThrowsError(try Frame.decode(Frame.encode(.page(page(type: .datapathConfig, index: 0))),
                                              from: .ike, to: .datapath)) {
            XCTAssertEqual($0 as? WireError, .notAllowed(type: .page, from: .ike, to: .datapath))
        }
        // keyway-ike sends keywayd nothing that may be paged, so no page at all.
        XCTAssertFalse(ChannelPolicy.accepts(.page, from: .ike, to: .parent))
        XCTAssertTrue(ChannelPolicy.accepts(.page, from: .monitor, to: .datapath))
    }

    func assertAssemblerRefuses(_ pages: [Page], _ expected: WireError, limits: [MessageType: Int] = [:],
                                file: StaticString = #filePath, line: UInt = #line) {
        var assembler = PageAssembler()
        assembler.limits = limits
        var thrown: WireError?
        for p in pages {
            do { _ = try assembler.accept(p, requestID: 0) } catch { thrown = error; break }
        }
        XCTAssertEqual(thrown, expected, file: file, line: line)
        XCTAssertEqual(assembler.heldBytes, 0, "nothing of a refused message is kept", file: file, line: line)
    }

    func testTheAssemblerTakesPagesOnlyInOrderFromOneStream() {
        assertAssemblerRefuses([page(index: 1)], .unexpectedPage("page 1 of DatapathState without its first"))
        assertAssemblerRefuses([page(stream: 1, index: 0), page(stream: 2, index: 1)],
                               .unexpectedPage("page 1 of DatapathState (stream 2) while page 1 of DatapathState "
                                               + "(stream 1) was due"))
        assertAssemblerRefuses([page(type: .datapathState, index: 0), page(type: .counterReply, index: 1)],
                               .unexpectedPage("page 1 of CounterReply (stream 1) while page 1 of DatapathState "
                                               + "(stream 1) was due"))
        let three = Page.chunkCapacity * 2 + 5
        assertAssemblerRefuses([page(index: 0, count: 3, total: three), page(index: 2, count: 3, total: three)],
                               .unexpectedPage("page 2 of DatapathState (stream 1) while page 1 of DatapathState "
                                               + "(stream 1) was due"))
        // A tighter limit the receiver set (read-only operators' scripts).
        assertAssemblerRefuses([page(type: .consoleCommand, index: 0)],
                               .overlongLength(declared: Page.chunkCapacity + 100, limit: 1 << 16),
                               limits: [.consoleCommand: 1 << 16])
    }

    func testAMessageLeftUnfinishedIsRefusedAndTheNextOneStillAssembles() throws {
        var assembler = PageAssembler()
        XCTAssertNil(try assembler.accept(page(stream: 1, index: 0), requestID: 0))
        XCTAssertThrowsError(try assembler.accept(page(stream: 2, index: 0), requestID: 0)) {
            XCTAssertEqual($0 as? WireError, .unexpectedPage("DatapathState (stream 1) ended after page 1 of 2"))
        }
        XCTAssertEqual(assembler.heldBytes, Page.chunkCapacity, "the new message's first page is kept")
    }

    func testAnAssembledBodyIsDecodedAsStrictlyAsOneFrame() {
        // A DatapathState body with bytes left over after its last field, paged.
        var w = WireWriter()
        DatapathState(sas: [], policies: [], statistics: []).encode(to: &w)
        let body = w.bytes + [UInt8](repeating: 0xAA, count: Page.chunkCapacity)
        let pages = (0..<2).map { i in
            Page(stream: 1, pagedType: .datapathState, index: UInt32(i), count: 2, totalLength: UInt32(body.count),
                 chunk: Array(body[(i * Page.chunkCapacity)..<min(body.count, (i + 1) * Page.chunkCapacity)]))
        }
        assertAssemblerRefuses(pages, .trailingBytes(count: Page.chunkCapacity))
        // A count beyond its limit is refused before anything is allocated for it.
        var counts = WireWriter()
        counts.u32(UInt32(ScaleLimits.installedSAs + 1))
        assertRejects(header(type: MessageType.datapathState.rawValue, length: 4) + counts.bytes,
                      .overlongLength(declared: ScaleLimits.installedSAs + 1, limit: ScaleLimits.installedSAs))
    }
}

final class AuditMessageBoundsTests: XCTestCase {
    func testAnAuditEventBeyondItsBoundsIsRefused() {
        var w = WireWriter()
        w.u8(8); w.string("x"); w.string("t"); w.count(0)
        var reader = WireReader(w.bytes)
        XCTAssertThrowsError(try AuditEvent(from: &reader)) { error in
            XCTAssertEqual(error as? WireError, .invalidEnum(field: "audit.severity", value: 8))
        }
        let long = AuditEvent(severity: 3, msgID: "m", text: String(repeating: "a", count: AuditEvent.maximumText + 1),
                              parameters: [])
        XCTAssertThrowsError(try Frame.decode(Frame.encode(.auditEvent(long)), from: .ike, to: .parent))
        let many = AuditEvent(severity: 3, msgID: "m", text: "t",
                              parameters: Array(repeating: AuditParameter("k", "v"),
                                                count: AuditEvent.maximumParameters + 1))
        XCTAssertThrowsError(try Frame.decode(Frame.encode(.auditEvent(many)), from: .ike, to: .parent))
    }

    func testBoundedCutsLongEventsToWholeCharactersAndThenDecodes() throws {
        let event = AuditEvent(severity: 9, msgID: String(repeating: "m", count: 40),
                               text: String(repeating: "é", count: 2000),
                               parameters: Array(repeating: AuditParameter("k", String(repeating: "v", count: 2000)),
                                                 count: 20)).bounded()
        XCTAssertEqual(event.severity, 7)
        XCTAssertEqual(event.msgID.utf8.count, AuditEvent.maximumMsgID)
        XCTAssertEqual(event.text.utf8.count, AuditEvent.maximumText)
        XCTAssertTrue(event.text.allSatisfy { $0 == "é" })
        XCTAssertEqual(event.parameters.count, AuditEvent.maximumParameters)
        let decoded = try Frame.decode(Frame.encode(.auditEvent(event)), from: .datapath, to: .parent)
        XCTAssertEqual(decoded.message, .auditEvent(event))
    }

    func testConsoleOutputPiecesFitAndJoinBackWhole() {
        let line = "dec/01/2026 08:48:01 ipsec,error keyway-ike: ünïcode \u{1F512} line\n"
        let text = String(repeating: line, count: 3000)
        let pieces = ConsoleOutput.pieces(text, maximumBytes: 4000)
        XCTAssertGreaterThan(pieces.count, 1)
        XCTAssertTrue(pieces.allSatisfy { $0.utf8.count <= 4000 })
        XCTAssertTrue(pieces.dropLast().allSatisfy { $0.hasSuffix("\n") }, "cut after whole lines")
        XCTAssertEqual(pieces.joined(), text)
        XCTAssertEqual(ConsoleOutput.pieces(""), [""])
        let oneLong = String(repeating: "é", count: 5000)
        let cut = ConsoleOutput.pieces(oneLong, maximumBytes: 1001)
        XCTAssertTrue(cut.allSatisfy { $0.utf8.count <= 1001 })
        XCTAssertEqual(cut.joined(), oneLong)
    }
}
