import KeywayConfig
import XCTest

/// A runtime that shows fixed audit events.
struct EventsRuntime: RuntimeView {
    var entries: [LogEntry]
    func installedSAs(showSensitive: Bool) -> [(flags: String, fields: [(String, String)])] { [] }
    func remotePeers() -> [[(String, String)]] { [] }
    func policyStats(id: Int) -> [(String, String)] { [] }
    func statistics() -> [(String, UInt64)] { [] }
    mutating func flush(saType: String) -> Int { 0 }
    func logEntries() -> [LogEntry] { entries }
}

final class LogMenuTests: XCTestCase {
    static let entries = [
        LogEntry(sequence: 1, epochMicroseconds: 1_764_578_881_000_000, process: "keywayd", pid: 100, severity: 5,
                 msgID: "start", text: "keywayd starting", parameters: [LogParameter("tun", "ipsec0")]),
        LogEntry(sequence: 2, epochMicroseconds: 1_764_578_882_000_000, process: "keyway-ike", pid: 101, severity: 3,
                 msgID: "phase1-failed", text: "phase 1 negotiation failed: no proposal chosen",
                 parameters: [LogParameter("peer", "192.0.2.2")]),
        LogEntry(sequence: 3, epochMicroseconds: 1_764_578_883_000_000, process: "keyway-monitor", pid: 102,
                 severity: 4, msgID: "control-denied", text: "control connection refused",
                 parameters: [LogParameter("uid", "1000")]),
    ]

    func console(readOnly: Bool = false) -> Console {
        var c = Console()
        c.executor = Executor(runtime: EventsRuntime(entries: Self.entries))
        c.session = Session(canModify: !readOnly, mayShowSensitive: !readOnly)
        return c
    }

    func testPrintShowsTimeTopicsAndMessageOfEveryProcess() throws {
        var c = console()
        let text = try c.run("/log print").text
        XCTAssertEqual(text, """
            dec/01/2025 08:48:01 system,info         keywayd: keywayd starting tun=ipsec0
            dec/01/2025 08:48:02 ipsec,error         keyway-ike: phase 1 negotiation failed: no proposal chosen \
            peer=192.0.2.2
            dec/01/2025 08:48:03 system,account,warning keyway-monitor: control connection refused uid=1000

            """)
    }

