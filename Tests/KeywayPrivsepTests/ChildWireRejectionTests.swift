import Glibc
import KeywaySystem
import KeywayWire
import XCTest

/// A real keyway-ike, sandboxed, fed bad input on its parent link: it drops each message,
/// counts it under its reason, audits it, and keeps answering.
final class ChildWireRejectionTests: XCTestCase {
    func testChildRejectsBadInputAndKeepsRunning() throws {
        let (_, udp) = try Sockets.datagramPair()
        let (_, natt) = try Sockets.datagramPair()
        let child = try ChildHarness(role: .ike, grants: [(.udp500, udp), (.udp4500, natt)])

        guard case .hello(let hello) = try child.receive() else { return XCTFail("no hello from keyway-ike") }
        XCTAssertEqual(hello.role, .ike)
        XCTAssertTrue(hello.sandboxed)
        XCTAssertEqual(hello.pid, UInt32(child.pid))

        let ping = Frame.encode(.ping(Ping(nonce: 1)))
        let bad: [(String, [UInt8])] = [
            ("truncated-header", [0, 2, 0]),
            ("unknown-type", [0, 2, 0x03, 0xE7, 0, 0, 0, 0, 0, 0, 0, 0]),
            ("wrong-version", [0, 9] + Array(ping.dropFirst(2))),
            ("short-body", Array(ping.dropLast(2))),
            ("trailing-bytes", Frame.encode(.shutdown(Shutdown())) + [0xEE]),
            ("invalid-enum", [0, 2, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0xFF]),
            ("not-allowed", Frame.encode(.statusReply(StatusReply(processes: [])))),
            ("not-allowed", Frame.encode(.reloadConfig(ReloadConfig()))),
        ]
        for (_, bytes) in bad { try child.sendRaw(bytes) }

        // Still alive and answering, after every bad message.
        try child.send(.ping(Ping(nonce: 0xC0FFEE)))
        guard case .pong(let pong) = try child.receive() else { return XCTFail("no pong after bad input") }
        XCTAssertEqual(pong.nonce, 0xC0FFEE)
        XCTAssertTrue(child.isAlive)

        try child.send(.counterRequest(CounterRequest()))
        guard case .counterReply(let reply) = try child.receive() else { return XCTFail("no counters") }
        let counters = Dictionary(uniqueKeysWithValues: reply.counters.map { ($0.name, $0.value) })
        for kind in ["truncated-header", "unknown-type", "wrong-version", "short-body", "trailing-bytes",
                     "invalid-enum"] {
            XCTAssertEqual(counters["wire-rejected-\(kind)"], 1, kind)
        }
        XCTAssertEqual(counters["wire-rejected-not-allowed"], 2)

        let audit = try child.auditEvents().filter { $0.msgID == "wire-reject" }
        for (kind, _) in bad {
            XCTAssertTrue(audit.contains { $0.parameters.contains(AuditParameter("reason", kind)) },
                          "no audit event for \(kind): \(audit)")
        }
        // Warnings; who sent them is for keywayd to say, from the link they came on.
        XCTAssertTrue(audit.allSatisfy { $0.severity == 4 }, "\(audit)")

        // And it still stops cleanly when keywayd asks.
        try child.send(.shutdown(Shutdown()))
        XCTAssertEqual(Processes.wait(pid: child.pid, timeoutMilliseconds: 5000), .exited(0))
    }

    func testDescriptorGrantWithoutDescriptorIsRefused() throws {
        let (_, udp) = try Sockets.datagramPair()
        let (_, natt) = try Sockets.datagramPair()
        let child = try ChildHarness(role: .ike, grants: [(.udp500, udp), (.udp4500, natt)])
        guard case .hello = try child.receive() else { return XCTFail("no hello") }
        try child.send(.fdGrant(FdGrant(kind: .datapathLink)))
        try child.send(.counterRequest(CounterRequest()))
        guard case .counterReply(let reply) = try child.receive() else { return XCTFail("no counters") }
        XCTAssertEqual(reply.counters.first { $0.name == "fdgrant-without-one-descriptor" }?.value, 1)
        XCTAssertTrue(child.isAlive)
    }
}
