import KeywayConfig
import KeywayVocabulary
import XCTest

/// Settings an operator is kept from (each with an error that says why), and how a store written
/// before those rules still loads: clamped or marked unusable, never refused.
final class SafetyRulesTests: XCTestCase {
    static let emptySecretError = "a pre-shared-key peer needs a secret: an empty one is no authentication "
        + "(set secret=, or use auth-method=rsa-signature)"

    // MARK: - pre-shared keys

    func testAPreSharedKeyPeerWithoutASecretIsRefused() throws {
        var c = Console()
        for text in ["/ip ipsec peer add address=192.0.2.1", "/ip ipsec peer add address=192.0.2.1 secret=\"\"",
                     "/ip ipsec peer add address=192.0.2.1 auth-method=pre-shared-key secret=;"] {
            let e = c.error(text)
            XCTAssertEqual(e?.message, Self.emptySecretError, text)
            XCTAssertEqual(e?.position, SourcePosition(line: 1, column: 16), text)
        }
        XCTAssertEqual(c.config.peers.count, 0)
        try c.run("/ip ipsec peer add address=192.0.2.1 secret=s3cret")
        XCTAssertEqual(c.error("/ip ipsec peer set 0 secret=\"\"")?.message, Self.emptySecretError)
        XCTAssertEqual(c.config.peers[0].values["secret"], .text("s3cret"), "a refused set changes nothing")
        // A certificate peer needs no secret.
        try c.run("/ip ipsec peer add address=192.0.2.2 auth-method=rsa-signature certificate=a remote-certificate=b")
        XCTAssertNil(c.config.peerUnusableReason(c.config.peers[1]))
        XCTAssertNil(c.config.peerUnusableReason(c.config.peers[0]))
    }

    func testAggressiveModeWithAPreSharedKeyIsAcceptedWithAWarning() throws {
        var c = Console()
        let warning = "peer 192.0.2.1/32:500: exchange-mode=aggressive with a pre-shared key sends a hash "
            + "of the secret that anyone who sees it can crack offline: use main mode, or a long random secret"
        let added = try c.run("/ip ipsec peer add address=192.0.2.1 secret=x dh-group=modp2048 hash-algorithm=sha256 "
                              + "enc-algorithm=aes-128 exchange-mode=aggressive")
        XCTAssertEqual(added.warnings, [warning])
        XCTAssertEqual(c.config.peers.count, 1)
        XCTAssertEqual(try c.run("/ip ipsec peer set 0 exchange-mode=main").warnings, [])
        XCTAssertEqual(try c.run("/ip ipsec peer set 0 exchange-mode=aggr").warnings, [warning])
    }

    // MARK: - counter-mode ciphers with manual keys

    func testManualSAsRefuseEveryCounterModeCipher() throws {
        var c = Console()
        let counterMode = EncryptionAlgorithm.allCases.filter(\.isCounterMode)
        XCTAssertEqual(Set(counterMode.map(\.rawValue)),
                       ["aes-128-ctr", "aes-192-ctr", "aes-256-ctr", "aes-128-gcm", "aes-256-gcm"])
        for algorithm in counterMode {
            let key = String(repeating: "ab", count: algorithm.keyMaterialLength)
            let e = c.error("/ip ipsec manual-sa add name=m esp-spi=0x200 "
                            + "esp-enc-algorithm=\(algorithm.rawValue) esp-enc-key=\(key)")
            XCTAssertTrue(e?.message.hasPrefix("esp-enc-algorithm=\(algorithm.rawValue) is a counter-mode cipher, "
                                               + "which manual keys cannot use") ?? false,
                          "\(algorithm): \(String(describing: e))")
            XCTAssertTrue(e?.message.contains("RFC 8221") ?? false)
        }
        XCTAssertEqual(c.config.manualSAs.count, 0)
        try c.run("/ip ipsec manual-sa add name=m esp-spi=0x200 esp-enc-algorithm=aes-256 "
                  + "esp-enc-key=\(String(repeating: "ab", count: 32))")
        XCTAssertNotNil(c.error("/ip ipsec manual-sa set m esp-enc-algorithm=aes-256-gcm "
                                + "esp-enc-key=\(String(repeating: "ab", count: 36))"))
        XCTAssertEqual(c.config.manualSAs[0].values["esp-enc-algorithm"], .choice("aes-256"))
        // Proposals (keyed by IKE, a fresh key per SA) keep them.
        try c.run("/ip ipsec proposal add name=gcm enc-algorithms=aes-128-gcm,aes-256-ctr auth-algorithms=sha1")
    }

