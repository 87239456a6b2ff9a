import Glibc
import KeywaySystem
import XCTest

/// keyway-sandbox-check enters a role's real sandbox (same code, same allowlist) and then
/// makes one syscall: a forbidden one must kill the process with SIGSYS, not return an error.
final class SeccompKillTests: XCTestCase {
    func run(_ role: String, _ syscall: String) throws -> ExitStatus? {
        let (_, dir) = try ChildHarness.requirements()
        let root = try ChildHarness.emptyRoot()
        let (keep, devnull) = try SeqPacket.pair()
        defer { keep.close() }
        let pid = try Processes.spawn(path: dir + "/keyway-sandbox-check", arguments: [role, ChildHarness.user, root, syscall],
                                      environment: ["SWIFT_BACKTRACE=enable=no"], fd3: devnull)
        return Processes.wait(pid: pid, timeoutMilliseconds: 10000)
    }

    func testForbiddenSyscallsKillEachRole() throws {
        for role in ["ike", "datapath", "monitor"] {
            for syscall in ["execve", "socket", "ptrace", "openat"] where !(role == "monitor" && syscall == "openat") {
                XCTAssertEqual(try run(role, syscall), .signaled(SIGSYS), "\(role) \(syscall)")
            }
        }
    }

    func testAllowedSyscallReturns() throws {
        // getpid is on every allowlist: the tool reports that the call returned (exit 3).
        XCTAssertEqual(try run("ike", "getpid"), .exited(3))
    }
}
