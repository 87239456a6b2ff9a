import KeywayVocabulary
import XCTest
@testable import KeywayWire

/// One sample of every message type; `testEveryTypeHasASample` keeps this list complete.
let samples: [Message] = [
    .hello(Hello(role: .ike, pid: 4242, startedAt: 123_456_789, sandboxed: true)),
    .fdGrant(FdGrant(kind: .udp4500)),
    .enterSandbox(EnterSandbox(uid: 999, gid: 995, root: "/var/lib/keyway")),
    .peerRestarted(PeerRestarted(role: .datapath, pid: 77, restarts: 3)),
    .shutdown(Shutdown()),
    .reloadConfig(ReloadConfig()),
    .ping(Ping(nonce: 0x0102030405060708)),
    .pong(Pong(nonce: .max)),
    .statusRequest(StatusRequest()),
    .statusReply(StatusReply(processes: [
        ProcessStatus(role: .parent, pid: 1, uptimeMilliseconds: 10, restarts: 0, sandboxed: false, connected: true),
        ProcessStatus(role: .monitor, pid: 2, uptimeMilliseconds: 20, restarts: 5, sandboxed: true, connected: false),
    ])),
    .counterRequest(CounterRequest()),
    .counterReply(CounterReply(role: .monitor,
                               counters: [Counter(name: "wire-accepted", value: 9),
                                          Counter(name: "ü-ünïcode", value: 0)])),
    .errorReply(ErrorReply(reason: "no such item")),
    .consoleCommand(ConsoleCommand(text: "/ip ipsec policy print", json: true)),
    .consoleReply(ConsoleReply(ok: false, output: "line 1, column 3: ...", warnings: ["dh-group=modp768 is weak"],
                               promptPath: "ip ipsec")),
    .accessPolicy(AccessPolicy(adminGIDs: [995], readGIDs: [996])),
    .datapathConfig(DatapathConfig(generation: 3, bounds: sampleBounds, sas: [
        SARecord(policyID: 2, inbound: false, proto: .esp, spi: 0x100, source: a(0xc0000201),
                 destination: a(0xc0000202), tunnel: true, encryption: .aes128, integrity: .sha1,
                 encryptionKey: Array(0..<16), integrityKey: Array(0..<20), lifetimeSeconds: 0),
    ])),
    .generatedPolicySet(GeneratedPolicySet(policies: [samplePolicy(id: 0x4000_0000, tunnel: false)])),
    .datapathState(DatapathState(sas: [SAStatus(spi: 0x200, proto: 50, source: 1, destination: 2, encryption: "aes-128",
                                                integrity: "sha1", state: "mature", ageSeconds: 12, sinceFirstUse: 3,
                                                used: true, bytes: 4096, replayWindow: 32,
                                                softSeconds: 1440, hardSeconds: 1800, softBytes: 0, hardBytes: 0,
                                                overhead: 62, pathMTU: 1280)],
                                 policies: [PolicyStatus(id: 3, inAccepted: 0, inDropped: 1, inTransformed: 2,
                                                         outAccepted: 3, outDropped: 4, outTransformed: 5,
                                                         established: true)],
                                 statistics: [Counter(name: "in-no-states", value: 7)], refusedFromIKE: 2)),
    .flushSAs(FlushSAs(proto: 51)),
    .policyAuthority(PolicyAuthority(generation: 5, bounds: sampleBounds)),
    .ikeConfig(IKEConfig(generation: 4, peers: [
        IKEPeerRecord(address: IPv4Prefix(0xc0000202, length: 32), port: 500, secret: Array("secret".utf8),
                      exchangeMode: .aggressive, natTraversal: true, generatePolicy: false, sendInitialContact: true,
                      proposalCheck: .claim, hash: .sha1, encryption: .aes128, dhGroup: .modp2048, lifetime: 86_400,
                      lifebytes: 0),
        {
            var p = IKEPeerRecord(address: IPv4Prefix(0xc0000203, length: 32), port: 500, secret: Array("s2".utf8),
                                  exchangeMode: .ike2, natTraversal: true, generatePolicy: true,
                                  sendInitialContact: false,
                                  proposalCheck: .strict, hash: .sha384, encryption: .aes256gcm, dhGroup: .curve25519,
                                  lifetime: 3_600, lifebytes: 0)
            p.dhGroups = [.curve25519, .ecp384, .modp2048]
            p.myID = "fqdn:router1.example"; p.remoteID = "key-id:0x0102ff"
            return p
        }(),
    ], policies: [
        IKEPolicyRecord(policy: samplePolicy(id: 2, tunnel: true), authAlgorithms: [.sha1, .md5],
                        encAlgorithms: [.aes128], lifetime: 1_800, pfsGroup: .modp1024),
    ], defaultProposal: IKEPolicyRecord(policy: samplePolicy(id: 0, tunnel: false), authAlgorithms: [.sha1],
                                        encAlgorithms: [.tripleDES], lifetime: 1_800, pfsGroup: nil))),
    .saInstall(SAInstall(sas: [{
        var r = SARecord(policyID: 2, inbound: true, proto: .esp, spi: 0xabcdef01, source: a(0xc0000202),
                         destination: a(0xc0000201), tunnel: true, encryption: .aes128gcm, integrity: .null,
                         encryptionKey: Array(0..<20), integrityKey: [], lifetimeSeconds: 1_800)
        r.udpLocalPort = 4500; r.udpRemotePort = 4500; r.negotiated = true; r.pfs = true
        return r
    }()], generatedPolicies: [samplePolicy(id: 0x4000_0000, tunnel: false)])),
    .saRemove(SARemove(entries: [.init(spi: 0xabcdef01, proto: .esp, destination: a(0xc0000201))])),
    .acquire(Acquire(policyID: 7)),
    .ikeDatagram(IKEDatagram(source: a(0xc0000202), sourcePort: 4500, destination: a(0xc0000201),
                             payload: [0, 0, 0, 0, 1, 2, 3])),
    .ikeState(IKEState(peers: [IKEState.Peer(local: 1, remote: 2, remotePort: 4500, state: "established",
                                             side: "responder", establishedSeconds: 42, natTraversal: true),
                               IKEState.Peer(local: 1, remote: 3, remotePort: 500, state: "established",
                                             side: "initiator", establishedSeconds: 7, natTraversal: false,
                                             version: 2)],
                       establishedPolicies: [2, 3],
                       generatedPolicies: [samplePolicy(id: 0x4000_0001, tunnel: false)])),
    .signAnnounce(SignAnnounce(exchange: sampleExchange, certificate: "router1")),
    .signRequest(SignRequest(id: 9, exchange: sampleExchange, certificate: "router1", data: Array(0..<20))),
    .signReply(SignReply(id: 9, signature: Array(repeating: 0xab, count: 256))),
    .hostAddresses(HostAddresses(addresses: [.v4(a(0xc0000201)), .v4(a(0x7f000001))])),
    .refusalReport(RefusalReport(refused: [.datapath: 3, .ike: 1])),
    .auditEvent(AuditEvent(severity: 4, msgID: "refused", text: "phase 1 refused: ü",
                           parameters: [AuditParameter("peer", "192.0.2.2"), AuditParameter("reason", "a\"b")])),
    .auditRecords(AuditRecords(records: [AuditRecord(sequence: 7, epochMicroseconds: 1_764_374_400_123_456, role: .ike,
                                                     pid: 4242, event: AuditEvent(severity: 6, msgID: "start",
                                                                                  text: "sandboxed",
                                                                                  parameters: []))])),
    .consoleOutput(ConsoleOutput(text: " 0 dec/01/2026 08:48:01 system,info keywayd: started\n", following: true)),
    .outerPaths(OuterPaths(defaultMTU: 1500, paths: [OuterPath(destination: .v4(a(0xc0000202)), mtu: 1280)],
                           tunMTU: 1214)),
    .ikev2SignRequest(IKEv2SignRequest(id: 10, exchange: sampleIKEv2Exchange, certificate: "router1", method: 14,
                                       peerHashes: [.sha256, .sha512], message: Array(0..<200), nonce: Array(0..<32),
                                       macedID: Array(0..<32))),
    .ikev2SignReply(IKEv2SignReply(id: 10, scheme: .rsaPSSSHA256, signature: Array(repeating: 0xcd, count: 256))),
    // The last page of a two-page DatapathState (Paging.swift): what is left after one full page.
    .page(Page(stream: 7, pagedType: .datapathState, index: 1, count: 2, totalLength: UInt32(Page.chunkCapacity + 100),
               chunk: Array(repeating: 0x5a, count: 100))),
]

