import Glibc
@testable import KeywayPrivsep
import KeywaySystem
import KeywayWire
import XCTest

/// keyway-sandbox-check enters a role's real sandbox (same code, same allowlist) and then
/// makes one call: a forbidden one must kill the process with SIGSYS, not return an error.
final class SeccompKillTests: XCTestCase {
    static let roles = ["ike", "datapath", "monitor"]

    func run(_ role: String, _ probe: String) throws -> ExitStatus? {
        let kind: Role = role == "ike" ? .ike : role == "datapath" ? .datapath : .monitor
        let (user, dir) = try ChildHarness.requirements(kind)
        let root = try ChildHarness.emptyRoot()
        let (keep, link) = try SeqPacket.pair()
        defer { keep.close() }
        let pid = try Processes.spawn(path: dir + "/keyway-sandbox-check", arguments: [role, user.name, root, probe],
                                      environment: ["SWIFT_BACKTRACE=enable=no"], fd3: link)
        return Processes.wait(pid: pid, timeoutMilliseconds: 30_000)
    }

    func testForbiddenSyscallsKillEachRole() throws {
        for role in Self.roles {
            for syscall in ["execve", "socket", "ptrace", "openat"] where !(role == "monitor" && syscall == "openat") {
                XCTAssertEqual(try run(role, syscall), .signaled(SIGSYS), "\(role) \(syscall)")
            }
        }
    }

    func testExecutableMemoryKillsEachRole() throws {
        for role in Self.roles {
            XCTAssertEqual(try run(role, "mmap-exec"), .signaled(SIGSYS), "\(role): mmap with PROT_EXEC")
            XCTAssertEqual(try run(role, "mprotect-exec"), .signaled(SIGSYS), "\(role): mprotect with PROT_EXEC")
        }
    }

    func testFcntlBeyondTheFlagsKillsEachRole() throws {
        for role in Self.roles {
            XCTAssertEqual(try run(role, "fcntl-setown"), .signaled(SIGSYS), "\(role): fcntl F_SETOWN")
        }
    }

    func testOrdinaryAllocationsKeepWorkingInEachRole() throws {
        // Exit 3: every allocation, read-write mapping and F_GETFL/F_SETFL returned normally.
        for role in Self.roles {
            XCTAssertEqual(try run(role, "allocations"), .exited(3), role)
        }
    }

    func testAllowedSyscallReturns() throws {
        // getpid is on every allowlist: the tool reports that the call returned (exit 3).
        XCTAssertEqual(try run("ike", "getpid"), .exited(3))
    }

    func testEveryAllowlistEntryGivesItsReason() {
        for role in [Role.ike, .datapath, .monitor] {
            for entry in SeccompProfiles.entries(for: role) {
                XCTAssertFalse(entry.reason.isEmpty, "\(role) \(entry.syscall)")
            }
            let rules = SeccompProfiles.rules(for: role)
            XCTAssertEqual(rules.filter { $0.syscall == "fcntl" }.map(\.conditions),
                           [[.equals(argument: 1, value: UInt64(F_GETFL))],
                            [.equals(argument: 1, value: UInt64(F_SETFL))]])
            for name in ["mmap", "mprotect"] {
                XCTAssertEqual(rules.filter { $0.syscall == name }.map(\.conditions),
                               [[.maskedEquals(argument: 2, mask: UInt64(PROT_EXEC), value: 0)]], "\(role) \(name)")
            }
        }
    }
}
