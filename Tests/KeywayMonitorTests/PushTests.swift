import KeywayConfig
import KeywayMonitor
import KeywayVocabulary
import KeywayWire
import XCTest

/// What the monitor tells the others: built from a configuration typed as an operator would.
final class PushTests: XCTestCase {
    func configuration(_ script: String) throws -> Configuration {
        var config = Configuration()
        var session = Session(canModify: true, mayShowSensitive: true)
        var executor = Executor()
        _ = try executor.run(script, on: &config, session: &session)
        return config
    }

    let twoSites = """
    /ip ipsec proposal set default enc-algorithms=aes-128,aes-256 auth-algorithms=sha256
    /ip ipsec manual-sa add name=m1 esp-enc-algorithm=aes-128 esp-auth-algorithm=sha1 esp-spi=0x200/0x201 \\
        esp-enc-key=000102030405060708090a0b0c0d0e0f esp-auth-key=000102030405060708090a0b0c0d0e0f10111213
    /ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes sa-src-address=192.0.2.1 \\
        sa-dst-address=192.0.2.2
    /ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.3.0.0/24 tunnel=yes sa-src-address=192.0.2.1 \\
        sa-dst-address=203.0.113.5 manual-sa=m1 level=use priority=4
    /ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.4.0.0/24 tunnel=yes sa-src-address=192.0.2.1 \\
        sa-dst-address=192.0.2.2 disabled=yes
    /ip ipsec peer add address=192.0.2.2 secret=abc
    /ip ipsec peer add address=198.51.100.0/24 secret=def generate-policy=yes
    /ip ipsec peer add address=203.0.113.9 secret=ghi disabled=yes
    """

    func testBoundsNameActivePoliciesTheirKeyingAndThePeers() throws {
        let bounds = DatapathPush.bounds(try configuration(twoSites))
        XCTAssertEqual(bounds.policies.map(\.policy.selector.destination.description), ["10.2.0.0/24", "10.3.0.0/24"],
                       "the disabled one is left out")
        XCTAssertEqual(bounds.policies[0].manual, false)
        XCTAssertEqual(bounds.policies[0].encryption, [.aes128, .aes256])
        XCTAssertEqual(bounds.policies[0].integrity, [.sha256])
        XCTAssertEqual(bounds.policies[1].manual, true)
        XCTAssertEqual(bounds.policies[1].policy.level, .use)
        XCTAssertEqual(bounds.policies[1].policy.priority, 4)
        XCTAssertEqual(bounds.peers, [AllowedPeer(address: IPv4Prefix(0xc000_0202, length: 32), generatePolicy: false),
                                      AllowedPeer(address: IPv4Prefix(0xc633_6400, length: 24), generatePolicy: true)])
        XCTAssertEqual(bounds.generatedEncryption, [.aes128, .aes256], "generated policies use the default proposal")
    }

    func testBoundsCarryTcpMSSNATTraversalAndAManualSAsAlgorithms() throws {
        let config = try configuration(twoSites + "\n/ip ipsec policy set 0 tcp-mss=1200\n"
                                       + "/ip ipsec policy set 1 tcp-mss=off\n"
                                       + "/ip ipsec peer set 0 nat-traversal=yes")
        let bounds = DatapathPush.bounds(config)
        XCTAssertEqual(bounds.policies.map(\.policy.tcpMSS), [.atMost(1200), .off])
        XCTAssertEqual(bounds.peers.map(\.natTraversal), [true, false])
        XCTAssertEqual(bounds.policies[1].encryption, [.aes128], "manual-sa m1's, for keywayd's TUN MTU")
        XCTAssertEqual(bounds.policies[1].integrity, [.sha1, .sha1], "its ESP and AH algorithms")
        XCTAssertEqual(DatapathPush.bounds(try configuration(twoSites)).policies[0].policy.tcpMSS, .clampToPathMTU)
    }

    func testInstalledSAPrintShowsOverheadAndTheOutboundPathMTU() {
        var live = LiveRuntime()
        func status(_ spi: UInt32, pathMTU: UInt16) -> SAStatus {
            SAStatus(spi: spi, proto: 50, source: 0xc000_0201, destination: 0xc000_0202, encryption: "aes-128",
                     integrity: "sha1", state: "mature", ageSeconds: 1, sinceFirstUse: 0, used: false, bytes: 0,
                     replayWindow: 32, softSeconds: 0, hardSeconds: 0, softBytes: 0, hardBytes: 0, overhead: 66,
                     pathMTU: pathMTU)
        }
        live.state = DatapathState(sas: [status(0x100, pathMTU: 1280), status(0x101, pathMTU: 0)], policies: [],
                                   statistics: [])
        let rows = live.installedSAs(showSensitive: false).map {
            Dictionary($0.fields, uniquingKeysWith: { a, _ in a })
        }
        XCTAssertEqual(rows.map { $0["overhead"] }, ["66", "66"])
        XCTAssertEqual(rows.map { $0["path-mtu"] }, ["1280", nil], "an inbound SA's path is the peer's to know")
    }

