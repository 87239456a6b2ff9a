import XCTest
@testable import KeywayDatapath

/// A soft limit is 80% of its hard limit for any value, the largest included (it overflowed).
final class LifetimeBoundTests: XCTestCase {
    func testSoftLimitsOfTheLargestHardLimitsDoNotTrap() {
        let l = Lifetime(hardSeconds: .max, hardBytes: .max, useHardSeconds: .max)
        XCTAssertEqual(l.softSeconds, UInt64.max / 10 * 8 + UInt64.max % 10 * 8 / 10)
        XCTAssertEqual(l.softBytes, l.softSeconds)
        XCTAssertEqual(l.useSoftSeconds, l.softSeconds)
        XCTAssertEqual(Lifetime(hardSeconds: 1_800).softSeconds, 1_440)
    }
}