let sampleIKEv2Exchange = SigningExchange(initiatorSPI: Array(1...8), responderSPI: Array(9...16), peer: a(0xc0000203),
                                          prf: .sha256, initiator: true)

func a(_ v: UInt32) -> IPv4Address { IPv4Address(v) }

let sampleExchange = SigningExchange(initiatorCookie: Array(1...8), peer: a(0xc0000202), prf: .sha256, initiator: false)

func samplePolicy(id: UInt32, tunnel: Bool) -> PolicyRecord {
    PolicyRecord(id: id, selector: TrafficSelector(source: IPv4Prefix(0x0a010000, length: 24),
                                                   destination: IPv4Prefix(0x0a020000, length: 24),
                                                   destinationPort: 80, proto: 6),
                 action: .encrypt, level: .unique, esp: true, ah: false, tunnel: tunnel,
                 saSource: a(0xc0000201), saDestination: a(0xc0000202), priority: -5, dontFragment: .inherit,
                 tcpMSS: id == 2 ? .atMost(1200) : id == 3 ? .off : .clampToPathMTU)
}

let sampleBounds = ConfigurationBounds(
    policies: [AllowedPolicy(policy: samplePolicy(id: 2, tunnel: true), manual: false,
                             encryption: [.aes128, .aes256gcm], integrity: [.sha256]),
               AllowedPolicy(policy: samplePolicy(id: 3, tunnel: false), manual: true, encryption: [], integrity: [])],
    peers: [AllowedPeer(address: IPv4Prefix(0xc0000200, length: 24), generatePolicy: true, natTraversal: true)],
    generatedEncryption: [.tripleDES], generatedIntegrity: [.sha1])

