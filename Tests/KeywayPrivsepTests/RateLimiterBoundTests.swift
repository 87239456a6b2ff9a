import XCTest
@testable import KeywayAudit

/// The audit rate limiter keeps a bounded number of buckets, whatever keys it is given, and the
/// least recently used one gives way.
final class RateLimiterBoundTests: XCTestCase {
    let t0: UInt64 = 5_000_000_000

    func testAFloodOfDistinctKeysKeepsAtMostTheBound() {
        var limiter = RateLimiter(burst: 2, perSecond: 1, maximumKeys: 64)
        for i in 0..<100_000 {
            XCTAssertTrue(limiter.admit("key-\(i)", nowNanoseconds: t0 + UInt64(i)).admitted,
                          "a new key starts with a full bucket")
            XCTAssertLessThanOrEqual(limiter.keyCount, 64)
        }
        XCTAssertEqual(limiter.keyCount, 64)
        XCTAssertEqual(limiter.evictions, 100_000 - 64)
    }

    func testTheDefaultBoundHolds() {
        var limiter = RateLimiter()
        for i in 0..<(RateLimiter.defaultMaximumKeys * 4) { _ = limiter.admit("peer 192.0.2.\(i)", nowNanoseconds: t0) }
        XCTAssertEqual(limiter.keyCount, RateLimiter.defaultMaximumKeys)
    }

    /// A key in use keeps its (spent) bucket; the least recently used one is the one dropped.
    func testTheLeastRecentlyUsedBucketGivesWay() {
        var limiter = RateLimiter(burst: 1, perSecond: 0, maximumKeys: 3)
        XCTAssertTrue(limiter.admit("a", nowNanoseconds: t0).admitted)
        XCTAssertFalse(limiter.admit("a", nowNanoseconds: t0).admitted, "a's single token is spent")
        XCTAssertTrue(limiter.admit("b", nowNanoseconds: t0).admitted)
        XCTAssertTrue(limiter.admit("c", nowNanoseconds: t0).admitted)
        XCTAssertFalse(limiter.admit("a", nowNanoseconds: t0).admitted, "a used again: now the most recent")
        XCTAssertTrue(limiter.admit("d", nowNanoseconds: t0).admitted,
                      "d takes b's place (b is the least recently used)")
        XCTAssertEqual(limiter.keyCount, 3)
        XCTAssertFalse(limiter.admit("a", nowNanoseconds: t0).admitted, "a kept its spent bucket")
        XCTAssertFalse(limiter.admit("c", nowNanoseconds: t0).admitted, "c kept its spent bucket")
        XCTAssertTrue(limiter.admit("b", nowNanoseconds: t0).admitted, "b was dropped and starts afresh (evicting d)")
        XCTAssertEqual(limiter.evictions, 2)
        XCTAssertTrue(limiter.admit("d", nowNanoseconds: t0).admitted, "d was the one b displaced")
    }

    func testAClockGoingBackwardsRefillsNothing() {
        var limiter = RateLimiter(burst: 1, perSecond: 1)
        XCTAssertTrue(limiter.admit("k", nowNanoseconds: t0).admitted)
        XCTAssertFalse(limiter.admit("k", nowNanoseconds: 0).admitted)
        XCTAssertFalse(limiter.admit("k", nowNanoseconds: t0 + 500_000_000).admitted)
        XCTAssertTrue(limiter.admit("k", nowNanoseconds: t0 + 1_000_000_000).admitted)
    }
}
