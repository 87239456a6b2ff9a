import Foundation
import Glibc
@testable import KeywayAudit
import KeywaySystem
import KeywayWire
import XCTest

/// An exiting keywayd writes every waiting audit line to a syslog daemon that reads late: a burst
/// larger than the socket's queue (a refused start, a shutdown) is not lost with the process.
final class SyslogSinkDrainTests: XCTestCase {
    final class Lines: @unchecked Sendable {
        let lock = NSLock()
        var received: [String] = []
    }

    func testABurstBeyondTheSocketsQueueIsWrittenWhenTheDaemonReadsLate() throws {
        let path = NSTemporaryDirectory() + "kw-syslog-drain-\(getpid()).sock"
        let listener = try Sockets.unixDatagramBound(path: path)
        defer { unlink(path) }
        let sink = SyslogSink(path: path, format: .local)
        let count = 200
        for i in 0..<count {
            let event = AuditEvent(severity: 5, msgID: "burst", text: "line \(i)", parameters: [])
            sink.submit(AuditRecord(sequence: UInt64(i), epochMicroseconds: 1_764_578_881_000_000, role: .monitor,
                                    pid: 812, event: event))
        }
        XCTAssertGreaterThan(sink.waiting, 0, "the socket's queue is full: lines wait in keywayd")
        // The daemon starts reading 300 ms later, as a busy one does.
        let fd = listener.raw, lines = Lines()
        let reader = Thread {
            usleep(300_000)
            var buffer = [UInt8](repeating: 0, count: 4096)
            let until = Date().addingTimeInterval(5)
            while Date() < until {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                guard n > 0 else { usleep(2_000); continue }
                lines.lock.lock()
                lines.received.append(String(decoding: buffer[0..<n], as: UTF8.self))
                let done = lines.received.count == count
                lines.lock.unlock()
                if done { return }
            }
        }
        reader.start()
        XCTAssertEqual(sink.drain(until: MonotonicClock.now() + 4_000_000_000), 0, "nothing left waiting")
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, lines.lock.withLock({ lines.received.count }) < count { usleep(10_000) }
        let received = lines.lock.withLock { lines.received }
        XCTAssertEqual(received.count, count)
        XCTAssertEqual(received.map { $0.components(separatedBy: ": burst ").last ?? "" },
                       (0..<count).map { "line \($0)" }, "every line, in order")
    }

    func testNothingIsWaitedForWhileSyslogIsUnreachable() {
        let sink = SyslogSink(path: NSTemporaryDirectory() + "kw-no-syslog-\(getpid()).sock", format: .local)
        sink.submit(AuditRecord(sequence: 1, epochMicroseconds: 0, role: .parent, pid: 1,
                                event: AuditEvent(severity: 5, msgID: "x", text: "y", parameters: [])))
        let start = MonotonicClock.now()
        XCTAssertEqual(sink.drain(until: start + 2_000_000_000), 0, "the line went to stderr when it was submitted")
        XCTAssertEqual(sink.waiting, 1, "and still waits for syslog's return")
        XCTAssertLessThan(MonotonicClock.now() - start, 500_000_000, "keywayd does not wait for it")
    }

    func testWhatADaemonThatNeverReadsLeavesGoesToStderrAtTheDeadline() throws {
        let path = NSTemporaryDirectory() + "kw-syslog-stuck-\(getpid()).sock"
        let listener = try Sockets.unixDatagramBound(path: path)
        defer { unlink(path) }
        let sink = SyslogSink(path: path, format: .local)
        for i in 0..<100 {
            sink.submit(AuditRecord(sequence: UInt64(i), epochMicroseconds: 0, role: .ike, pid: 9,
                                    event: AuditEvent(severity: 5, msgID: "stuck", text: "line \(i)", parameters: [])))
        }
        XCTAssertGreaterThan(sink.waiting, 0)
        let start = MonotonicClock.now()
        let toStderr = sink.drain(until: start + 200_000_000)
        XCTAssertGreaterThanOrEqual(MonotonicClock.now() - start, 200_000_000, "it tried until the deadline")
        XCTAssertGreaterThan(toStderr, 0)
        XCTAssertEqual(sink.waiting, 0)
        var queued = 0, buffer = [UInt8](repeating: 0, count: 4096)
        while buffer.withUnsafeMutableBytes({ recv(listener.raw, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }) > 0 {
            queued += 1
        }
        XCTAssertEqual(queued + toStderr, 100, "every line reached the socket or stderr")
    }
}
