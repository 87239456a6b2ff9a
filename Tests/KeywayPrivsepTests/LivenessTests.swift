import KeywayPrivsep
import XCTest

/// keywayd's pings: one per interval, and a child silent for the limit is given up on.
final class LivenessTests: XCTestCase {
    let second: UInt64 = 1_000_000_000
    func fresh(at t: UInt64 = 100_000_000_000) -> Liveness {
        Liveness(startedAt: t, interval: 3 * second, unansweredIntervals: 3, firstNonce: 7 << 32)
    }

    func testPingsOncePerInterval() {
        var l = fresh()
        let t0: UInt64 = 100 * second
        XCTAssertEqual(l.tick(now: t0), .wait)
        XCTAssertEqual(l.tick(now: t0 + 2 * second), .wait)
        XCTAssertEqual(l.tick(now: t0 + 3 * second), .ping(nonce: 7 << 32))
        XCTAssertEqual(l.tick(now: t0 + 4 * second), .wait)
        XCTAssertEqual(l.tick(now: t0 + 6 * second), .ping(nonce: 7 << 32 + 1))
    }

    func testAnAnsweringChildIsNeverGivenUp() {
        var l = fresh()
        var t: UInt64 = 100 * second
        for _ in 0..<100 {
            t += second
            if case .ping(let nonce) = l.tick(now: t) { XCTAssertTrue(l.answered(nonce: nonce, now: t + 10_000_000)) }
            XCTAssertFalse(l.givenUp)
        }
    }

    func testSilenceForThreeIntervalsIsUnresponsiveOnce() {
        var l = fresh()
        let t0: UInt64 = 100 * second
        var actions: [Liveness.Action] = []
        for s in 1...12 { actions.append(l.tick(now: t0 + UInt64(s) * second)) }
        XCTAssertEqual(actions.filter { if case .ping = $0 { return true } else { return false } }.count, 2,
                       "pings at 3 s and 6 s")
        XCTAssertEqual(actions[8], .unresponsive(silentFor: 9 * second), "given up at 9 s")
        XCTAssertEqual(Array(actions[9...]), [.wait, .wait, .wait], "once")
        XCTAssertTrue(l.givenUp)
    }

    func testALateAnswerStillCounts() {
        var l = fresh()
        let t0: UInt64 = 100 * second
        guard case .ping(let first) = l.tick(now: t0 + 3 * second) else { return XCTFail("no ping") }
        _ = l.tick(now: t0 + 6 * second)
        XCTAssertTrue(l.answered(nonce: first, now: t0 + 8 * second), "a busy child answering the older ping is alive")
        XCTAssertEqual(l.tick(now: t0 + 9 * second), .ping(nonce: 7 << 32 + 2))
        XCTAssertEqual(l.tick(now: t0 + 16 * second), .ping(nonce: 7 << 32 + 3), "unanswered, but 8 s since the answer")
        XCTAssertEqual(l.tick(now: t0 + 17 * second), .unresponsive(silentFor: 9 * second))
    }

    func testPongsNotAnsweringThisInstancesPingsDoNotCount() {
        var l = fresh()
        let t0: UInt64 = 100 * second
        XCTAssertFalse(l.answered(nonce: 7 << 32, now: t0 + second), "nothing sent yet")
        _ = l.tick(now: t0 + 3 * second)
        XCTAssertFalse(l.answered(nonce: 6 << 32 + 5, now: t0 + 4 * second), "a previous instance's nonce")
        XCTAssertFalse(l.answered(nonce: 7 << 32 + 1, now: t0 + 4 * second), "a nonce not yet sent")
        XCTAssertEqual(l.tick(now: t0 + 9 * second), .unresponsive(silentFor: 9 * second))
    }

    /// A child whose pong waits behind its own messages is alive while they arrive; time keywayd
    /// itself spent busy is not its silence. A child that sends nothing is still given up on.
    func testMessagesAndKeywaydsOwnBusyTimeCountForTheChild() {
        var l = fresh()
        let t0: UInt64 = 100 * second
        for s in 1...20 {
            _ = l.tick(now: t0 + UInt64(s) * second)
            l.heard(now: t0 + UInt64(s) * second)
        }
        XCTAssertFalse(l.givenUp, "messages kept coming")
        // keywayd was busy 30 s right after the last message: excused.
        l.excuse(30 * second, now: t0 + 50 * second)
        XCTAssertNotEqual(l.tick(now: t0 + 50 * second), .unresponsive(silentFor: 30 * second))
        XCTAssertFalse(l.givenUp)
        // Then silence for the limit: given up.
        var gaveUp = false
        for s in 51...70 where !gaveUp {
            if case .unresponsive = l.tick(now: t0 + UInt64(s) * second) { gaveUp = true }
        }
        XCTAssertTrue(gaveUp)
    }
}
