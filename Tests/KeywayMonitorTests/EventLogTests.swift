import KeywayConfig
import KeywayWire
import XCTest
@testable import KeywayMonitor

final class EventLogTests: XCTestCase {
    func record(_ seq: UInt64, _ text: String, _ params: [AuditParameter] = []) -> AuditRecord {
        AuditRecord(sequence: seq, epochMicroseconds: seq * 1_000_000, role: .ike, pid: 9,
                    event: AuditEvent(severity: 6, msgID: "m", text: text, parameters: params))
    }

    func testKeepsTheLastThousandInOrderAndIgnoresRepeats() {
        var log = EventLog()
        let added = log.append((1...1030).map { record($0, "e\($0)") }, secrets: [])
        XCTAssertEqual(added.count, 1030)
        XCTAssertEqual(log.entries.count, EventLog.capacity)
        XCTAssertEqual(log.entries.first?.text, "e7")
        XCTAssertEqual(log.entries.last?.text, "e1030")
        XCTAssertEqual(log.append([record(1030, "again"), record(5, "old")], secrets: []), [])
        XCTAssertEqual(log.entries.last?.process, "keyway-ike", "attributed by keywayd")
    }

    func testAConfiguredSecretNeverReachesTheLog() throws {
        var c = Configuration()
        var executor = Executor()
        var session = Session(canModify: true, mayShowSensitive: true)
        _ = try executor.run("/ip ipsec peer add address=192.0.2.2 secret=\"a long secret\" dh-group=modp2048\n"
                             + "/ip ipsec manual-sa add name=m esp-spi=0x300 esp-enc-algorithm=aes-128 "
                             + "esp-enc-key=00112233445566778899aabbccddeeff "
                             + "esp-auth-key=0102030405060708090a0b0c0d0e0f1011121314",
                             on: &c, session: &session)
        let secrets = EventLog.secrets(of: c)
        var log = EventLog()
        let added = log.append([record(1, "leaked a long secret here",
                                       [AuditParameter("key", "00112233445566778899AABBCCDDEEFF")]),
                                record(2, "x", [AuditParameter("k", "0102030405060708090a0b0c0d0e0f1011121314")])],
                               secrets: secrets)
        XCTAssertEqual(added[0].text, "leaked *** here")
        XCTAssertEqual(added[0].parameters, [LogParameter("key", "***")])
        XCTAssertEqual(added[1].parameters, [LogParameter("k", "***")])
        XCTAssertEqual(EventLog.mask("abc", ["abc"]), "abc", "too short to search for")
    }
}
