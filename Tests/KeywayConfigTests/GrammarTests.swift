import KeywayConfig
import XCTest

final class GrammarTests: XCTestCase {
    func testAbsoluteRelativeAndParentPaths() throws {
        var c = Console()
        try c.run("/ip ipsec")
        XCTAssertEqual(c.session.promptPath, "ip ipsec")
        try c.run("policy")
        XCTAssertEqual(c.session.promptPath, "ip ipsec policy")
        try c.run("add sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2")
        try c.run(".. peer add address=192.0.2.2 secret=x")
        XCTAssertEqual(c.config.peers.count, 1)
        XCTAssertEqual(c.session.promptPath, "ip ipsec policy", "a path before a command does not move the console")
        try c.run("/")
        XCTAssertEqual(c.session.promptPath, "")
        try c.run("/ip/ipsec/proposal set default lifetime=1h")
        XCTAssertEqual(c.config.proposals[0].values["lifetime"], .duration(3600))
    }

    func testCommentsSemicolonsAndContinuations() throws {
        var c = Console()
        try c.run("""
        # a comment line
        /ip ipsec peer
        add address=192.0.2.1 secret=a ; add address=192.0.2.2 \\
            secret=b   # trailing comment
        """)
        XCTAssertEqual(c.config.peers.count, 2)
    }

    // Found by fuzz-config: a CRLF line ending looped the lexer for ever.
    func testCRLFLineEndings() throws {
        var c = Console()
        try c.run("/ip ipsec peer\r\nadd address=192.0.2.1 secret=a \\\r\n  \r\n# note\r\n")
        XCTAssertEqual(c.config.peers.count, 1)
        try c.run("/ip ipsec peer add address=192.0.2.2 secret=b\r\n/ip ipsec peer add address=192.0.2.3 secret=c")
        XCTAssertEqual(c.config.peers.count, 3)
    }

    // Found by fuzz-config: a word of slashes only indexed an empty split.
    func testWordsOfSlashesAreErrorsNotCrashes() {
        var c = Console()
        for text in ["/ip //", "//", "/ip ipsec policy add ///=1", "/ip/ipsec/ print"] {
            _ = try? c.run(text)
        }
        XCTAssertNotNil(c.error("/ip // print"))
    }

