@testable import KeywayPrivsep
import KeywaySystem
import XCTest

/// Which child binaries keywayd agrees to execute, decided from lstat's answers.
final class ExecutableTrustTests: XCTestCase {
    let file: mode_t = 0o100000, directory: mode_t = 0o040000, link: mode_t = 0o120000
    let refusal = "refusing to execute /opt/kw/bin/keyway-ike: "

    func chain(_ entries: [(String, uid_t, mode_t)]) -> [(String, Result<FileStatus, SystemError>)] {
        entries.map { ($0.0, .success(FileStatus(uid: $0.1, mode: $0.2))) }
    }

    func verdict(_ entries: [(String, uid_t, mode_t)]) -> String? {
        do {
            try ExecutableTrust.check(executable: entries[0].0, chain: chain(entries))
            return nil
        } catch {
            return error.description
        }
    }

    var safe: [(String, uid_t, mode_t)] {
        [("/opt/kw/bin/keyway-ike", 0, file | 0o755), ("/opt/kw/bin", 0, directory | 0o755),
         ("/opt/kw", 0, directory | 0o755), ("/opt", 0, directory | 0o755), ("/", 0, directory | 0o755)]
    }

    func testLineageRunsFromTheFileUpToTheRoot() {
        XCTAssertEqual(ExecutableTrust.lineage(of: "/opt/kw/bin/keyway-ike"),
                       ["/opt/kw/bin/keyway-ike", "/opt/kw/bin", "/opt/kw", "/opt", "/"])
        XCTAssertEqual(ExecutableTrust.lineage(of: "//opt//x"), ["/opt/x", "/opt", "/"])
    }

    func testRootOwnedAndWritableByNoOneElseIsAccepted() {
        XCTAssertNil(verdict(safe))
    }

    func testAGroupWritableBinaryIsRefused() {
        var c = safe
        c[0].2 = file | 0o775
        XCTAssertEqual(verdict(c), refusal + "it is writable by its group (mode 0775)")
    }

    func testABinaryOwnedBySomeoneElseIsRefused() {
        var c = safe
        c[0].1 = 1000
        XCTAssertEqual(verdict(c), refusal + "it is owned by uid 1000, not root")
    }

    func testADirectoryWritableByOthersIsRefusedWithoutTheStickyBit() {
        var c = safe
        c[2].2 = directory | 0o757
        XCTAssertEqual(verdict(c), refusal + "directory /opt/kw is writable by others (mode 0757)")
        c[2].2 = directory | 0o1777
        XCTAssertNil(verdict(c), "a root-owned sticky directory like /tmp: others cannot rename root's entries")
    }

    func testAStickyDirectoryOwnedBySomeoneElseIsRefused() {
        var c = safe
        c[2] = ("/opt/kw", 1000, directory | 0o1777)
        XCTAssertEqual(verdict(c), refusal + "directory /opt/kw is owned by uid 1000, not root")
    }

    func testTheStickyBitDoesNotExcuseTheBinaryItself() {
        var c = safe
        c[0].2 = file | 0o1777
        XCTAssertEqual(verdict(c), refusal + "it is writable by others (mode 1777)")
    }

    func testSymbolicLinksAndWrongTypesAreRefused() {
        var c = safe
        c[1].2 = link | 0o777
        XCTAssertEqual(verdict(c), refusal + "directory /opt/kw/bin is a symbolic link")
        c = safe
        c[0].2 = directory | 0o755
        XCTAssertEqual(verdict(c), refusal + "it is not a regular file")
    }

    func testAPathThatCannotBeExaminedIsRefused() {
        var c = chain(safe)
        c[0].1 = .failure(SystemError("lstat", errno: .noSuchFileOrDirectory))
        XCTAssertThrowsError(try ExecutableTrust.check(executable: "/opt/kw/bin/keyway-ike", chain: c)) { error in
            XCTAssertTrue("\(error)".hasPrefix(self.refusal + "it cannot be examined"), "\(error)")
        }
    }

    func testVerifyReadsTheRealFileSystem() throws {
        guard Users.effectiveUID == 0 else { throw XCTSkip("needs root: the files must be root's") }
        var template = Array("/tmp/keyway-trust-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw SystemError.last("mkdtemp") }
        let dir = String(decoding: template.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { unlink(dir + "/child"); rmdir(dir) }
        chmod(dir, 0o755)
        let fd = open(dir + "/child", O_CREAT | O_WRONLY, 0o755)
        close(fd)
        chmod(dir + "/child", 0o755)
        XCTAssertNoThrow(try ExecutableTrust.verify(dir + "/child"), "/tmp is root's and sticky")
        chmod(dir + "/child", 0o775)
        XCTAssertThrowsError(try ExecutableTrust.verify(dir + "/child")) {
            XCTAssertTrue("\($0)".contains("writable by its group"))
        }
        chmod(dir + "/child", 0o755)
        chmod(dir, 0o757)
        XCTAssertThrowsError(try ExecutableTrust.verify(dir + "/child")) {
            XCTAssertTrue("\($0)".contains("directory \(dir) is writable by others"))
        }
    }
}

final class ChildrenDirectoryTests: XCTestCase {
    func testInstalledKeywaydFindsItsChildrenInLibexecElseBesideItself() {
        XCTAssertEqual(ChildrenDirectory.choose(keywaydDirectory: "/usr/sbin",
                                                exists: { $0 == "/usr/libexec/keyway/keyway-ike" }),
                       "/usr/libexec/keyway")
        XCTAssertEqual(ChildrenDirectory.choose(keywaydDirectory: "/tmp/kw/bin", exists: { _ in false }), "/tmp/kw/bin")
        XCTAssertEqual(ChildrenDirectory.choose(keywaydDirectory: "/", exists: { $0 == "/libexec/keyway/keyway-ike" }),
                       "/libexec/keyway")
    }
}
