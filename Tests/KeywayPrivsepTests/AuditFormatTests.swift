import XCTest
@testable import KeywayAudit

final class AuditFormatTests: XCTestCase {
    func testRFC5424Layout() {
        let line = RFC5424.format(severity: .warning, epochMicroseconds: 1_764_374_400_123_456, hostname: "fw1",
                                  appName: "keyway-ike", procID: 42, msgID: "wire-reject",
                                  structuredData: [StructuredData(id: "keyway@32473", [("from", "keyway-monitor"),
                                                                                       ("reason", "a\"b]c\\d")])],
                                  message: "dropped")
        // authpriv (10) * 8 + warning (4) = 84
        XCTAssertEqual(line, #"<84>1 2025-11-29T00:00:00.123456Z fw1 keyway-ike 42 wire-reject "#
                                + #"[keyway@32473 from="keyway-monitor" reason="a\"b\]c\\d"] dropped"#)
    }

    func testNilValuesAndNoStructuredData() {
        let line = RFC5424.format(severity: .informational, epochMicroseconds: 0, hostname: "", appName: "keywayd",
                                  procID: 1, msgID: "", structuredData: [], message: "hi")
        XCTAssertEqual(line, "<86>1 1970-01-01T00:00:00.000000Z - keywayd 1 - - hi")
    }

    func testTimestampsAcrossLeapYears() {
        XCTAssertEqual(RFC5424.timestamp(951_782_400 * 1_000_000), "2000-02-29T00:00:00.000000Z")
        XCTAssertEqual(RFC5424.timestamp(4_107_542_399 * 1_000_000 + 999_999), "2100-02-28T23:59:59.999999Z")
    }

    func testRateLimiterAdmitsBurstThenCountsSuppressed() {
        var limiter = RateLimiter(burst: 3, perSecond: 1)
        let t0: UInt64 = 1_000_000_000
        XCTAssertTrue(limiter.admit("k", nowNanoseconds: t0).admitted)
        XCTAssertTrue(limiter.admit("k", nowNanoseconds: t0).admitted)
        XCTAssertTrue(limiter.admit("k", nowNanoseconds: t0).admitted)
        XCTAssertFalse(limiter.admit("k", nowNanoseconds: t0).admitted)
        XCTAssertFalse(limiter.admit("k", nowNanoseconds: t0).admitted)
        // Another key has its own bucket.
        XCTAssertTrue(limiter.admit("other", nowNanoseconds: t0).admitted)
        let later = limiter.admit("k", nowNanoseconds: t0 + 1_000_000_000)
        XCTAssertTrue(later.admitted)
        XCTAssertEqual(later.suppressedBefore, 2)
    }
}
