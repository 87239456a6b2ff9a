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
    .counterReply(CounterReply(role: .monitor, counters: [Counter(name: "wire-accepted", value: 9), Counter(name: "ü-ünïcode", value: 0)])),
    .errorReply(ErrorReply(reason: "no such item")),
    .consoleCommand(ConsoleCommand(text: "/ip ipsec policy print", json: true)),
    .consoleReply(ConsoleReply(ok: false, output: "line 1, column 3: ...", warnings: ["dh-group=modp768 is weak"], promptPath: "ip ipsec")),
    .accessPolicy(AccessPolicy(adminGIDs: [995], adminUIDs: [1000, 1001], readGIDs: [996], readUIDs: [])),
    .datapathConfig(DatapathConfig(generation: 3, policies: [
        PolicyRecord(id: 2, source: 0x0a010000, sourceLength: 24, sourcePort: 0, destination: 0x0a020000, destinationLength: 24, destinationPort: 0,
                     proto: 255, action: 2, level: 1, esp: true, ah: false, tunnel: true, saSource: 0xc0000201, saDestination: 0xc0000202, priority: -5, dontFragment: 0),
    ], sas: [SARecord(policyID: 2, inbound: false, proto: 50, spi: 0x100, source: 0xc0000201, destination: 0xc0000202, tunnel: true,
                      encryption: "aes-128", integrity: "sha1", encryptionKey: Array(0..<16), integrityKey: Array(0..<20), lifetimeSeconds: 0)])),
    .routeSet(RouteSet(prefixes: [(0x0a020000, 24, 0), (0xc0000202, 32, 0xc0000201)])),
    .datapathState(DatapathState(sas: [SAStatus(spi: 0x200, proto: 50, source: 1, destination: 2, encryption: "aes-128", integrity: "sha1",
                                                state: "mature", ageSeconds: 12, sinceFirstUse: 3, used: true, bytes: 4096, replayWindow: 32,
                                                softSeconds: 1440, hardSeconds: 1800, softBytes: 0, hardBytes: 0)],
                                 policies: [PolicyStatus(id: 3, inAccepted: 0, inDropped: 1, inTransformed: 2, outAccepted: 3, outDropped: 4, outTransformed: 5, established: true)],
                                 statistics: [Counter(name: "in-no-states", value: 7)])),
    .flushSAs(FlushSAs(proto: 51)),
    .incomingFilter(IncomingFilter(rules: [
        .init(source: 0x0a020000, sourceLength: 24, destination: 0x0a010009, destinationLength: 32, proto: 255, sourcePort: 0, destinationPort: 0, drop: false),
        .init(source: 0x0a020000, sourceLength: 24, destination: 0x0a010000, destinationLength: 24, proto: 6, sourcePort: 80, destinationPort: 0, drop: true),
    ])),
    .ikeConfig(IKEConfig(generation: 4, peers: [
        IKEPeerRecord(address: 0xc0000202, prefixLength: 32, port: 500, secret: Array("secret".utf8), exchangeMode: 1, natTraversal: true,
                      generatePolicy: false, sendInitialContact: true, proposalCheck: "claim", hash: "sha1", encryption: "aes-128",
                      dhGroup: 14, lifetime: 86_400, lifebytes: 0),
    ], policies: [
        IKEPolicyRecord(policy: PolicyRecord(id: 2, source: 0x0a010000, sourceLength: 24, sourcePort: 0, destination: 0x0a020000, destinationLength: 24,
                                             destinationPort: 0, proto: 255, action: 2, level: 1, esp: true, ah: false, tunnel: true,
                                             saSource: 0xc0000201, saDestination: 0xc0000202, priority: 0, dontFragment: 0),
                        authAlgorithms: ["sha1", "md5"], encAlgorithms: ["aes-128"], lifetime: 1_800, pfsGroup: 2),
    ], defaultProposal: IKEPolicyRecord(policy: PolicyRecord(id: 0, source: 0, sourceLength: 0, sourcePort: 0, destination: 0, destinationLength: 0,
                                                             destinationPort: 0, proto: 255, action: 2, level: 1, esp: true, ah: false, tunnel: false,
                                                             saSource: 0, saDestination: 0, priority: 0, dontFragment: 0),
                                        authAlgorithms: ["sha1"], encAlgorithms: ["3des"], lifetime: 1_800, pfsGroup: 2))),
    .saInstall(SAInstall(sas: [{
        var r = SARecord(policyID: 2, inbound: true, proto: 50, spi: 0xabcdef01, source: 0xc0000202, destination: 0xc0000201, tunnel: true,
                         encryption: "aes-128-gcm", integrity: "null", encryptionKey: Array(0..<20), integrityKey: [], lifetimeSeconds: 1_800)
        r.udpLocalPort = 4500; r.udpRemotePort = 4500; r.negotiated = true; r.pfs = true
        return r
    }()], generatedPolicies: [PolicyRecord(id: 0x4000_0000, source: 0xc0000201, sourceLength: 32, sourcePort: 0, destination: 0xc0000202,
                                           destinationLength: 32, destinationPort: 0, proto: 255, action: 2, level: 1, esp: true, ah: false,
                                           tunnel: false, saSource: 0xc0000201, saDestination: 0xc0000202, priority: 0, dontFragment: 0)])),
    .saRemove(SARemove(entries: [.init(spi: 0xabcdef01, proto: 50, destination: 0xc0000201)])),
    .acquire(Acquire(policyID: 7)),
    .ikeDatagram(IKEDatagram(source: 0xc0000202, sourcePort: 4500, destination: 0xc0000201, payload: [0, 0, 0, 0, 1, 2, 3])),
    .ikeState(IKEState(peers: [IKEState.Peer(local: 1, remote: 2, remotePort: 4500, state: "established", side: "responder",
                                             establishedSeconds: 42, natTraversal: true)], establishedPolicies: [2, 3],
                         generatedPolicies: [PolicyRecord(id: 0x4000_0001, source: 1, sourceLength: 32, sourcePort: 0, destination: 2, destinationLength: 32,
                                                          destinationPort: 0, proto: 6, action: 2, level: 1, esp: true, ah: false, tunnel: false,
                                                          saSource: 1, saDestination: 2, priority: 0, dontFragment: 0)])),
    .signRequest(SignRequest(id: 9, certificate: "router1", data: Array(0..<20))),
    .signReply(SignReply(id: 9, signature: Array(repeating: 0xab, count: 256))),
]

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
        XCTAssertEqual(Array(bytes.prefix(12)), [0, 1, 0, 7, 0, 0, 0, 8, 0x0a, 0x0b, 0x0c, 0x0d])
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
}