    func testQuotedStringsWithEscapes() throws {
        var c = Console()
        try c.run(#"/ip ipsec peer add address=192.0.2.1 secret="a\"b\\c\_d\$e\41""#)
        XCTAssertEqual(c.config.peers[0].values["secret"], .text("a\"b\\c d$eA"))
        let e = c.error(#"/ip ipsec peer add secret="bad\q""#)
        XCTAssertEqual(e?.position, SourcePosition(line: 1, column: 32))
        XCTAssertTrue(e?.message.hasPrefix("unknown escape '\\q' in string") ?? false, "\(String(describing: e))")
        XCTAssertEqual(c.error("/ip ipsec peer add secret=\"open")?.message,
                       "unterminated string: expected a closing '\"'")
    }

    func testUnambiguousPrefixesOfPropertiesCommandsAndMenus() throws {
        var c = Console()
        try c.run("/ip ips pol ad sa-src=192.0.2.1 sa-dst=192.0.2.2 act=disc")
        XCTAssertEqual(c.config.policies[0].values["action"], .choice("discard"))
        let e = c.error("/ip ipsec policy add sa=192.0.2.1")
        XCTAssertEqual(e?.message, "ambiguous property 'sa': could be sa-src-address, sa-dst-address")
        XCTAssertEqual(e?.position, SourcePosition(line: 1, column: 22))
    }

    func testItemNumbersNamesListsAndFind() throws {
        var c = Console()
        try c.run("/ip ipsec peer\nadd address=192.0.2.1 secret=a; add address=192.0.2.2 secret=b; "
                     + "add address=192.0.2.3 secret=c")
        try c.run("/ip ipsec peer print")
        try c.run("/ip ipsec peer disable 0,2")
        XCTAssertEqual(c.config.peers.map(\.disabled), [true, false, true])
        try c.run("/ip ipsec peer remove [find address=192.0.2.2]")
        XCTAssertEqual(c.config.peers.count, 2)
        try c.run("/ip ipsec peer enable [find disabled]")
        XCTAssertEqual(c.config.peers.map(\.disabled), [false, false])
        try c.run("/ip ipsec proposal add name=strong enc-algorithms=aes-256-gcm auth-algorithms=null pfs-group=ecp256")
        try c.run("/ip ipsec proposal set strong lifetime=1h")
        XCTAssertEqual(c.config.proposals[1].values["lifetime"], .duration(3600))
        try c.run("/ip ipsec peer print")
        XCTAssertEqual(c.error("/ip ipsec peer set 5 secret=x")?.message,
                       "no such item 5 (the last print listed 0 to 1)")
        XCTAssertEqual(c.error("/ip ipsec proposal set nosuch lifetime=1h")?.message,
                       "no such item 'nosuch' in /ip ipsec proposal")
    }

    func testPrintVariantsAndWhere() throws {
        var c = Console()
        try c.run("/ip ipsec policy\nadd sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2; "
                     + "add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes "
                     + "sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2 action=none")
        XCTAssertEqual(try c.run("/ip ipsec policy print count-only").text, "2\n")
        XCTAssertEqual(try c.run("/ip ipsec policy print count-only where action=none").text, "1\n")
        XCTAssertEqual(try c.run("/ip ipsec policy print count-only where action!=none and tunnel=no").text, "1\n")
        XCTAssertEqual(try c.run("/ip ipsec policy print count-only where action=none or tunnel=no").text, "2\n")
        XCTAssertEqual(try c.run("/ip ipsec policy print count-only where !disabled").text, "2\n")
        XCTAssertTrue(try c.run("/ip ipsec policy print detail").text.contains("dont-fragment=clear"))
        XCTAssertFalse(try c.run("/ip ipsec policy print").text.contains("dont-fragment"))
        let json = try c.run("/ip ipsec policy print where action=none").json
        XCTAssertEqual(json.count, 1)
        XCTAssertTrue(json[0].hasPrefix("[{\".id\":\"*"), json[0])
        XCTAssertTrue(json[0].contains("\"src-address\":\"10.1.0.0/24:any\""), json[0])
    }

    func testTimeValuesAreNormalised() throws {
        var c = Console()
        for (input, printed) in [("28800s", "8h"), ("1d2h3m4s", "1d2h3m4s"), ("90", "1m30s"), ("1w", "1w"), ("0", "0s"),
                                 ("30m", "30m")] {
            try c.run("/ip ipsec proposal set default lifetime=\(input)")
            let text = try c.run("/ip ipsec proposal print").text
            XCTAssertTrue(text.contains("lifetime=\(printed) ") || text.contains("lifetime=\(printed)\n"),
                          "\(input): \(text)")
        }
        XCTAssertEqual(c.error("/ip ipsec proposal set default lifetime=5x")?.message,
                       "invalid value '5x' for lifetime: expected a time such as 30m, 1d, 28800s or 1d2h3m4s")
    }

    func testErrorsNameTheLineColumnAndWhatWasExpected() {
        var c = Console()
        let cases: [(String, String, Int, Int)] = [
            ("/ip ipsec policy frobnicate",
             "no such command 'frobnicate' in /ip ipsec policy: "
                + "expected one of add, set, remove, enable, disable, print, export", 1, 18),
            ("/ip ipsec policy add action=allow",
             "invalid value 'allow' for action: expected one of none, discard, encrypt", 1, 22),
            ("/ip ipsec policy add color=red",
             "unknown property 'color' for /ip ipsec policy: expected one of src-address, dst-address, protocol, "
                + "action, level, ipsec-protocols, tunnel, sa-src-address, sa-dst-address, proposal, manual-sa, "
                + "priority, dont-fragment, tcp-mss, disabled", 1, 22),
            ("/ip ipsec policy add src-address=10.0.0.0/33",
             "invalid value '10.0.0.0/33' for src-address: "
                + "expected an address such as 10.0.0.0/24 or 10.0.0.1/32:500", 1, 22),
            ("\n\n/ip ipsec peer add address=192.0.2.1 nat-traversal=maybe",
             "invalid value 'maybe' for nat-traversal: expected yes or no", 3, 38),
            ("/ip ipsec policy remove",
             "expected the items to change: numbers from print, a name, or [find ...]", 1, 18),
            ("/ip ipsec policy set [find", "expected ']' to close '[find'", 1, 27),
            ("/ip ipsec policy set [frob]", "expected 'find' after '[' (only [find ...] is supported)", 1, 23),
            ("/ip ipsec policy print where",
             "expected a condition (name=value, name!=value, or a flag such as disabled)", 1, 29),
            ("/ip ipsec policy add x \\ y", "a backslash outside quotes must end the line (line continuation)", 1, 24),
            ("/ip ipsec policy add \\", "the last line ends in a backslash but nothing follows", 1, 23),
            ("/ip nosuch print",
             "no such menu or command 'nosuch' in /ip: expected one of ipsec, firewall, export", 1, 5),
            ("/ip ipsec proposal remove default",
             "the built-in proposal default cannot be removed (it can be changed with set)", 1, 20),
            ("/ip ipsec policy print frob",
             "unknown print option 'frob': expected detail, stats, count-only, show-sensitive or where", 1, 24),
            ("/ip ipsec manual-sa add name=m esp-enc-algorithm=aes-128 esp-enc-key=0011",
             "esp-enc-key has 2 bytes; aes-128 needs 16", 1, 21),
            ("/ip ipsec manual-sa add name=m esp-enc-algorithm=aes-128-gcm "
                + "esp-enc-key=00112233445566778899aabbccddeeff",
             "esp-enc-algorithm=aes-128-gcm is a counter-mode cipher, which manual keys cannot use: "
                + "its IV is the sequence number, which restarts at 1 under the same key after any restart "
                + "(RFC 8221); use a CBC cipher such as aes-128, or let IKE key the policy", 1, 21),
            ("/ip ipsec manual-sa add name=m ah-key=zz",
             "invalid value for ah-key: expected a hex key, or incoming/outgoing keys separated by '/'", 1, 32),
            ("/ip ipsec peer add auth-method=rsa-signature",
             "auth-method=rsa-signature needs certificate= and remote-certificate=", 1, 16),
        ]
        for (text, message, line, column) in cases {
            let e = c.error(text)
            XCTAssertEqual(e?.message, message, text)
            XCTAssertEqual(e?.position, SourcePosition(line: line, column: column), text)
        }
    }

    func testSecretsNeverAppearInErrorsOrAudit() throws {
        var c = Console()
        let e = c.error("/ip ipsec peer add secret=0xZZtopsecret")
        XCTAssertFalse(e?.description.contains("topsecret") ?? true)
        let out = try c.run("/ip ipsec peer add address=192.0.2.1 secret=hunter2; "
                               + "/ip ipsec manual-sa add name=m ah-spi=0x100 ah-key=abcdef")
        XCTAssertEqual(out.changes,
                       ["/ip ipsec peer add address=192.0.2.1 secret=***",
                        "/ip ipsec manual-sa add name=m ah-spi=0x100 ah-key=***"])
    }

    func testAFailedScriptChangesNothing() throws {
        var c = Console()
        try c.run("/ip ipsec peer add address=192.0.2.1 secret=a")
        let before = c.config
        XCTAssertNotNil(c.error("/ip ipsec peer add address=192.0.2.2 secret=b\n/ip ipsec peer add address=banana"))
        XCTAssertEqual(c.config, before)
    }

    func testReadOnlySessionsMayOnlyLookAndNeverSeeSecrets() throws {
        var admin = Console()
        try admin.run("/ip ipsec peer add address=192.0.2.1 secret=hunter2")
        var c = Console(config: admin.config, session: Session(canModify: false, mayShowSensitive: false))
        XCTAssertFalse(try c.run("/ip ipsec peer print").text.contains("hunter2"))
        XCTAssertEqual(c.error("/ip ipsec peer add address=192.0.2.9")?.message,
                       "permission denied: 'add' changes the configuration, and this user may only look (keyway-read)")
        XCTAssertEqual(c.error("/ip ipsec peer print show-sensitive")?.message,
                       "permission denied: show-sensitive needs an administrator (root or group keyway)")
        XCTAssertEqual(c.error("/export show-sensitive")?.message,
                       "permission denied: show-sensitive needs an administrator (root or group keyway)")
        XCTAssertFalse(try c.run("/export").text.contains("hunter2"))
    }

    func testWeakChoicesAreFlagged() throws {
        var c = Console()
        let out = try c.run("/ip ipsec peer add address=192.0.2.1 secret=x dh-group=ec2n155 enc-algorithm=des; "
                               + "/ip ipsec proposal set default pfs-group=modp768")
        XCTAssertTrue(out.warnings.contains("dh-group=ec2n155 is weak: "
                                                + "prefer modp2048 or ecp256 where the peer allows"),
                      "\(out.warnings)")
        XCTAssertTrue(out.warnings.contains("enc-algorithm=des is weak"))
        XCTAssertTrue(out.warnings.contains("pfs-group=modp768 is weak"))
        let strong = try c.run("/ip ipsec peer add address=192.0.2.2 secret=y dh-group=modp2048 enc-algorithm=aes-256 "
                                  + "hash-algorithm=sha256")
        XCTAssertEqual(strong.warnings, [])
    }

    func testInactivePoliciesSayWhy() throws {
        var c = Console()
        try c.run("/ip ipsec policy add sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2 proposal=missing")
        try c.run("/ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 "
                     + "sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2")
        try c.run("/ip ipsec policy add sa-src-address=192.0.2.1 sa-dst-address=192.0.2.2 manual-sa=nosuch")
        let detail = try c.run("/ip ipsec policy print detail").text
        XCTAssertTrue(detail.contains(" 0  I src-address") || detail.contains(" 0 I  src-address")
                          || detail.contains(" 0 I src-address"), detail)
        XCTAssertTrue(detail.contains("inactive-reason=\"proposal missing does not exist\""), detail)
        XCTAssertTrue(detail.contains("transport mode protects only traffic between the SA addresses"), detail)
        XCTAssertTrue(detail.contains("inactive-reason=\"manual-sa nosuch does not exist\""), detail)
        XCTAssertEqual(try c.run("/ip ipsec policy print count-only where inactive").text, "3\n")
    }
}
