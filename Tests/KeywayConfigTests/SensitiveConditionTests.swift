import KeywayConfig
import XCTest

/// A read-only operator cannot learn a secret by filtering on it: every way a condition can name
/// a sensitive property is refused with the same error, whatever the guess.
final class SensitiveConditionTests: XCTestCase {
    static let secret = "hunter2"
    static let denied = "permission denied: secret is sensitive, "
        + "and only administrators (root or group keyway) may test it in a condition"
    static let key = "00112233445566778899aabbccddeeff0011223344556677"

    private func configured() throws -> Configuration {
        var admin = Console()
        try admin.run("/ip ipsec peer add address=192.0.2.1 secret=\(Self.secret)")
        try admin.run("/ip ipsec manual-sa add name=m esp-spi=0x200 esp-enc-key=\(Self.key) "
                      + "esp-auth-key=0x0102030405060708090a0b0c0d0e0f1011121314")
        return admin.config
    }

    private func reader(_ config: Configuration) -> Console {
        Console(config: config, session: Session(canModify: false, mayShowSensitive: false))
    }

    func testEveryWayOfNamingASecretIsRefusedTheSameForRightAndWrongGuesses() throws {
        var c = reader(try configured())
        let forms = ["where secret=%@", "where secret!=%@", "where sec=%@", "where s=%@ and address=192.0.2.1",
                     "where not secret=%@", "where !secret=%@", "where disabled or secret=\"%@\"", "where secret"]
        for form in forms {
            var messages: [String] = []
            for guess in [Self.secret, "wrong-guess"] {
                let text = "/ip ipsec peer print count-only " + form.replacingOccurrences(of: "%@", with: guess)
                // `s` is ambiguous among peer properties; every other form names secret.
                let e = c.error(text)
                messages.append(e?.message ?? "no error")
            }
            XCTAssertEqual(messages[0], messages[1], form)
            if form.contains("where s=") {
                XCTAssertTrue(messages[0].hasPrefix("ambiguous property 's' in condition"), messages[0])
            } else {
                XCTAssertEqual(messages[0], Self.denied, form)
            }
        }
    }

    func testFindIsRefusedTooAndTheErrorNamesThePosition() throws {
        var c = reader(try configured())
        let e = c.error("/ip ipsec peer print count-only where [find secret=\(Self.secret)]")
        XCTAssertNotNil(e)
        // A [find] in a command a reader may not run anyway is refused before it is evaluated.
        XCTAssertTrue(c.error("/ip ipsec peer remove [find secret=\(Self.secret)]")?.message
                          .hasPrefix("permission denied") ?? false)
        // print takes no [find] argument: still no answer about the secret.
        let p = c.error("/ip ipsec peer print [find secret=\(Self.secret)]")
        XCTAssertEqual(p?.message, Self.denied)
        XCTAssertEqual(p?.position, SourcePosition(line: 1, column: 28))
    }

    func testManualSAKeysAreSensitiveToo() throws {
        var c = reader(try configured())
        for name in ["esp-enc-key", "esp-enc-k", "esp-auth-key", "ah-key", "ah-k"] {
            let message = c.error("/ip ipsec manual-sa print count-only where \(name)=\(Self.key)")?.message ?? ""
            XCTAssertTrue(message.hasPrefix("permission denied: ") && message.contains("is sensitive"),
                          "\(name): \(message)")
        }
        // Non-sensitive properties of the same list still filter.
        XCTAssertEqual(try c.run("/ip ipsec manual-sa print count-only where esp-spi=0x200").text, "1\n")
        XCTAssertEqual(try c.run("/ip ipsec peer print count-only where addr=192.0.2.1").text, "1\n")
    }

    func testAdministratorsKeepTheAbility() throws {
        var c = Console(config: try configured())
        XCTAssertEqual(try c.run("/ip ipsec peer print count-only where secret=\(Self.secret)").text, "1\n")
        XCTAssertEqual(try c.run("/ip ipsec peer print count-only where secret=wrong").text, "0\n")
        XCTAssertEqual(try c.run("/ip ipsec peer print count-only where sec!=wrong").text, "1\n")
        XCTAssertEqual(try c.run("/ip ipsec manual-sa print count-only where esp-enc-key=\(Self.key)").text, "1\n")
        try c.run("/ip ipsec peer disable [find secret=\(Self.secret)]")
        XCTAssertEqual(c.config.peers.map(\.disabled), [true])
    }

    func testUnknownAndAmbiguousNamesInConditionsAreErrors() throws {
        var c = Console(config: try configured())
        let unknown = c.error("/ip ipsec peer print where colour=red")
        XCTAssertTrue(unknown?.message.hasPrefix("unknown property 'colour' in condition for /ip ipsec peer: "
                                                 + "expected one of address,") ?? false,
                      "\(String(describing: unknown))")
        XCTAssertEqual(unknown?.position, SourcePosition(line: 1, column: 28))
        XCTAssertEqual(c.error("/ip ipsec peer print where d=1")?.message,
                       "ambiguous property 'd' in condition: "
                           + "could be dh-group, dpd-interval, dpd-maximum-failures, disabled, dynamic, default")
        XCTAssertEqual(try c.run("/ip ipsec peer print count-only where exch=main").text, "1\n")
        XCTAssertEqual(try c.run("/ip ipsec peer print count-only where disa").text, "0\n")
    }
}
