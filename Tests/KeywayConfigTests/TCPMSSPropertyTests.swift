import KeywayConfig
import XCTest

/// `/ip ipsec policy tcp-mss`, Keyway's extension: clamp-to-pmtu (the default), off, or a number.
final class TCPMSSPropertyTests: XCTestCase {
    let add = "/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes "
        + "sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2"

    func testItTakesClampOffOrANumberAndRefusesTheRest() throws {
        var c = Console()
        try c.run(add)
        XCTAssertEqual(c.config.policies[0].value("tcp-mss", in: Schema.policy), .choice("clamp-to-pmtu"),
                       "the default")
        for (text, stored) in [("off", "off"), ("1200", "1200"), ("cl", "clamp-to-pmtu"), ("88", "88"),
                               ("65495", "65495")] {
            try c.run("/ip ipsec policy set 0 tcp-mss=\(text)")
            XCTAssertEqual(c.config.policies[0].value("tcp-mss", in: Schema.policy), .choice(stored), text)
        }
        for bad in ["87", "65496", "abc", "-5", "12.5", "o1"] {
            let e = c.error("/ip ipsec policy set 0 tcp-mss=\(bad)")
            XCTAssertEqual(e?.message.contains("expected clamp-to-pmtu, off, or an MSS from 88 to 65495"), true, bad)
        }
    }

    func testExportAndPrintDetailShowIt() throws {
        var c = Console()
        try c.run(add)
        XCTAssertFalse(Exporter.export(c.config, showSensitive: false).contains("tcp-mss"),
                       "the default is not exported")
        try c.run("/ip ipsec policy set 0 tcp-mss=1300")
        let script = Exporter.export(c.config, showSensitive: false)
        XCTAssertTrue(script.contains("tcp-mss=1300"))
        var again = Console()
        try again.run(script)
        XCTAssertEqual(again.config.policies[0].value("tcp-mss", in: Schema.policy), .choice("1300"))
        XCTAssertTrue(try c.run("/ip ipsec policy print detail").text.contains("tcp-mss=1300"))
        XCTAssertFalse(try c.run("/ip ipsec policy print").text.contains("tcp-mss"),
                       "plain print keeps the manual's columns")
    }
}
