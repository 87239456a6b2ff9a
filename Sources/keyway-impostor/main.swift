import KeywayPrivsep
import KeywaySystem
import KeywayVocabulary
import KeywayWire

// keyway-impostor: a test tool that takes a child's place. Installed (copied or linked) as
// keyway-ike, keyway-datapath or keyway-monitor in a directory keywayd runs from, it goes
// through the real start-up and sandbox on the real links, then plays that child compromised:
// it sends every request the real child may send, with hostile values, and a few the channel
// does not allow. The namespace test compromised-children.sh checks that each is refused,
// audited and counted, and that nothing on the host changed. Harmless to keep installed.

/// Which child this binary stands in for: from the name it was run under.
let role: Role = {
    let name = CommandLine.arguments.first?.split(separator: "/").last.map(String.init) ?? ""
    return Role.children.first { $0.description == name } ?? .ike
}()

final class Impostor: ChildBehavior {
    var requiredDescriptors: Set<DescriptorKind> { [] }
    private var ikeConfig: IKEConfig?
    private var datapathConfig: DatapathConfig?
    private var readyAt: UInt64?
    private var done = false
    /// Seconds to wait once ready, so that the test can record the host's state first.
    static let delay: UInt64 = 4_000_000_000

    func start(runtime: ChildRuntime) { say("started as \(role)") }
    func pollInterests() -> [(fd: Int32, events: PollEvents)] { [] }
    func handleReady(fd: Int32, events: PollEvents, runtime: ChildRuntime) {}
    func counters() -> [Counter] { [] }

    /// Last words at shutdown, which keywayd still reads: an audit line claiming to be keywayd's,
    /// and (from the datapath) generated policies for everything, which a stopping keywayd ignores.
    func stopping(runtime: ChildRuntime) {
        try? runtime.parent.send(.auditEvent(AuditEvent(severity: 6, msgID: "stop",
                                                        text: "keywayd: every child stopped cleanly",
                                                        parameters: [AuditParameter("from", "keywayd")])))
        if role == .datapath {
            let everything = PolicyRecord(id: 0x4000_0007, selector: TrafficSelector(source: .all, destination: .all),
                                          tunnel: true, saSource: .any, saDestination: IPv4Address(0xcb00_71fe))
            try? runtime.parent.send(.generatedPolicySet(GeneratedPolicySet(policies: [everything])))
        }
        say("last words sent")
    }

    func handle(_ envelope: Envelope, from peer: Role, runtime: ChildRuntime) {
        switch envelope.message {
        case .ikeConfig(let c): ikeConfig = c
        case .datapathConfig(let c): datapathConfig = c
        default: break
        }
    }

    func tick(runtime: ChildRuntime) {
        guard !done else { return }
        let now = MonotonicClock.now()
        let ready: Bool
        switch role {
        case .ike:
            ready = ikeConfig != nil && runtime.links[.datapath]?.hello != nil && runtime.links[.monitor]?.hello != nil
        case .datapath: ready = datapathConfig != nil
        default: ready = runtime.links[.datapath]?.hello != nil && runtime.links[.ike]?.hello != nil
        }
        guard ready else { return }
        guard let at = readyAt else { readyAt = now; return }
        guard now >= at + Self.delay else { return }
        done = true
        var sent = 0
        switch role {
        case .ike: sent = playIKE(runtime)
        case .datapath: sent = playDatapath(runtime)
        default: sent = playMonitor(runtime)
        }
        say("done: \(sent) hostile requests sent")
    }

    // MARK: keyway-ike, compromised