final class RoundTripTests: XCTestCase {
    func testEveryTypeHasASample() {
        XCTAssertEqual(Set(samples.map(\.type)), Set(MessageType.allCases))
    }

    func testEveryMessageRoundTrips() throws {
        for (i, message) in samples.enumerated() {
            let bytes = Frame.encode(message, requestID: UInt32(i))
            let decoded = try Frame.decode(bytes)
            XCTAssertEqual(decoded.message, message, "\(message.type)")
            XCTAssertEqual(decoded.requestID, UInt32(i))
        }
    }

    func testHeaderIsBigEndianAndDeclaresBodyLength() {
        let bytes = Frame.encode(.ping(Ping(nonce: 1)), requestID: 0x0a0b0c0d)
        XCTAssertEqual(Array(bytes.prefix(12)), [0, 2, 0, 7, 0, 0, 0, 8, 0x0a, 0x0b, 0x0c, 0x0d])
        XCTAssertEqual(bytes.count, 20)
    }

    func testEveryRoleAndDescriptorKindRoundTrips() throws {
        for role in Role.allCases {
            let m = Message.hello(Hello(role: role, pid: 1, startedAt: 2, sandboxed: false))
            XCTAssertEqual(try Frame.decode(Frame.encode(m)).message, m)
        }
        for kind in DescriptorKind.allCases {
            let m = Message.fdGrant(FdGrant(kind: kind))
            XCTAssertEqual(try Frame.decode(Frame.encode(m)).message, m)
        }
    }

    /// Every page through a channel and an assembler, as Link does; the whole message out.
    func carry(_ message: Message, from sender: Role = .monitor, to receiver: Role = .datapath,
               requestID: UInt32 = 0) throws -> (pages: Int, envelope: Envelope?) {
        let frames = Paging.frames(message, requestID: requestID, stream: 42)
        var assembler = PageAssembler()
        var whole: Envelope?
        for (i, frame) in frames.enumerated() {
            XCTAssertLessThanOrEqual(frame.count, FrameHeader.size + FrameHeader.maximumBody,
                                     "every page fits a datagram")
            let envelope = try Frame.decode(frame, from: sender, to: receiver)
            guard case .page(let page) = envelope.message else { return (1, envelope) }
            let out = try assembler.accept(page, requestID: envelope.requestID)
            XCTAssertEqual(out == nil, i + 1 < frames.count, "whole only after the last page")
            whole = out
        }
        return (frames.count, whole)
    }