    func testDatapathGetsManualSAsBothWaysAndIKEOnlyTheOthers() throws {
        let config = try configuration(twoSites)
        let datapath = DatapathPush.build(config, generation: 7)
        XCTAssertEqual(datapath.sas.map(\.spi), [0x201, 0x200], "outgoing then incoming")
        XCTAssertEqual(datapath.sas.map(\.inbound), [false, true])
        XCTAssertEqual(datapath.sas[0].destination, IPv4Address(0xcb00_7105))
        XCTAssertFalse(datapath.sas.contains(where: \.negotiated))
        let ike = IKEPush.build(config, datapath: datapath, generation: 7,
                                certificates: { name in throw PushTestError.noCertificate(name) })
        XCTAssertEqual(ike.policies.map(\.policy.id), [datapath.bounds.policies[0].policy.id])
        XCTAssertEqual(ike.peers.map(\.address.description), ["192.0.2.2/32", "198.51.100.0/24"])
        XCTAssertEqual(ike.peers[1].generatePolicy, true)
    }

    /// An ike2 peer reaches keyway-ike with its mode, group list, IKE SA cipher and identities; the
    /// monitor's signing gate knows it as an IKEv2 signer.
    func testIKEv2PeersCarryWhatIKEv2Needs() throws {
        let config = try configuration("""
        /ip ipsec policy add src-address=10.1.0.0/24 dst-address=10.2.0.0/24 tunnel=yes sa-src-address=192.0.2.1 \\
            sa-dst-address=192.0.2.2
        /ip ipsec peer add address=192.0.2.2 secret=abc exchange-mode=ike2 enc-algorithm=aes-256-gcm \\
            hash-algorithm=sha384 dh-group=curve25519,ecp384 my-id=fqdn:r1.example remote-id=address:192.0.2.2
        /ip ipsec peer add address=192.0.2.3 auth-method=rsa-signature certificate=c1 remote-certificate=c2 \\
            exchange-mode=ike2
        """)
        let datapath = DatapathPush.build(config, generation: 1)
        let ike = IKEPush.build(config, datapath: datapath, generation: 1, certificates: { _ in [0x30, 0x00] })
        let peer = try XCTUnwrap(ike.peers.first)
        XCTAssertEqual(peer.exchangeMode, .ike2)
        XCTAssertEqual(peer.encryption, .aes256gcm); XCTAssertEqual(peer.hash, .sha384)
        XCTAssertEqual(peer.dhGroups, [.curve25519, .ecp384])
        XCTAssertEqual(peer.myID, "fqdn:r1.example"); XCTAssertEqual(peer.remoteID, "address:192.0.2.2")
        XCTAssertEqual(ike.peers.last?.myID, "auto")
        XCTAssertEqual(SignGate.signers(config).map(\.ikeVersion), [2])
    }

    func testARestartedDatapathContinuesBeyondTheSequenceNumbersSent() throws {
        let datapath = DatapathPush.build(try configuration(twoSites), generation: 1)
        var memory = SequenceMemory()
        var status = SAStatus(spi: 0x201, proto: 50, source: 0xc000_0201, destination: 0xcb00_7105,
                              encryption: "aes-128", integrity: "sha1",
                              state: "mature", ageSeconds: 1, sinceFirstUse: 1, used: true, bytes: 1, replayWindow: 32,
                              softSeconds: 0, hardSeconds: 0, softBytes: 0, hardBytes: 0)
        status.sequence = 1000
        memory.record(DatapathState(sas: [status], policies: [], statistics: []))
        let continued = memory.continuing(datapath)
        XCTAssertEqual(continued.sas[0].initialSequence, 1000 + SequenceMemory.margin)
        XCTAssertEqual(continued.sas[1].initialSequence, 0, "inbound SAs keep no sequence")
        status.sequence = .max - 1
        memory.record(DatapathState(sas: [status], policies: [], statistics: []))
        XCTAssertEqual(memory.continuing(datapath).sas[0].initialSequence, .max, "saturates instead of wrapping")
    }
}

enum PushTestError: Error { case noCertificate(String) }
