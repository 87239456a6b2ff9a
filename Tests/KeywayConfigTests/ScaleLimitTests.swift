import KeywayConfig
import KeywayVocabulary
import XCTest

/// The console refuses what the other processes are not sized for (ScaleLimits), at the command
/// that goes beyond, and a script that does changes nothing.
final class ScaleLimitTests: XCTestCase {
    func testAddingBeyondTheLimitIsRefusedAtThatCommand() throws {
        var console = Console()
        let lines = (0..<ScaleLimits.manualSAs).map { "add name=m\($0) esp-spi=0x\(String(256 + $0, radix: 16))/0x100" }
        try console.run("/ip ipsec manual-sa\n" + lines.joined(separator: "\n"))
        XCTAssertEqual(console.config.manualSAs.count, ScaleLimits.manualSAs)
        let error = console.error("/ip ipsec manual-sa add name=one-more")
        XCTAssertEqual(error?.message, "too many manual-sa items: at most \(ScaleLimits.manualSAs)")
        XCTAssertEqual(error?.position, SourcePosition(line: 1, column: 21))
        XCTAssertEqual(console.config.manualSAs.count, ScaleLimits.manualSAs, "nothing was added")
    }

    /// Names are looked up through an index: a policy naming the last of 10,000 manual SAs finds it,
    /// and a renamed one is found under its new name only.
    func testPoliciesFindTheirManualSAAmongMany() throws {
        var console = Console()
        let lines = (0..<2_000).map { "add name=m\($0) esp-spi=0x\(String(256 + $0, radix: 16))/0x100" }
        try console.run("/ip ipsec manual-sa\n" + lines.joined(separator: "\n"))
        try console.run("/ip ipsec policy add dst-address=10.2.0.0/24 tunnel=yes sa-dst-address=192.0.2.2 "
                           + "manual-sa=m1999")
        XCTAssertNil(console.config.inactiveReason(console.config.policies[0]))
        XCTAssertEqual(console.config.item(named: "m1999", in: .manualSA)?.name, "m1999")
        try console.run("/ip ipsec manual-sa set m1999 name=renamed")
        XCTAssertNil(console.config.item(named: "m1999", in: .manualSA))
        XCTAssertEqual(console.config.inactiveReason(console.config.policies[0]), "manual-sa m1999 does not exist")
        XCTAssertNotNil(console.config.item(named: "renamed", in: .manualSA))
    }
}