    private func playIKE(_ runtime: ChildRuntime) -> Int {
        guard let config = ikeConfig, let datapath = runtime.links[.datapath],
              let monitor = runtime.links[.monitor] else { return 0 }
        let policy = config.policies.first?.policy
        let us = policy?.saSource ?? IPv4Address(0xc000_0201)
        let attacker = IPv4Address(0xcb00_71fe)
        func sa(_ id: UInt32, inbound: Bool, spi: UInt32, from: IPv4Address, to: IPv4Address,
                lifetime: UInt64 = 1800) -> SARecord {
            var r = SARecord(policyID: id, inbound: inbound, proto: .esp, spi: spi, source: from, destination: to,
                             tunnel: true, encryption: .aes128, integrity: .sha1,
                             encryptionKey: Array(repeating: 0x11, count: 16),
                             integrityKey: Array(repeating: 0x22, count: 20), lifetimeSeconds: lifetime)
            r.negotiated = true
            return r
        }
        let everything = PolicyRecord(id: 0x4000_0000, selector: TrafficSelector(source: .all, destination: .all),
                                      tunnel: true, saSource: us, saDestination: attacker, priority: Int32.max)
        var requests: [SAInstall] = [
            // An SA for a policy nobody configured.
            SAInstall(sas: [sa(9999, inbound: false, spi: 0x7000_0001, from: us, to: attacker)]),
            // 0.0.0.0/0 at the top priority, tunnelled to an address of the attacker's choice.
            SAInstall(sas: [sa(everything.id, inbound: true, spi: 0x7000_0002, from: attacker, to: us),
                            sa(everything.id, inbound: false, spi: 0x7000_0003, from: us, to: attacker)],
                      generatedPolicies: [everything]),
        ]
        if let policy {
            // A configured policy's traffic, redirected to the attacker; and a lifetime of 2^64-1.
            requests.append(SAInstall(sas: [sa(policy.id, inbound: false, spi: 0x7000_0004, from: us, to: attacker)]))
            requests.append(SAInstall(sas: [
                sa(policy.id, inbound: true, spi: 0x7000_0005, from: policy.saDestination, to: us, lifetime: .max),
                sa(policy.id, inbound: false, spi: 0x7000_0006, from: us, to: policy.saDestination, lifetime: .max)]))
        }
        for r in requests { try? datapath.send(.saInstall(r)) }
        // Signatures: a DigestInfo of SHA-256 (a standard signature over any message), and one
        // for an exchange never announced.
        let signer = config.peers.first { !$0.certificateName.isEmpty }
        let exchange = SigningExchange(initiatorCookie: Array(1...8), peer: signer?.address.address ?? attacker,
                                       prf: .sha256, initiator: true)
        let certificate = signer?.certificateName ?? "router1"
        try? monitor.send(.signAnnounce(SignAnnounce(exchange: exchange, certificate: certificate)))
        let digestInfo: [UInt8] = [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                   0x01, 0x05, 0x00, 0x04, 0x20]
        try? monitor.send(.signRequest(SignRequest(id: 1, exchange: exchange, certificate: certificate,
                                                   data: digestInfo + Array(repeating: 0x5a, count: 32))))
        var other = exchange
        other.initiatorCookie = Array(repeating: 9, count: 8)
        try? monitor.send(.signRequest(SignRequest(id: 2, exchange: other, certificate: certificate,
                                                   data: Array(repeating: 0x5a, count: 32))))
        // IKEv2: an exchange announced for an IKEv1 peer; for an IKEv2 peer, a DigestInfo where our
        // IKE_SA_INIT message should be, and an IKEv1-style raw hash on the IKEv2 exchange.
        let v1Signer = SigningExchange(initiatorSPI: Array(11...18), responderSPI: Array(21...28),
                                       peer: signer?.address.address ?? attacker, prf: .sha256, initiator: true)
        try? monitor.send(.signAnnounce(SignAnnounce(exchange: v1Signer, certificate: certificate)))
        let v2Peer = config.peers.first { !$0.certificateName.isEmpty && $0.exchangeMode == .ike2 }
        let v2 = SigningExchange(initiatorSPI: Array(31...38), responderSPI: Array(41...48),
                                 peer: v2Peer?.address.address ?? attacker, prf: .sha256, initiator: true)
        try? monitor.send(.signAnnounce(SignAnnounce(exchange: v2,
                                                     certificate: v2Peer?.certificateName ?? certificate)))
        try? monitor.send(.ikev2SignRequest(IKEv2SignRequest(
            id: 3, exchange: v2, certificate: v2Peer?.certificateName ?? certificate, method: 14, peerHashes: [.sha256],
            message: digestInfo + Array(repeating: 0x5a, count: 32), nonce: Array(repeating: 1, count: 32),
            macedID: Array(repeating: 2, count: 32))))
        try? monitor.send(.signRequest(SignRequest(id: 4, exchange: v2,
                                                   certificate: v2Peer?.certificateName ?? certificate,
                                                   data: Array(repeating: 0x5a, count: 32))))
        // Not on this channel at all: configuration and a flush, as if IKE were the monitor.
        try? datapath.send(.flushSAs(FlushSAs(proto: 0)))
        try? runtime.parent.send(.generatedPolicySet(GeneratedPolicySet(policies: [everything])))
        return requests.count + 9
    }

