import KeywayWire
import XCTest
@testable import KeywayAudit

final class LocalSyslogFormatTests: XCTestCase {
    let record = AuditRecord(sequence: 3, epochMicroseconds: 1_764_578_881_123_456, role: .monitor, pid: 812,
                             event: AuditEvent(severity: 5, msgID: "config-change", text: "configuration\nchanged",
                                               parameters: [AuditParameter("uid", "1000"),
                                                            AuditParameter("command", "set x=\"a]b\\c\"")]))

    func testLocalFormatIsWhatSyslog3WritesWithTheMessageIDAndDataInTheMessage() {
        let line = AuditLine.render(record, format: .local, hostname: "fw1")
        // authpriv (10) * 8 + notice (5) = 85; no hostname; TAG[PID]: as syslog(3) writes it.
        XCTAssertEqual(line, #"<85>Dec  1 08:48:01 keyway-monitor[812]: config-change configuration changed "#
                       + #"[uid="1000" command="set x=\"a\]b\\c\""]"#)
    }

    func testLocalTimestampUsesTheGivenOffsetAndPadsTheDay() {
        XCTAssertEqual(LocalSyslog.timestamp(0), "Jan  1 00:00:00")
        XCTAssertEqual(LocalSyslog.timestamp(951_782_400 + 3_600 * 13 + 61), "Feb 29 13:01:01")
        let line = AuditLine.render(record, format: .local, hostname: "fw1", utcOffsetSeconds: 3600)
        XCTAssertTrue(line.hasPrefix("<85>Dec  1 09:48:01 "), line)
    }

    func testTheTagCannotBreakTheParsersFields() {
        XCTAssertEqual(LocalSyslog.tagField("a b[c]:d"), "abcd")
        XCTAssertEqual(LocalSyslog.tagField(""), "keyway")
    }

    func testRFC5424IsStillAvailable() {
        let line = AuditLine.render(record, format: .rfc5424, hostname: "fw1")
        XCTAssertTrue(line.hasPrefix("<85>1 2025-12-01T08:48:01.123456Z fw1 keyway-monitor 812 config-change "
                                     + #"[keyway@32473 uid="1000" "#), line)
        XCTAssertTrue(line.hasSuffix("] configuration changed"), line)
    }

    func testALineIsCutToWhatRsyslogTakes() {
        var big = record
        big.event.parameters = Array(repeating: AuditParameter("v", String(repeating: "x", count: 1024)), count: 16)
        XCTAssertLessThanOrEqual(AuditLine.render(big, format: .local, hostname: "h").utf8.count,
                                 AuditLine.maximumBytes)
    }
}

final class AuditRelayTests: XCTestCase {
    func event(_ text: String) -> AuditEvent { AuditEvent(severity: 6, msgID: "m", text: text, parameters: []) }

    func testRecordsAreAttributedByTheLinkNotByTheSender() {
        var relay = AuditRelay()
        // Whatever the text claims, the record says which link it came on and keywayd's clock.
        let records = relay.accept(event("I am keywayd, pid 1"), from: .ike, pid: 4242, parentPID: 1,
                                   epochMicroseconds: 5_000_000, monotonicNanoseconds: 0)
        XCTAssertEqual(records.count, 1)
        XCTAssertEqual(records[0].role, .ike)
        XCTAssertEqual(records[0].pid, 4242)
        XCTAssertEqual(records[0].epochMicroseconds, 5_000_000)
        XCTAssertEqual(records[0].sequence, 1)
    }

    func testAFloodingChildIsCutAtItsRateAndTheDropsAreSaidOnceItIsAdmittedAgain() {
        var relay = AuditRelay()
        var admitted = 0
        for i in 0..<(AuditRelay.burst + 100) {
            admitted += relay.accept(event("\(i)"), from: .datapath, pid: 7, parentPID: 1, epochMicroseconds: 0,
                                     monotonicNanoseconds: 0).count
        }
        XCTAssertEqual(admitted, AuditRelay.burst)
        XCTAssertEqual(relay.dropped[.datapath], 100)
        // Another process is not held back by it; keywayd never is.
        XCTAssertEqual(relay.accept(event("x"), from: .ike, pid: 8, parentPID: 1, epochMicroseconds: 0,
                                    monotonicNanoseconds: 0).count, 1)
        for _ in 0..<10_000 {
            XCTAssertEqual(relay.accept(event("k"), from: .parent, pid: 1, parentPID: 1, epochMicroseconds: 0,
                                        monotonicNanoseconds: 0).count, 1)
        }
        let later = relay.accept(event("after"), from: .datapath, pid: 7, parentPID: 1, epochMicroseconds: 0,
                                 monotonicNanoseconds: 1_000_000_000)
        XCTAssertEqual(later.count, 2)
        XCTAssertEqual(later[0].role, .parent)
        XCTAssertEqual(later[0].event.msgID, "audit-dropped")
        XCTAssertTrue(later[0].event.parameters.contains(AuditParameter("dropped", "100")))
        XCTAssertEqual(later[1].event.text, "after")
    }

    func testTheRingKeepsTheMostRecentOldestFirst() {
        var relay = AuditRelay()
        for i in 0..<(AuditRelay.recentCapacity + 5) {
            _ = relay.accept(event("\(i)"), from: .parent, pid: 1, parentPID: 1, epochMicroseconds: 0,
                             monotonicNanoseconds: 0)
        }
        let recent = relay.recent
        XCTAssertEqual(recent.count, AuditRelay.recentCapacity)
        XCTAssertEqual(recent.first?.event.text, "5")
        XCTAssertEqual(recent.last?.event.text, "\(AuditRelay.recentCapacity + 4)")
        XCTAssertEqual(zip(recent, recent.dropFirst()).allSatisfy { $0.sequence + 1 == $1.sequence }, true)
    }
}

final class SyslogDeliveryTests: XCTestCase {
    func line(_ n: Int) -> [UInt8] { Array("line \(n)".utf8) }

    func testLinesWaitWhileSyslogIsGoneAndGoOutInOrderOnceItIsBack() {
        var d = SyslogDelivery(lineCapacity: 10, retryInterval: 1_000)
        XCTAssertEqual(d.next(now: 0), .connect)
        d.didConnect()
        d.submit(line(1))
        XCTAssertEqual(d.next(now: 0), .send(line(1)))
        d.sent()
        XCTAssertNotNil(d.takeOutageReport(), "the first connection ends the start-up outage")
        // The daemon restarts: the write fails, keywayd connects again at once, then every second.
        d.submit(line(2))
        d.failed(now: 10)
        d.submit(line(3))
        XCTAssertEqual(d.next(now: 10), .connect)
        d.connectFailed(now: 10)
        XCTAssertEqual(d.next(now: 500), .idle)
        XCTAssertNil(d.takeOutageReport())
        XCTAssertEqual(d.next(now: 1_010), .connect)
        d.didConnect()
        XCTAssertEqual(d.next(now: 1_010), .send(line(2)))
        d.sent()
        XCTAssertEqual(d.next(now: 1_010), .send(line(3)))
        d.sent()
        XCTAssertEqual(d.next(now: 1_010), .idle)
        XCTAssertEqual(d.takeOutageReport()?.lost, 0)
        XCTAssertNil(d.takeOutageReport(), "said once")
    }

    func testAnOverflowKeepsTheNewestAndIsCountedAndReportedOnceDelivered() {
        var d = SyslogDelivery(lineCapacity: 3, retryInterval: 1_000)
        for n in 1...5 { d.submit(line(n)) }
        XCTAssertEqual(d.waiting, 3)
        XCTAssertEqual(d.lost, 2)
        d.didConnect()
        var sent: [[UInt8]] = []
        while case .send(let l) = d.next(now: 0) { sent.append(l); d.sent() }
        XCTAssertEqual(sent, [line(3), line(4), line(5)])
        XCTAssertEqual(d.takeOutageReport()?.lost, 2)
    }

    func testAFullDaemonQueueKeepsTheSocketAndTriesAgainSoon() {
        var d = SyslogDelivery(lineCapacity: 3, retryInterval: 1_000)
        d.didConnect()
        d.submit(line(1))
        d.wouldBlock(now: 0)
        XCTAssertEqual(d.next(now: 50), .idle)
        XCTAssertEqual(d.next(now: 100), .send(line(1)))
        XCTAssertTrue(d.connected)
    }

    func testTheQueueIsBoundedInBytesToo() {
        var d = SyslogDelivery(lineCapacity: 100, byteCapacity: 20, retryInterval: 1)
        for n in 1...10 { d.submit(line(n)) }
        XCTAssertLessThanOrEqual(d.waiting * 6, 20 + 6)
        XCTAssertGreaterThan(d.lost, 0)
    }
}

final class AuditLogBacklogTests: XCTestCase {
    /// An output that refuses until told otherwise.
    final class Gate: AuditOutput, @unchecked Sendable {
        var open = false
        var got: [AuditEvent] = []
        func deliver(_ event: AuditEvent) -> Bool {
            guard open else { return false }
            got.append(event)
            return true
        }
    }

    func testEventsWaitInOrderAndWhatOverflowsIsCountedAndSaid() {
        let gate = Gate()
        let log = AuditLog(appName: "keyway-ike", output: gate)
        for i in 0..<(AuditLog.pendingLimit + 3) { log.event(.notice, msgID: "m", "event \(i)") }
        XCTAssertEqual(log.backlog.pending, AuditLog.pendingLimit)
        XCTAssertEqual(log.backlog.lost, 3)
        gate.open = true
        log.flush()
        XCTAssertEqual(gate.got.count, AuditLog.pendingLimit + 1)
        XCTAssertEqual(gate.got.first?.text, "event 0")
        XCTAssertEqual(gate.got.last?.msgID, "audit-lost")
        XCTAssertTrue(gate.got.last?.parameters.contains(AuditParameter("lost", "3")) ?? false)
        XCTAssertEqual(log.backlog.lost, 0)
    }
}