    // MARK: - bounds

    func testLifetimesAreBoundedAtAWeek() throws {
        var c = Console()
        try c.run("/ip ipsec peer add address=192.0.2.1 secret=x lifetime=1w")
        try c.run("/ip ipsec proposal set default lifetime=604800")
        try c.run("/ip ipsec manual-sa add name=m ah-spi=0x100 ah-key=abcdef lifetime=7d")
        for (menu, item) in [("peer", "0"), ("proposal", "default"), ("manual-sa", "m")] {
            let e = c.error("/ip ipsec \(menu) set \(item) lifetime=1w1s")
            XCTAssertEqual(e?.message, "invalid value '1w1s' for lifetime: expected 0s or a time from 1s to 1w", menu)
            XCTAssertNotNil(c.error("/ip ipsec \(menu) set \(item) lifetime=99999999999w"), menu)
        }
        try c.run("/ip ipsec manual-sa set m lifetime=0s")
        XCTAssertEqual(Seconds.maximumLifetime.value, 604_800)
    }

    func testDPDIntervalIsOffOrBetweenTwoSecondsAndAnHour() throws {
        var c = Console()
        try c.run("/ip ipsec peer add address=192.0.2.1 secret=x dpd-interval=0s")
        for ok in ["2s", "2m", "1h"] { try c.run("/ip ipsec peer set 0 dpd-interval=\(ok)") }
        for bad in ["1s", "1h1s", "1w"] {
            XCTAssertEqual(c.error("/ip ipsec peer set 0 dpd-interval=\(bad)")?.message,
                           "invalid value '\(bad)' for dpd-interval: expected 0s or a time from 2s to 1h", bad)
        }
    }

    func testLifebytesIsBoundedSoThatNoArithmeticOverflows() throws {
        var c = Console()
        let maximum = Schema.maximumLifebytes
        try c.run("/ip ipsec peer add address=192.0.2.1 secret=x lifebytes=\(maximum)")
        XCTAssertEqual(c.error("/ip ipsec peer set 0 lifebytes=\(maximum + 1)")?.message,
                       "invalid value '\(maximum + 1)' for lifebytes: expected a whole number from 0 to \(maximum)")
        XCTAssertNotNil(c.error("/ip ipsec peer set 0 lifebytes=\(Int64.max)"))
        // What later code does with it: kilobytes for IKE, 80% soft limits, counters beyond it.
        let bytes = UInt64(maximum)
        XCTAssertFalse(bytes.multipliedReportingOverflow(by: 1024).overflow)
        XCTAssertFalse(bytes.multipliedReportingOverflow(by: 8).overflow)
        XCTAssertFalse(bytes.addingReportingOverflow(UInt64(UInt32.max) * 1024).overflow)
        XCTAssertEqual(bytes.eightyPercent, bytes / 10 * 8 + bytes % 10 * 8 / 10)
        XCTAssertLessThanOrEqual(Seconds.maximumLifetime.milliseconds, UInt64(Int64.max))
    }

    // MARK: - a store written before these rules

