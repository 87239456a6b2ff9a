import KeywayPrivsep
import KeywaySystem
import XCTest

/// `--user BASE`: one user per child, each existing, none root, no two sharing a uid.
final class RoleUsersTests: XCTestCase {
    static let distinct = RoleUsers(ike: UserIdentity(name: "keyway-ike", uid: 991, gid: 991),
                                    datapath: UserIdentity(name: "keyway-datapath", uid: 992, gid: 992),
                                    monitor: UserIdentity(name: "keyway-monitor", uid: 993, gid: 993))

    func lookup(_ table: [String: (uid_t, gid_t)]) -> (String) -> UserIdentity? {
        { name in table[name].map { UserIdentity(name: name, uid: $0.0, gid: $0.1) } }
    }

    func testBaseNameGivesOneUserPerRole() throws {
        let users = try RoleUsers.resolve(base: "keyway", lookup: lookup([
            "keyway-ike": (991, 991), "keyway-datapath": (992, 992), "keyway-monitor": (993, 993), "keyway": (999, 995),
        ]))
        XCTAssertEqual(users, Self.distinct)
        XCTAssertEqual(users[.ike]?.uid, 991)
        XCTAssertEqual(users[.datapath]?.uid, 992)
        XCTAssertEqual(users[.monitor]?.uid, 993)
        XCTAssertNil(users[.parent])
    }

    func testMissingUsersAreNamedWithHowToCreateThem() {
        XCTAssertThrowsError(try RoleUsers.resolve(base: "kw", lookup: lookup(["kw-datapath": (992, 992)]))) { error in
            XCTAssertEqual(error as? RoleUsersError, .missing(base: "kw", names: ["kw-ike", "kw-monitor"]))
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("users 'kw-ike', 'kw-monitor' do not exist (--user kw: "
                                         + "the children run as kw-ike, kw-datapath and kw-monitor"), text)
            XCTAssertTrue(text.contains("contrib/create-user.sh") && text.contains("useradd --system"), text)
        }
    }

    func testARootUserIsRefused() {
        XCTAssertThrowsError(try RoleUsers.resolve(base: "kw", lookup: lookup([
            "kw-ike": (991, 991), "kw-datapath": (0, 0), "kw-monitor": (993, 993),
        ]))) { error in
            XCTAssertEqual("\(error)", "user 'kw-datapath' has uid 0; the children must run unprivileged")
        }
    }

    func testUsersSharingAUIDAreRefused() {
        XCTAssertThrowsError(try RoleUsers.resolve(base: "kw", lookup: lookup([
            "kw-ike": (991, 991), "kw-datapath": (992, 992), "kw-monitor": (991, 993),
        ]))) { error in
            XCTAssertEqual("\(error)", "users 'kw-ike' and 'kw-monitor' share uid 991; "
                                        + "each child needs a uid of its own so that none can signal another")
        }
    }
}
