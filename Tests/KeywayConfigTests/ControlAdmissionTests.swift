import KeywayConfig
import XCTest

/// The control socket's admission and idle policy, with time passed in.
final class ControlAdmissionTests: XCTestCase {
    static let second: UInt64 = 1_000_000_000
    let limits = ControlAdmission.Limits(capacity: 10, perUID: 3, reservedForAdministrators: 2,
                                         idleTimeout: 60 * ControlAdmissionTests.second)

    func testCallersWithoutAccessAreRefusedAndNeverCounted() {
        var a = ControlAdmission(limits: limits)
        for fd in Int32(0)..<100 {
            XCTAssertEqual(a.admit(fd, uid: 65534, access: .noAccess, now: 0),
                           .refuse("permission denied: uid 65534 is not root and not in group keyway or keyway-read"))
        }
        XCTAssertEqual(a.count, 0)
        XCTAssertEqual(a.admit(100, uid: 0, access: .administrator, now: 0), .admit)
    }

    func testEachUIDIsLimitedButRoot() {
        var a = ControlAdmission(limits: limits)
        for fd in Int32(0)..<3 { XCTAssertEqual(a.admit(fd, uid: 1000, access: .reader, now: 0), .admit) }
        XCTAssertEqual(a.admit(3, uid: 1000, access: .reader, now: 0),
                       .refuse("too many control connections from uid 1000 (at most 3 at once); "
                               + "close one and try again"))
        XCTAssertEqual(a.admit(4, uid: 1001, access: .administrator, now: 0), .admit, "another uid is not affected")
        for fd in Int32(5)..<10 {
            XCTAssertEqual(a.admit(fd, uid: 0, access: .administrator, now: 0), .admit, "root has no per-uid limit")
        }
        // Closing one makes room for that uid again.
        a.remove(0)
        XCTAssertEqual(a.admit(11, uid: 1000, access: .reader, now: 0), .admit)
    }

    func testReadersNeverTakeTheSlotsKeptForAdministrators() {
        var a = ControlAdmission(limits: limits)
        var fd: Int32 = 0
        // Many read-only uids, each within its own limit, fill everything they may.
        for uid in UInt32(2000)..<2010 {
            for _ in 0..<3 {
                _ = a.admit(fd, uid: uid, access: .reader, now: 0)
                fd += 1
            }
        }
        XCTAssertEqual(a.count, limits.capacity - limits.reservedForAdministrators)
        XCTAssertEqual(a.admit(fd, uid: 2011, access: .reader, now: 0),
                       .refuse("too many control connections from read-only operators; "
                               + "the other 2 are kept for administrators"))
        // Root and a keyway member still get in, up to the capacity.
        XCTAssertEqual(a.admit(fd + 1, uid: 0, access: .administrator, now: 0), .admit)
        XCTAssertEqual(a.admit(fd + 2, uid: 1500, access: .administrator, now: 0), .admit)
        XCTAssertEqual(a.admit(fd + 3, uid: 0, access: .administrator, now: 0),
                       .refuse("too many control connections (10 at once); try again later"))
    }

    func testAtLeastOneSlotIsAlwaysKept() {
        let tiny = ControlAdmission.Limits(capacity: 4, perUID: 10, reservedForAdministrators: 0,
                                           idleTimeout: Self.second)
        XCTAssertEqual(tiny.reservedForAdministrators, 1)
        var a = ControlAdmission(limits: tiny)
        for fd in Int32(0)..<10 { _ = a.admit(fd, uid: 3000 + UInt32(fd), access: .reader, now: 0) }
        XCTAssertEqual(a.count, 3)
        XCTAssertEqual(a.admit(20, uid: 0, access: .administrator, now: 0), .admit)
    }

    func testSilentConnectionsAreClosedAfterTheIdleTimeout() {
        var a = ControlAdmission(limits: limits)
        _ = a.admit(1, uid: 1000, access: .reader, now: 0)
        _ = a.admit(2, uid: 0, access: .administrator, now: 10 * Self.second)
        XCTAssertEqual(a.nextIdleDeadline, 60 * Self.second)
        XCTAssertEqual(a.idle(now: 59 * Self.second), [])
        XCTAssertEqual(a.idle(now: 60 * Self.second), [1])
        a.activity(1, now: 60 * Self.second)
        XCTAssertEqual(a.idle(now: 70 * Self.second), [2], "administrators time out too")
        XCTAssertEqual(a.idle(now: 120 * Self.second), [1, 2])
        a.remove(1); a.remove(2)
        XCTAssertEqual(a.idle(now: .max), [])
        XCTAssertNil(a.nextIdleDeadline)
    }

    func testAReusedDescriptorIsANewConnection() {
        var a = ControlAdmission(limits: limits)
        _ = a.admit(7, uid: 1000, access: .reader, now: 0)
        XCTAssertEqual(a.admit(7, uid: 1000, access: .reader, now: 100 * Self.second), .admit)
        XCTAssertEqual(a.count, 1)
        XCTAssertEqual(a.idle(now: 150 * Self.second), [], "its clock starts again")
        XCTAssertEqual(a.admit(7, uid: 1, access: .noAccess, now: 0),
                       .refuse("permission denied: uid 1 is not root and not in group keyway or keyway-read"))
        XCTAssertEqual(a.count, 0, "a refused connection on a reused descriptor leaves nothing behind")
    }

    func testTheStandardLimitsLeaveRoomForOperators() {
        let standard = ControlAdmission.Limits.standard
        XCTAssertEqual(standard.idleTimeout, 15 * 60 * Self.second)
        XCTAssertGreaterThanOrEqual(standard.reservedForAdministrators, 1)
        XCTAssertLessThan(standard.perUID, standard.capacity - standard.reservedForAdministrators)
    }
}
