import XCTest
@testable import KeywayPrivsep

final class RestartPolicyTests: XCTestCase {
    let second: UInt64 = 1_000_000_000

    func testBackOffDoublesUpToTheCap() {
        var p = RestartPolicy()
        var now: UInt64 = 100 * second
        var delays: [UInt64] = []
        for _ in 0..<12 {
            let at = p.restartTime(startedAt: now - second, now: now)
            delays.append(at - now)
            now = at + second / 10
        }
        XCTAssertEqual(delays.prefix(4), [250_000_000, 500_000_000, 1_000_000_000, 2_000_000_000])
        XCTAssertEqual(delays.last, 30 * second)
        XCTAssertEqual(p.restarts, 12)
    }

    func testStableRunResetsTheBackOff() {
        var p = RestartPolicy()
        var now: UInt64 = 1000 * second
        for _ in 0..<5 { now = p.restartTime(startedAt: now, now: now) }
        let at = p.restartTime(startedAt: now, now: now + 61 * second)
        XCTAssertEqual(at - (now + 61 * second), 250_000_000)
    }
}