    func testWhereWithContainsEqualsTopicsAndNot() throws {
        var c = console()
        XCTAssertEqual(try c.run(#"/log print count-only where topics~"ipsec""#).text, "1\n")
        XCTAssertEqual(try c.run("/log print count-only where topics=error").text, "1\n")
        XCTAssertEqual(try c.run("/log print count-only where topics=system").text, "2\n")
        XCTAssertEqual(try c.run(#"/log print count-only where message~"PROPOSAL" or process=keywayd"#).text, "2\n")
        XCTAssertEqual(try c.run("/log print count-only where not topics~ipsec and pid=102").text, "1\n")
        XCTAssertEqual(try c.run("/log print count-only where proc=keyway-ike").text, "1\n", "a prefix of a name")
        XCTAssertEqual(c.error("/log print where colour=red")?.message.hasPrefix("unknown property 'colour'"), true)
    }

    func testJSONIsAnArrayOfEvents() throws {
        var c = console()
        let out = try c.run("/log print where msg-id=phase1-failed")
        XCTAssertEqual(out.json, [#"[{".id":"*2","time":"dec/01/2025 08:48:02","topics":"ipsec,error","#
                                  + #""process":"keyway-ike","pid":101,"msg-id":"phase1-failed","#
                                  + #""message":"phase 1 negotiation failed: no proposal chosen peer=192.0.2.2"}]"#])
    }

    func testFollowAsksForLaterMatchingEvents() throws {
        var c = console()
        let out = try c.run("/log print follow where topics~ipsec")
        XCTAssertEqual(out.text.split(separator: "\n").count, 1)
        XCTAssertEqual(out.follow?.after, 3)
        XCTAssertEqual(out.json.count, 1, "following, JSON is one event a line")
        let only = try c.run("/log print follow-only")
        XCTAssertEqual(only.text, "")
        XCTAssertEqual(only.follow?.after, 3)
        XCTAssertNotNil(c.error("/log print count-only follow"))
        XCTAssertEqual(c.error("/ip ipsec policy print follow")?.message.hasPrefix("unknown print option 'follow'"),
                       true)
        XCTAssertNil(try c.run("/log print").follow)
    }

    func testReadOnlyOperatorsMayReadTheLog() throws {
        var c = console(readOnly: true)
        XCTAssertEqual(try c.run("/log print count-only").text, "3\n")
        XCTAssertNotNil(c.error("/log add message=x"))
    }

    func testEmptyPrintsShowTheirHeaderAsRouterOSDoes() throws {
        var c = Console()
        XCTAssertEqual(try c.run("/ip ipsec policy print").text, "Flags: X - disabled, D - dynamic, I - inactive\n")
        XCTAssertEqual(try c.run("/ip ipsec peer print").text, "Flags: X - disabled\n")
        XCTAssertEqual(try c.run("/ip ipsec manual-sa print").text, "Flags: X - disabled\n")
        XCTAssertEqual(try c.run("/ip ipsec installed-sa print").text, "Flags: A - AH, E - ESP, P - pfs\n")
        XCTAssertEqual(try c.run("/ip ipsec policy print count-only").text, "0\n")
    }

    func testContainsWorksOnConfigurationMenusToo() throws {
        var c = Console()
        try c.run("/ip ipsec peer add address=192.0.2.2 secret=abcdefgh dh-group=modp2048")
        try c.run("/ip ipsec peer add address=198.51.100.7 secret=abcdefgh dh-group=modp2048")
        XCTAssertEqual(try c.run("/ip ipsec peer print count-only where address~198.51").text, "1\n")
        var reader = Console()
        reader.config = c.config
        reader.session = Session(canModify: false, mayShowSensitive: false)
        XCTAssertEqual(reader.error("/ip ipsec peer print count-only where secret~abc")?.message
            .hasPrefix("permission denied: secret is sensitive"), true)
    }
}

final class ConsoleHelpTests: XCTestCase {
    func testTabCompletesOneCandidateOrTheSharedPartOrLists() {
        XCTAssertEqual(Completion.tab("/ip ipsec pol", path: []), .insert("icy "))
        XCTAssertEqual(Completion.tab("/ip ipsec p", path: []),
                       .show(["/policy", "/peer", "/proposal"].map { String($0.dropFirst()) }))
        XCTAssertEqual(Completion.tab("/l", path: []), .insert("og "))
        XCTAssertEqual(Completion.tab("add sa-s", path: ["ip", "ipsec", "policy"]), .insert("rc-address="))
        XCTAssertEqual(Completion.tab("print fol", path: ["log"]), .insert("low"))
        XCTAssertEqual(Completion.tab("/ip ipsec policy zzz", path: []), .nothing)
    }

    func testQuestionMarkSaysWhatMayComeNext() {
        let menus = Completion.help(for: "/ip ipsec ", path: [])
        XCTAssertTrue(menus.contains("policy/") && menus.contains("which traffic is protected"), menus)
        let root = Completion.help(for: "", path: [])
        XCTAssertTrue(root.contains("log/") && root.contains("recent audit events"), root)
        let props = Completion.help(for: "add ", path: ["ip", "ipsec", "peer"])
        XCTAssertTrue(props.contains("dh-group") && props.contains("secret") && props.contains("disabled"), props)
        let value = Completion.help(for: "add exchange-mode=", path: ["ip", "ipsec", "peer"])
        XCTAssertEqual(value, "exchange-mode: one of main, aggressive, base, ike2; default main")
        let print = Completion.help(for: "print ", path: ["log"])
        XCTAssertTrue(print.contains("follow") && print.contains("topics"), print)
        XCTAssertTrue(Completion.help(for: "set ", path: ["ip", "ipsec", "policy"]).contains("src-address"))
    }

    func testCompletionOffersOnlyTheCommandsAMenuTakes() {
        XCTAssertEqual(Completion.candidates(for: "", path: ["log"]), ["print"])
        XCTAssertEqual(Completion.candidates(for: "", path: ["ip", "ipsec", "installed-sa"]), ["print", "flush"])
    }
}
