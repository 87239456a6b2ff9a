import KeywayDatapath
import XCTest

final class ReplayWindowTests: XCTestCase {
    func testInOrderOutOfOrderReplayAndTooOld() {
        var w = ReplayWindow(size: 32)
        XCTAssertEqual(w.check(0), .zero)
        for s: UInt32 in [1, 2, 3, 5] { XCTAssertEqual(w.check(s), .fresh); w.accept(s) }
        XCTAssertEqual(w.check(4), .fresh, "late but inside the window")
        w.accept(4)
        XCTAssertEqual(w.check(4), .replayed)
        XCTAssertEqual(w.check(5), .replayed)
        w.accept(100)
        XCTAssertEqual(w.check(68), .tooOld, "exactly one window behind")
        XCTAssertEqual(w.check(69), .fresh)
        XCTAssertEqual(w.check(5), .tooOld)
    }

    func testUnverifiedPacketsDoNotMoveTheWindow() {
        var w = ReplayWindow(size: 64)
        w.accept(10)
        // check() alone (as for a packet whose ICV then fails) changes nothing.
        XCTAssertEqual(w.check(1_000_000), .fresh)
        XCTAssertEqual(w.highestSequence, 10)
        XCTAssertEqual(w.check(9), .fresh)
    }

    func testLargeWindowsAndJumps() {
        var w = ReplayWindow(size: 1024)
        for s: UInt32 in stride(from: 1, through: 5000, by: 2) { w.accept(s) }
        XCTAssertEqual(w.check(4999), .replayed)
        XCTAssertEqual(w.check(4998), .fresh)
        XCTAssertEqual(w.check(4999 - 1024), .tooOld, "highest is 4999")
        XCTAssertEqual(w.check(4999 - 1023), .fresh)
        w.accept(1_000_000)
        XCTAssertEqual(w.check(999_999), .fresh, "a jump clears the old bits")
        XCTAssertEqual(w.check(4999), .tooOld)
    }

    func testEveryPacketOnceAgainstABruteForceModel() {
        var w = ReplayWindow(size: 128)
        var seen = Set<UInt32>()
        var highest: UInt32 = 0
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let s = highest > 200 ? highest - 200 + UInt32.random(in: 0..<260, using: &rng)
                                  : UInt32.random(in: 1..<260, using: &rng)
            let expected: ReplayWindow.Verdict = s > highest
                ? .fresh : (highest - s >= 128 ? .tooOld : (seen.contains(s) ? .replayed : .fresh))
            XCTAssertEqual(w.check(s), expected, "seq \(s) highest \(highest)")
            if expected == .fresh { w.accept(s); seen.insert(s); highest = max(highest, s) }
        }
    }
}