    // A backslash at a line's end joins it to the next in Swift, not in the store: the store's
    // lines and columns stay those the repairs below name.
    static let oldStore = """
    /ip ipsec proposal
    set [ find default=yes ] lifetime=2w
    /ip ipsec manual-sa
    add name=gcm ah-key="abcdef" ah-spi=0x400/0x401 esp-enc-algorithm=aes-128-gcm \
    esp-enc-key="feffe9928665731c6d6a8f9467308308cafebabe" esp-spi=0x200/0x201 lifetime=30d
    add name=cbc esp-enc-algorithm=aes-128 esp-enc-key="0123456789abcdef0123456789abcdef" esp-spi=0x300/0x301
    /ip ipsec peer
    add address=192.0.2.1/32:500 dpd-interval=1s lifebytes=9223372036854775807
    add address=192.0.2.2/32:500 secret="fine" dpd-interval=2h
    /ip ipsec policy
    add src-address=10.1.0.0/24:any dst-address=10.2.0.0/24:any tunnel=yes sa-src-address=192.0.2.9 \
    sa-dst-address=192.0.2.1 manual-sa=gcm
    add src-address=10.3.0.0/24:any dst-address=10.4.0.0/24:any tunnel=yes sa-src-address=192.0.2.9 \
    sa-dst-address=192.0.2.1 manual-sa=cbc
    add src-address=10.5.0.0/24:any dst-address=10.6.0.0/24:any tunnel=yes sa-src-address=192.0.2.9 \
    sa-dst-address=192.0.2.1 manual-sa=gcm ipsec-protocols=ah
    """

    private func loadOldStore() throws -> (Configuration, CommandOutput) {
        var config = Configuration()
        var session = Session(canModify: true, mayShowSensitive: true)
        var executor = Executor()
        executor.source = .store
        let out = try executor.run(Self.oldStore, on: &config, session: &session)
        return (config, out)
    }

    func testAnOperatorScriptWithTheOldValuesIsRefused() {
        var c = Console()
        XCTAssertNotNil(c.error(Self.oldStore))
        XCTAssertEqual(c.config, Configuration())
    }

    func testAnOldStoreLoadsWithEachOffendingItemClampedOrMarked() throws {
        let (config, out) = try loadOldStore()
        XCTAssertEqual(config.proposals[0].values["lifetime"], .duration(604_800))
        XCTAssertEqual(config.manualSAs[0].values["lifetime"], .duration(604_800))
        XCTAssertEqual(config.peers[0].values["dpd-interval"], .duration(2))
        XCTAssertEqual(config.peers[0].values["lifebytes"], .integer(Schema.maximumLifebytes))
        XCTAssertEqual(config.peers[1].values["dpd-interval"], .duration(3_600))
        // Each repair is said, with where it was.
        XCTAssertEqual(out.repairs.count, 7, "\(out.repairs)")
        XCTAssertTrue(out.repairs.contains("line 2, column 26: /ip ipsec proposal lifetime=2w is out of range "
                                           + "(expected 0s or a time from 1s to 1w); clamped to 1w"), "\(out.repairs)")
        XCTAssertTrue(out.repairs.contains {
            $0.hasPrefix("line 4, column 1: manual-sa gcm: esp-enc-algorithm=aes-128-gcm is a counter-mode cipher")
                && $0.hasSuffix("the policies that use it are inactive until it changes")
        }, "\(out.repairs)")
        XCTAssertTrue(out.repairs.contains("line 7, column 1: peer 192.0.2.1/32:500: "
                                           + "auth-method=pre-shared-key with an empty secret: set secret= "
                                           + "(a long random one); it is left out of IKE until then"),
                      "\(out.repairs)")
        XCTAssertTrue(out.repairs.contains {
            $0.contains("dpd-interval=1s is out of range") && $0.hasSuffix("clamped to 2s")
        })
        XCTAssertTrue(out.repairs.contains { $0.contains("lifebytes=9223372036854775807 is out of range") })
        XCTAssertFalse(out.repairs.joined().contains("feffe99"), "no key in a repair line")
    }