    /// The goal's scale (issue 11): 100,000 policies and 20,000 manual SAs in one configuration push,
    /// and every other message that grows with the configuration, beyond one datagram and back whole.
    func testConfigurationsAndReportsAtScaleTravelInPagesAndComeBackWhole() throws {
        let policies: [AllowedPolicy] = (0..<100_000).map(scalePolicy)
        let peers: [AllowedPeer] = (0..<500).map {
            AllowedPeer(address: IPv4Prefix(0xc612_0000 + UInt32($0), length: 32), generatePolicy: false)
        }
        let bounds = ConfigurationBounds(policies: policies, peers: peers)
        let sas: [SARecord] = (0..<20_000).map(scaleSA)
        let config = Message.datapathConfig(DatapathConfig(generation: 9, bounds: bounds, sas: sas))
        let carried = try carry(config)
        XCTAssertGreaterThan(carried.pages, 50)
        XCTAssertEqual(carried.envelope?.message, config)
        let authority = Message.policyAuthority(PolicyAuthority(generation: 9, bounds: bounds))
        XCTAssertEqual(try carry(authority, to: .parent).envelope?.message, authority)

        let ike = Message.ikeConfig(IKEConfig(generation: 9, peers: [], policies: policies.map {
            IKEPolicyRecord(policy: $0.policy, authAlgorithms: [.sha1], encAlgorithms: [.aes128], lifetime: 1_800,
                            pfsGroup: nil)
        }, defaultProposal: IKEPolicyRecord(policy: samplePolicy(id: 0, tunnel: false), authAlgorithms: [.sha1],
                                            encAlgorithms: [.tripleDES], lifetime: 1_800, pfsGroup: nil)))
        XCTAssertEqual(try carry(ike, to: .ike).envelope?.message, ike)

        let state = Message.datapathState(DatapathState(sas: (0..<20_000).map {
            SAStatus(spi: UInt32($0), proto: 50, source: 1, destination: 2, encryption: "aes-128", integrity: "sha1",
                     state: "mature", ageSeconds: 1, sinceFirstUse: 0, used: false, bytes: 0, replayWindow: 32,
                     softSeconds: 0, hardSeconds: 0, softBytes: 0, hardBytes: 0)
        }, policies: (0..<100_000).map {
            PolicyStatus(id: UInt32($0 + 1), inAccepted: 0, inDropped: 0, inTransformed: 1, outAccepted: 0,
                         outDropped: 0, outTransformed: 2, established: true)
        }, statistics: []))
        XCTAssertEqual(try carry(state, from: .datapath, to: .monitor).envelope?.message, state)
        let ikeState = Message.ikeState(IKEState(peers: [], establishedPolicies: (1...100_000).map { UInt32($0) }))
        XCTAssertEqual(try carry(ikeState, from: .ike, to: .monitor).envelope?.message, ikeState)

        // The console: a script of 100,000 lines in, a printout of them out, with their request id.
        let script = Message.consoleCommand(ConsoleCommand(text: String(repeating: "/ip ipsec policy add tunnel=yes\n",
                                                                        count: 100_000), json: false))
        XCTAssertEqual(try carry(script, from: .client, to: .monitor).envelope?.message, script)
        let printout = Message.consoleReply(ConsoleReply(ok: true, output: String(repeating: "x", count: 30 << 20),
                                                         warnings: [], promptPath: ""))
        let reply = try carry(printout, from: .monitor, to: .client, requestID: 77)
        XCTAssertEqual(reply.envelope?.message, printout)
        XCTAssertEqual(reply.envelope?.requestID, 77)
        let counters = Message.counterReply(CounterReply(role: .datapath, counters: (0..<200_000).map {
            Counter(name: "policy-\($0)-out-transformed", value: UInt64($0))
        }))
        XCTAssertEqual(try carry(counters, from: .datapath, to: .monitor).envelope?.message, counters)
    }

    func scalePolicy(_ i: Int) -> AllowedPolicy {
        let selector = TrafficSelector(source: IPv4Prefix(0x0a00_0000 | UInt32(i) << 8, length: 24),
                                       destination: IPv4Prefix(0xac00_0000 | UInt32(i) << 8, length: 24))
        let record = PolicyRecord(id: UInt32(i + 1), selector: selector, tunnel: true, saSource: a(0xc000_0201),
                                  saDestination: a(0xc612_0000 + UInt32(i % 500)))
        let manual = i < 10_000
        return AllowedPolicy(policy: record, manual: manual, encryption: manual ? [] : [.aes128], integrity: [.sha1])
    }

    func scaleSA(_ i: Int) -> SARecord {
        SARecord(policyID: UInt32(i / 2 + 1), inbound: i % 2 == 1, proto: .esp, spi: UInt32(0x1000 + i),
                 source: a(0xc000_0201), destination: a(0xc612_0000), tunnel: true, encryption: .aes128,
                 integrity: .sha1, encryptionKey: Array(repeating: UInt8(i & 0xff), count: 16),
                 integrityKey: Array(repeating: 7, count: 20), lifetimeSeconds: 0)
    }

    func testAMessageThatFitsOneDatagramIsNeverPaged() {
        let frames = Paging.frames(samples[0], requestID: 3, stream: 1)
        XCTAssertEqual(frames, [Frame.encode(samples[0], requestID: 3)])
    }
}