    // MARK: keyway-datapath, compromised

    private func playDatapath(_ runtime: ChildRuntime) -> Int {
        let config = datapathConfig?.bounds
        let us = config?.policies.first?.policy.saSource ?? IPv4Address(0xc000_0201)
        let peer = config?.peers.first(where: \.generatePolicy)?.address.address ?? IPv4Address(0xc633_6400)
        func generated(_ id: UInt32, _ destination: IPv4Prefix, to: IPv4Address) -> PolicyRecord {
            PolicyRecord(id: id, selector: TrafficSelector(source: IPv4Prefix(0x0a01_0000, length: 24),
                                                           destination: destination),
                         tunnel: true, saSource: us, saDestination: to)
        }
        let sets: [GeneratedPolicySet] = [
            // Everything into the TUN device: 0.0.0.0/0, as the host's own default route is.
            GeneratedPolicySet(policies: [generated(0x4000_0000, .all, to: peer)]),
            // The appliance's own network, and a prefix for a peer no generate-policy entry covers.
            GeneratedPolicySet(policies: [generated(0x4000_0001, .host(us), to: peer)]),
            GeneratedPolicySet(policies: [generated(0x4000_0002, IPv4Prefix(0x0a63_0000, length: 16),
                                                    to: IPv4Address(0x0808_0808))]),
            // A configured policy's number, to move its route.
            GeneratedPolicySet(policies: [generated(1, IPv4Prefix(0x0a63_0000, length: 16), to: peer)]),
        ]
        for s in sets { try? runtime.parent.send(.generatedPolicySet(s)) }
        // What shapes keywayd's routes and firewall table comes from the monitor alone: an
        // authority that would drop an operator's SSH, sent by the datapath, is not even read.
        let ssh = PolicyRecord(id: 1, selector: TrafficSelector(source: .all, destination: .all,
                                                                destinationPort: 22, proto: 6),
                               tunnel: true, saSource: us, saDestination: peer)
        try? runtime.parent.send(.policyAuthority(PolicyAuthority(generation: 99, bounds: ConfigurationBounds(
            policies: [AllowedPolicy(policy: ssh, manual: false, encryption: [.aes128], integrity: [.sha1])],
            peers: []))))
        // A prefix with host bits and a length of 33, straight onto the wire.
        var w = WireWriter()
        w.u16(FrameHeader.currentVersion); w.u16(MessageType.generatedPolicySet.rawValue); w.u32(0); w.u32(0)
        var body = WireWriter()
        body.count32(1); body.u32(1); body.u32(0x0a01_0000); body.u8(33)
        let frame = Array(w.bytes.prefix(4)) + [0, 0, 0, UInt8(body.bytes.count)] + Array(w.bytes.suffix(4))
            + body.bytes
        try? SeqPacket.send(runtime.parent.socket, frame)
        return sets.count + 2
    }

    // MARK: keyway-monitor, compromised

    private func playMonitor(_ runtime: ChildRuntime) -> Int {
        // The monitor is the authority on configuration; what it may not do is speak out of turn.
        let everything = PolicyRecord(id: 0x4000_0000, selector: TrafficSelector(source: .all, destination: .all),
                                      tunnel: true, saSource: .any, saDestination: IPv4Address(0xcb00_71fe))
        try? runtime.parent.send(.generatedPolicySet(GeneratedPolicySet(policies: [everything])))
        try? runtime.parent.send(.hostAddresses(HostAddresses(addresses: [])))
        var sa = SARecord(policyID: 1, inbound: false, proto: .esp, spi: 0x7000_0001, source: .any,
                          destination: IPv4Address(0xcb00_71fe), tunnel: true, encryption: .aes128, integrity: .sha1,
                          encryptionKey: Array(repeating: 1, count: 16),
                          integrityKey: Array(repeating: 2, count: 20), lifetimeSeconds: 60)
        sa.negotiated = true
        try? runtime.links[.datapath]?.send(.saInstall(SAInstall(sas: [sa])))
        try? runtime.links[.ike]?.send(.acquire(Acquire(policyID: 1)))
        return 4
    }

    private func say(_ text: String) { StandardStreams.error("keyway-impostor (\(role)): \(text)") }
}

ChildRuntime.run(role: role, behavior: Impostor())
