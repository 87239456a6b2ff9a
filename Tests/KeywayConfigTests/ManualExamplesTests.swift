import KeywayConfig
import XCTest

/// Every /ip ipsec command of the reference manual's examples, verbatim as printed (console
/// prompts and `\...` continuations included), and the printouts' shape.
final class ManualExamplesTests: XCTestCase {
    func testPolicyExampleAndItsPrintout() throws {
        var c = Console()
        try c.run("""
        [admin@MikroTik] ip ipsec policy> add sa-src-address=10.0.0.147 \\
        \\... sa-dst-address=10.0.0.148 action=encrypt
        """)
        let print = try c.run("[admin@MikroTik] ip ipsec policy> print").text
        XCTAssertEqual(print, """
        Flags: X - disabled, D - dynamic, I - inactive
         0   src-address=10.0.0.147/32:any dst-address=10.0.0.148/32:any protocol=all
             action=encrypt level=require ipsec-protocols=esp tunnel=no
             sa-src-address=10.0.0.147 sa-dst-address=10.0.0.148 proposal=default
             manual-sa=none priority=0


        """)
        let stats = try c.run("[admin@MikroTik] ip ipsec policy> print stats").text
        // The manual's stats printout shows v2.9 counter names; Keyway prints the v3 names (semantics.md).
        XCTAssertEqual(stats, """
        Flags: X - disabled, D - dynamic, I - inactive
         0   src-address=10.0.0.147/32:any dst-address=10.0.0.148/32:any protocol=all
             ph2-state=no-phase2 in-accepted=0 in-dropped=0 in-transformed=0
             out-accepted=0 out-dropped=0 out-transformed=0


        """)
    }

    func testPeerExampleAndItsPrintout() throws {
        var c = Console()
        try c.run("""
        [admin@MikroTik] ip ipsec peer>add address=10.0.0.147/32 \\
        \\... secret=gwejimezyfopmekun
        """)
        let hidden = try c.run("[admin@MikroTik] ip ipsec peer> print").text
        XCTAssertFalse(hidden.contains("gwejimezyfopmekun"), "print hides the secret")
        XCTAssertTrue(hidden.contains("secret=<hidden>"))
        let shown = try c.run("/ip ipsec peer print show-sensitive").text
        // The manual's layout; proposal-check is strict, the property list's default (semantics.md).
        XCTAssertEqual(shown, """
        Flags: X - disabled
         0   address=10.0.0.147/32:500 auth-method=pre-shared-key
             secret="gwejimezyfopmekun" generate-policy=no exchange-mode=main
             send-initial-contact=yes nat-traversal=no proposal-check=strict
             hash-algorithm=md5 enc-algorithm=3des dh-group=modp1024 lifetime=1d
             lifebytes=0


        """)
    }

    func testRemotePeersAndInstalledSACommands() throws {
        var c = Console()
        XCTAssertEqual(try c.run("[admin@MikroTik] ip ipsec> remote-peers print").text, "")
        XCTAssertEqual(try c.run("[admin@MikroTik] ip ipsec> installed-sa print").text,
                       "Flags: A - AH, E - ESP, P - pfs\n")
        try c.run("[admin@MikroTik] ip ipsec installed-sa> flush")
        try c.run("[admin@MikroTik] ip ipsec installed-sa> print")
        try c.run("/ip ipsec installed-sa flush sa-type=esp")
    }

    func testEveryConfigsFileLoadsAsWritten() throws {
        let files = try Repository.configs()
        XCTAssertEqual(files.count, 14, "the manual's examples and the IKEv2 pair")
        for (name, text) in files {
            var c = Console()
            XCTAssertNoThrow(try c.run(text), name)
            XCTAssertFalse(c.config.policies.isEmpty && c.config.peers.isEmpty, "\(name) configured nothing")
        }
    }

    func testTunnelAHExampleBuildsTheManualSA() throws {
        var c = Console()
        try c.run(try String(contentsOfFile: Repository.root + "/Configs/tunnel-ah-manual-router1.rsc",
                             encoding: .utf8))
        let sa = try c.run("/ip ipsec manual-sa print detail show-sensitive").text
        XCTAssertTrue(sa.contains("ah-spi=0x101/0x100"), sa)
        XCTAssertTrue(sa.contains("ah-key=\"abcfed\""), sa)
        let policy = try c.run("/ip ipsec policy print").text
        XCTAssertTrue(policy.contains("src-address=10.1.0.0/24:any"), policy)
        XCTAssertTrue(policy.contains("ipsec-protocols=ah tunnel=yes"), policy)
        XCTAssertTrue(policy.contains("sa-src-address=1.0.0.1 sa-dst-address=1.0.0.2"), policy)
        XCTAssertTrue(policy.contains("manual-sa=ah-sa1"), policy)
        XCTAssertTrue(policy.contains("\n 0   src-address"), "no flags: the policy is active: \(policy)")
    }

    func testCiscoExampleSetsTheDefaultProposal() throws {
        var c = Console()
        let out = try c.run(try String(contentsOfFile: Repository.root + "/Configs/cisco-mikrotik.rsc",
                                       encoding: .utf8))
        XCTAssertTrue(out.warnings.contains("enc-algorithm=des is weak"), "\(out.warnings)")
        let proposals = try c.run("/ip ipsec proposal print").text
        XCTAssertEqual(proposals, """
        Flags: X - disabled, * - default
         0 * name=default auth-algorithms=sha1 enc-algorithms=des lifetime=30m
             pfs-group=modp1024


        """)
    }

    // The two manual lines that are wrong get a precise error saying what to type instead.
    func testProposalLineWithoutCommandIsRefusedWithTheFix() {
        var c = Console()
        let e = c.error("""
        [admin@MikroTik] > /ip ipsec proposal auth-algorithms=md5 \\
        \\... enc-algorithms=3des pfs-group=none
        """)
        XCTAssertEqual(e?.message,
                       "expected a command before 'auth-algorithms=': to change the built-in proposal type "
                          + "`/ip ipsec proposal set default auth-algorithms=md5 enc-algorithms=3des pfs-group=none`")
        XCTAssertEqual(e?.position, SourcePosition(line: 1, column: 39))
    }

    func testFirewallNATLinesAreRefusedWithTheFix() {
        for line in ["[admin@Router1] > ip firewall nat add chain=srcnat src-address=10.1.0.0/24 \\\n"
                        + "\\... dst-address=10.2.0.0/24 action=accept",
                     "[admin@Router1] > ip firewall nat add chain=srcnat out-interface=public \\\n"
                        + "\\... action=masquerade",
                     "[admin@Router2] > ip firewall nat chain=srcnat add src-address=10.2.0.0/24 \\\n"
                        + "\\... dst-address=10.1.0.0/24 action=accept",
                     "[admin@Router2] > ip firewall nat chain=srcnat add out-interface=public \\\n"
                        + "\\... action=masquerade"] {
            var c = Console()
            let e = c.error(line)
            XCTAssertTrue(e?.message.hasPrefix("Keyway does not manage the firewall: "
                                                   + "/ip firewall nat is not a Keyway menu.") ?? false,
                          "\(String(describing: e))")
            XCTAssertTrue(e?.message.contains("nft add rule ip nat postrouting") ?? false)
        }
    }
}