    func testAnOldCounterModeManualSAMakesThePoliciesUsingItForESPInactive() throws {
        var (config, _) = try loadOldStore()
        let reasons = config.policies.map { config.inactiveReason($0) }
        XCTAssertTrue(reasons[0]?.hasPrefix("manual-sa gcm: esp-enc-algorithm=aes-128-gcm "
                                            + "is a counter-mode cipher") ?? false, "\(reasons)")
        XCTAssertNil(reasons[1])
        XCTAssertNil(reasons[2], "an AH-only policy never uses the cipher")
        var c = Console(config: config)
        let detail = try c.run("/ip ipsec policy print detail where inactive").text
        XCTAssertTrue(detail.contains("inactive-reason=\"manual-sa gcm: esp-enc-algorithm=aes-128-gcm "
                                      + "is a counter-mode cipher"), detail)
        XCTAssertTrue(detail.contains(" 0  I ") || detail.contains(" 0 I "), detail)
        // Changing the cipher makes it usable again; the refusal names why until then.
        XCTAssertNotNil(c.error("/ip ipsec manual-sa set gcm lifetime=1h"))
        try c.run("/ip ipsec manual-sa set gcm esp-enc-algorithm=aes-128 esp-enc-key=0123456789abcdef0123456789abcdef")
        config = c.config
        XCTAssertNil(config.inactiveReason(config.policies[0]))
    }

    func testAnOldEmptySecretPeerIsMarkedUnusable() throws {
        let (config, _) = try loadOldStore()
        XCTAssertEqual(config.peerUnusableReason(config.peers[0]),
                       "auth-method=pre-shared-key with an empty secret: set secret= (a long random one)")
        XCTAssertNil(config.peerUnusableReason(config.peers[1]))
        var c = Console(config: config)
        let plain = try c.run("/ip ipsec peer print").text
        XCTAssertTrue(plain.hasPrefix("Flags: X - disabled, I - inactive\n 0 I "), plain)
        XCTAssertTrue(try c.run("/ip ipsec peer print detail").text.contains(
            "inactive-reason=\"auth-method=pre-shared-key with an empty secret"))
        XCTAssertEqual(try c.run("/ip ipsec peer print count-only where inactive").text, "1\n")
        XCTAssertEqual(try c.run("/ip ipsec peer print count-only where !inactive").text, "1\n")
        // Any set must give it a secret; with one it is usable.
        try c.run("/ip ipsec peer print")
        XCTAssertEqual(c.error("/ip ipsec peer set 0 nat-traversal=yes")?.message, Self.emptySecretError)
        try c.run("/ip ipsec peer set 0 secret=now-set")
        XCTAssertNil(c.config.peerUnusableReason(c.config.peers[0]))
        XCTAssertTrue(try c.run("/ip ipsec peer print").text.hasPrefix("Flags: X - disabled\n"))
    }

    func testALoadedOldStoreExportsToAStoreThatLoadsTheSame() throws {
        let (config, _) = try loadOldStore()
        let script = Exporter.export(config, showSensitive: true)
        var again = Configuration()
        var session = Session(canModify: true, mayShowSensitive: true)
        var executor = Executor()
        executor.source = .store
        let out = try executor.run(script, on: &again, session: &session)
        XCTAssertEqual(again, config)
        XCTAssertEqual(out.repairs.count, 2, "only the two items that stay unusable: \(out.repairs)")
    }

    func testTheStoreModeStillRefusesWhatIsNotAnOldValue() {
        var config = Configuration()
        var session = Session(canModify: true, mayShowSensitive: true)
        var executor = Executor()
        executor.source = .store
        XCTAssertThrowsError(try executor.run("/ip ipsec peer add address=banana secret=x", on: &config,
                                              session: &session))
        XCTAssertThrowsError(try executor.run("/ip ipsec proposal set default lifetime=5x", on: &config,
                                              session: &session))
        XCTAssertEqual(config, Configuration())
    }
}
