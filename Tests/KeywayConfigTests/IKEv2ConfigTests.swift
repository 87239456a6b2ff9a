import KeywayConfig
import XCTest

/// `exchange-mode=ike2` and what comes with it: my-id/remote-id, AES-GCM and curve25519 for the
/// IKE SA, dh-group lists; each prints, exports and round-trips, and the IKEv1-only limits hold.
final class IKEv2ConfigTests: XCTestCase {
    let peer = #"/ip ipsec peer add address=192.0.2.2/32 exchange-mode=ike2 secret="a long secret" "#
        + "enc-algorithm=aes-256-gcm hash-algorithm=sha384 dh-group=curve25519,ecp384 "
        + "my-id=fqdn:router1.example remote-id=key-id:router2"

    func testIKEv2PeerPrintsExportsAndRoundTrips() throws {
        var c = Console()
        try c.run(peer)
        let item = try XCTUnwrap(c.config.peers.first)
        XCTAssertEqual(item.values["exchange-mode"], .choice("ike2"))
        XCTAssertEqual(item.values["dh-group"], .choices(["curve25519", "ecp384"]))
        XCTAssertEqual(item.values["my-id"], .text("fqdn:router1.example"))
        let detail = try c.run("/ip ipsec peer print detail").text
        for expected in ["exchange-mode=ike2", "enc-algorithm=aes-256-gcm", "dh-group=curve25519,ecp384",
                         "my-id=fqdn:router1.example", "remote-id=key-id:router2",
                         "proposal-check does not apply to ike2"] {
            XCTAssertTrue(detail.replacingOccurrences(of: "\n     ", with: " ").contains(expected),
                          "\(expected) in\n\(detail)")
        }
        let script = try c.run("/export show-sensitive").text
        XCTAssertTrue(script.contains("my-id=fqdn:router1.example"), script)
        var fresh = Console()
        try fresh.run(script)
        XCTAssertEqual(fresh.config.peers.map(\.values), c.config.peers.map(\.values))
        XCTAssertEqual(try fresh.run("/export show-sensitive").text, script)
        // Plain print shows what was set; identities left at auto stay out of it.
        XCTAssertTrue(try c.run("/ip ipsec peer print").text.contains("exchange-mode=ike2"))
        var auto = Console()
        XCTAssertFalse(try auto.run("/ip ipsec peer add address=192.0.2.4 secret=x exchange-mode=ike2; "
                                    + "/ip ipsec peer print").text.contains("my-id"))
        var v1 = Console()
        XCTAssertFalse(try v1.run("/ip ipsec peer add address=192.0.2.3 secret=x; /ip ipsec peer print detail")
            .text.contains("proposal-check does not apply"), "the note is for ike2 peers only")
    }

    func testIdentitiesAreParsedAndNormalised() throws {
        var c = Console()
        for (text, stored) in [("auto", "auto"), ("address:192.0.2.1", "address:192.0.2.1"),
                               ("user-fqdn:ops@example.net", "user-fqdn:ops@example.net"),
                               ("key-id:0x0102ff", "key-id:0x0102ff"), ("key-id:abc", "key-id:abc")] {
            try c.run("/ip ipsec peer add address=192.0.2.9 secret=x exchange-mode=ike2 my-id=\(text)")
            XCTAssertEqual(c.config.peers.last?.value("my-id", in: Schema.peer), .text(stored), text)
        }
        for bad in ["fqdn:", "address:300.1.1.1", "dn:CN=x", "user-fqdn:nobody", "fqdn:a b", "key-id:0xzz", "magic"] {
            let error = c.error("/ip ipsec peer add address=192.0.2.9 secret=x remote-id=\"\(bad)\"")
            XCTAssertTrue(error?.message.contains("expected auto, address:IP, fqdn:NAME") ?? false, bad)
        }
    }

    func testAESGCMAndCurve25519AreForIKEv2Only() throws {
        var c = Console()
        let gcm = c.error("/ip ipsec peer add address=192.0.2.2 secret=x enc-algorithm=aes-128-gcm")
        XCTAssertTrue(gcm?.message.contains("enc-algorithm=aes-128-gcm needs exchange-mode=ike2") ?? false,
                      gcm?.message ?? "")
        let x25519 = c.error("/ip ipsec peer add address=192.0.2.2 secret=x exchange-mode=aggressive "
                                + "dh-group=curve25519")
        XCTAssertTrue(x25519?.message.contains("dh-group=curve25519 needs exchange-mode=ike2") ?? false)
        try c.run(peer)
        // Leaving ike2 with them configured is refused, and the peer is unchanged.
        XCTAssertNotNil(c.error("/ip ipsec peer set 0 exchange-mode=main"))
        XCTAssertEqual(c.config.peers.first?.values["exchange-mode"], .choice("ike2"))
    }

    func testIKEv1ProposesTheFirstGroupOfAListAndSaysSo() throws {
        var c = Console()
        let out = try c.run("/ip ipsec peer add address=192.0.2.2 secret=x dh-group=modp2048,ecp256")
        XCTAssertTrue(out.warnings.contains { $0.contains("proposes only the first dh-group (modp2048)") },
                      "\(out.warnings)")
        XCTAssertTrue(try c.run("/ip ipsec peer print").text.contains("dh-group=modp2048,ecp256"))
    }

    func testEC2NOverIKEv2IsAcceptedWithAWarning() throws {
        var c = Console()
        let out = try c.run("/ip ipsec peer add address=192.0.2.2 secret=x exchange-mode=ike2 dh-group=ec2n185")
        XCTAssertTrue(out.warnings.contains { $0.contains("dh-group=ec2n185 has no IKEv2 number") }, "\(out.warnings)")
    }

    func testTheManualsPeerLinesStillParseWithTheirSingleGroup() throws {
        var c = Console()
        try c.run("/ip ipsec peer add address=10.0.0.147/32 secret=gwejimezyfopmekun generate-policy=no "
                  + "exchange-mode=main send-initial-contact=yes proposal-check=obey hash-algorithm=md5 "
                  + "enc-algorithm=3des dh-group=modp1024 lifetime=1d")
        XCTAssertEqual(c.config.peers.first?.value("dh-group", in: Schema.peer), .choices(["modp1024"]))
        XCTAssertTrue(try c.run("/ip ipsec peer print").text.contains("dh-group=modp1024"))
    }
}
