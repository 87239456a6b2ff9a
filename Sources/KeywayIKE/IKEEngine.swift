import KeywayVocabulary
import KeywayCrypto

/// IKEv1 (RFC 2409) as a sans-IO engine: datagrams, acquisitions and the time in; datagrams,
/// SA installations and audit lines out. Main mode with pre-shared keys, quick mode with PFS,
/// informational exchanges and NAT traversal (RFC 3947). Time is in milliseconds.
public final class IKEEngine {
    public private(set) var configuration: IKEConfiguration
    var sas: [IKESAKey: IKESA] = [:]
    var children: [ChildSA] = []
    /// Every random byte the engine uses: cookies, nonces, SPIs, message IDs, DPD sequence
    /// numbers and Diffie-Hellman private values (a seeded source makes runs repeatable).
    let random: (Int) -> [UInt8]
    var actions: [IKEAction] = []
    /// Policies whose negotiation failed, and when to try again (back-off).
    var retryAt: [Int: (at: UInt64, delay: UInt64)] = [:]

    public static let natTPort: UInt16 = 4500
    /// Phase 1 negotiations we answered but that never finished are forgotten after this long.
    /// How many may wait, and which give way, is in ResponderAdmission.swift.
    public static let halfOpenTimeout: UInt64 = 60_000
    /// Negotiations whose peer echoed our cookie but did not finish: at most this many per pair of
    /// addresses (the peer's and ours it wrote to: a multihomed peer of ours holds one phase 1 per
    /// address of ours) and in all. Beyond that new ones are refused (busy), never displacing these.
    public static let maximumVerifiedHalfOpenPerAddress = 8
    public static let maximumVerifiedHalfOpen = 512
    /// First messages longer than this get no state (a real one is a few hundred bytes).
    public static let maximumFirstMessage = 4096
    /// Diffie-Hellman for unauthenticated peers, per exchange kind: burst and rate per second.
    /// Main mode's burst covers a few seconds: peers that started together (an appliance's 500
    /// tunnels after a restart) retransmit together, and each burst gets only what the bucket holds.
    public static let mainModeDiffieHellmanRate: (burst: UInt64, perSecond: UInt64) = (256, 64)
    public static let aggressiveDiffieHellmanRate: (burst: UInt64, perSecond: UInt64) = (16, 16)
    /// How long a finished quick mode's message 3 is kept for a peer that did not get it: as long
    /// as the peer retransmits message 2 (2 + 4 + 8 + 16 s).
    static let finishedQuickKept: UInt64 = 32_000
    /// Acquisitions for a policy this soon after its SAs were installed crossed them on the way.
    static let installRace: UInt64 = 2_000
    /// Quick modes a peer may leave unfinished on one phase 1 (ours wait at most one per policy);
    /// a responder's unanswered one goes after `halfOpenTimeout`.
    public static let maximumQuickModesPerPhase1 = 32

    var unverified = UnverifiedResponders()
    var verifiedHalfOpen: [UInt64: Int] = [:]
    var verifiedHalfOpenTotal = 0
    var mainModeDiffieHellman = TokenBucket(capacity: IKEEngine.mainModeDiffieHellmanRate.burst,
                                            perSecond: IKEEngine.mainModeDiffieHellmanRate.perSecond)
    var aggressiveDiffieHellman = TokenBucket(capacity: IKEEngine.aggressiveDiffieHellmanRate.burst,
                                              perSecond: IKEEngine.aggressiveDiffieHellmanRate.perSecond)
    var load = ResponderLoad()
    /// RFC 3948 keepalives from behind a NAT, every 20 s.
    public static let keepaliveInterval: UInt64 = 20_000
    var lastKeepalive: [IKESAKey: UInt64] = [:]

    /// Policies made by generate-policy (by either IKE version: one id space, one set of bounds).
    let book: GeneratedPolicyBook
    /// Policies made by generate-policy, by id; they go when their last SA goes.
    public internal(set) var generatedPolicies: [Int: IKEPolicy] {
        get { book.policies }
        set { book.policies = newValue }
    }
    /// The appliance's own addresses (`setOwnAddresses`), which generated policies may not claim.
    var ownAddresses: [IPv4Address] { book.ownAddresses }
    /// Generated policy ids never meet configured ones (the monitor numbers those from 1).
    public static let firstGeneratedPolicyID = 0x4000_0000

    /// The local address of the datagram being handled.
    var receivedOn: UInt32 = 0
    /// Signatures asked of the monitor, and what to do with each when it comes back.
    var pendingSignatures: [UInt64: (IKESAKey, ([UInt8]?, UInt64) -> Void)] = [:]
    var nextSignatureID: UInt64 = 0

    public init(configuration: IKEConfiguration = IKEConfiguration(),
                random: @escaping (Int) -> [UInt8] = SecureRandom.bytes,
                generated: GeneratedPolicyBook = GeneratedPolicyBook()) {
        self.configuration = configuration
        self.random = random
        self.book = generated
    }

    // MARK: inputs

    /// New configuration: child SAs of policies that went away or changed are removed.
    public func configure(_ configuration: IKEConfiguration, now: UInt64) -> [IKEAction] {
        let old = self.configuration
        self.configuration = configuration
        let kept = children.filter { child in
            if generatedPolicies[child.policyID] != nil { return true }
            guard let before = old.policy(id: child.policyID) else { return false }
            return configuration.policy(id: child.policyID) == before
        }
        let gone = children.filter { c in !kept.contains { $0.inboundSPI == c.inboundSPI && $0.remote == c.remote } }
        for c in gone { removeChild(c, sendDelete: true, now: now) }
        return take()
    }

    /// The monitor's answer to a `.sign` action (nil: it could not sign).
    public func signed(id: UInt64, signature: [UInt8]?, now: UInt64) -> [IKEAction] {
        guard let (key, next) = pendingSignatures.removeValue(forKey: id), sas[key] != nil else { return [] }
        next(signature, now)
        return take()
    }

    /// A (re)started datapath holds no negotiated SA: forget ours and tell the peers, so that
    /// traffic renegotiates instead of going to SAs nobody has.
    public func datapathRestarted(now: UInt64) -> [IKEAction] {
        for c in children { removeChild(c, sendDelete: true, now: now) }
        return take()
    }

    /// The datapath dropped a packet for a policy without SAs.
    public func acquire(policyID: Int, now: UInt64) -> [IKEAction] {
        guard let policy = configuration.policy(id: policyID) else { return [] }
        if let retry = retryAt[policyID], retry.at > now { return [] }
        // The datapath asked before the SAs just negotiated reached it: no second pair.
        if children.contains(
               where: { $0.policyID == policyID && now < $0.installedAt.saturatingAdd(Self.installRace) }) {
            return []
        }
        startNegotiation(policy, now: now)
        return take()
    }

    /// `localAddress`: the address the datagram came to (0 when unknown: then the policies tell).
    public func receive(_ payload: [UInt8], from: Endpoint, localPort: UInt16, localAddress: UInt32 = 0,
                        now: UInt64) -> [IKEAction] {
        receivedOn = localAddress
        defer { receivedOn = 0 }
        var data = payload
        if localPort == Self.natTPort {
            if data == [0xff] { return [] }  // NAT-keepalive
            guard data.count >= 4, data[0] == 0, data[1] == 0, data[2] == 0, data[3] == 0 else { return [] }
            data.removeFirst(4)
        }
        do {
            let header = try ISAKMPHeader.parse(data)
            switch ExchangeType(rawValue: header.exchangeType) {
            case .identityProtection?, .aggressive?:
                try mainMode(header, data, from: from, localPort: localPort, now: now)
            case .quick?: try quickMode(header, data, from: from, now: now)
            case .informational?: try informational(header, data, from: from, now: now)
            case .base?:
                audit(.warning, "ike-refused", "the base exchange is not supported (exchange-mode=base cannot be used)",
                      [("peer", from.description)])
            case nil:
                audit(.warning, "ike-malformed", "unknown exchange type \(header.exchangeType)",
                      [("peer", from.description)])
            }
        } catch let error as ISAKMPError {
            audit(.warning, "ike-malformed", "ISAKMP message dropped: \(error)", [("peer", from.description)])
        } catch let error as NegotiationError {
            audit(.warning, "ike-failed", error.reason, [("peer", from.description)])
        } catch {
            audit(.error, "ike-failed", "\(error)", [("peer", from.description)])
        }
        return take()
    }

    /// Retransmissions, failures, and rekeying before the soft lifetime ends.
    public func tick(now: UInt64) -> [IKEAction] {
        let abandoned = unverified.expire(now: now, timeout: Self.halfOpenTimeout)
        if !abandoned.isEmpty {
            audit(.informational, "ike-abandoned",
                  "\(abandoned.count) unverified phase 1 negotiations abandoned by their peers",
                  limitedBy: "ike-abandoned")
        }
        for (key, sa) in sas {
            if step(&sa.retransmit, now: now) {
                audit(.warning, "ike-timeout", "phase 1 negotiation timed out: no answer from the peer",
                      [("peer", sa.remote.description), ("state", sa.state.rawValue)])
                failPolicies(sa.pendingPolicies, now: now)
                removeSA(key)
                continue
            }
            for (id, q) in sa.quick where step(&q.retransmit, now: now) {
                audit(.warning, "ike-timeout", "phase 2 negotiation timed out",
                      [("peer", sa.remote.description), ("policy", String(q.policy.id))])
                sa.quick[id] = nil
                if q.initiator { failPolicies([q.policy.id], now: now) }
            }
            if !sa.finishedQuick.isEmpty {
                sa.finishedQuick = sa.finishedQuick.filter { now < $0.value.at.saturatingAdd(Self.finishedQuickKept) }
            }
            for (id, q) in sa.quick where !q.initiator && now >= q.createdAt.saturatingAdd(Self.halfOpenTimeout) {
                audit(.informational, "ike-abandoned", "phase 2 negotiation abandoned by the peer",
                      [("peer", sa.remote.description)], limitedBy: "ike-abandoned")
                sa.quick[id] = nil
            }
            if sa.state != .established, !sa.initiator, now >= sa.createdAt.saturatingAdd(Self.halfOpenTimeout) {
                audit(.informational, "ike-abandoned", "phase 1 negotiation abandoned by the peer",
                      [("peer", sa.remote.description), ("state", sa.state.rawValue)], limitedBy: "ike-abandoned")
                removeSA(key)
                continue
            }
            if sa.state == .established, sa.natDetected, sa.localPort == Self.natTPort,
               now >= (lastKeepalive[key] ?? sa.establishedAt ?? now).saturatingAdd(Self.keepaliveInterval) {
                lastKeepalive[key] = now
                actions.append(.send([0xff], fromPort: Self.natTPort, to: sa.remote, source: sa.localAddress))
            }
            if sa.state == .established, deadPeer(sa, now: now) {
                audit(.warning, "ike-dpd",
                      "peer did not answer \(sa.peer.dpdMaximumFailures) dead peer detection "
                      + "requests: its SAs are removed",
                      [("peer", sa.remote.description)])
                for c in children where c.ikeKey == key { removeChild(c, sendDelete: false, now: now) }
                removeSA(key)
                continue
            }
            if sa.state == .established, let at = sa.establishedAt,
               now >= at.saturatingAdd(sa.choice.lifetime.capped(at: .maximumLifetime).milliseconds) {
                audit(.notice, "ike-expired", "phase 1 lifetime ended", [("peer", sa.remote.description)])
                removeSA(key)
            }
        }
        // Rekey at 80% of the lifetime (the soft limit), so the new SA is in place before the old one dies.
        for i in children.indices where !children[i].rekeyStarted && children[i].initiator {
            let c = children[i]
            if now >= c.installedAt.saturatingAdd(c.lifetime.eightyPercent.milliseconds),
               let policy = policy(c.policyID), !policy.dynamic {
                children[i].rekeyStarted = true
                audit(.informational, "ike-rekey", "rekeying phase 2 before its lifetime ends",
                      [("policy", String(c.policyID))])
                startNegotiation(policy, now: now)
            }
        }
        // Hard lifetime: the old pair goes, with a delete to the peer.
        for c in children where now >= c.installedAt.saturatingAdd(c.lifetime.milliseconds) {
            removeChild(c, sendDelete: true, now: now)
        }
        return take()
    }

    /// RFC 3706: after `dpd-interval` without a sign of life, R-U-THERE every interval; true when
    /// `dpd-maximum-failures` of them went unanswered.
    func deadPeer(_ sa: IKESA, now: UInt64) -> Bool {
        let interval = sa.peer.dpdInterval.milliseconds
        guard interval > 0, sa.peerSupportsDPD, let keys = sa.keys else { return false }
        guard now >= max(sa.lastHeard, sa.lastProbe).saturatingAdd(interval) else { return false }
        if sa.unansweredProbes >= sa.peer.dpdMaximumFailures { return true }
        sa.probeSequence = sa.probeSequence == 0 ? (randomUInt32() & 0x7fff_ffff) | 1 : sa.probeSequence &+ 1
        sa.unansweredProbes += 1
        sa.lastProbe = now
        let mid = newMessageID()
        let n = Payload.notification(doi: 1, protocolID: ProtocolID.isakmp.rawValue, type: NotifyType.rUThere.rawValue,
                                     spi: sa.cookies,
                                     data: sa.probeSequence.bytes)
        if let hash = try? keys.hmacA(mid.bytes + ISAKMPCodec.encode([n]).body),
           let m = try? message(sa, exchange: .informational, messageID: mid, payloads: [.hash(hash), n],
                                iv: keys.exchangeIV(lastPhase1Block: sa.iv, messageID: mid)) {
            send(m.bytes, sa: sa)
        }
        return false
    }

    /// Returns true when the retransmissions are spent.
    private func step(_ r: inout Retransmission, now: UInt64) -> Bool {
        guard r.waiting, let message = r.message, let to = r.to, now >= r.nextAt else { return false }
        if r.sent >= Retransmission.tries { return true }
        actions.append(.send(message, fromPort: r.fromPort, to: to, source: r.source))
        r.sent += 1
        r.interval *= 2
        r.nextAt = now.saturatingAdd(r.interval)
        return false
    }

    func failPolicies(_ ids: [Int], now: UInt64) {
        // Generated policies are never acquired (and each attempt has its own id): no back-off to keep.
        for id in ids where id < Self.firstGeneratedPolicyID {
            let delay = min((retryAt[id]?.delay ?? 5_000) * 2, 300_000)
            retryAt[id] = (now.saturatingAdd(delay), delay)
        }
    }

    // MARK: state for printouts

    public func remotePeers(now: UInt64) -> [RemotePeerState] {
        sas.values.sorted { $0.createdAt < $1.createdAt }.map { sa in
            RemotePeerState(local: sa.localAddress, remote: sa.remote, state: sa.state.rawValue,
                            side: sa.initiator ? "initiator" : "responder",
                            establishedSeconds: sa.establishedAt.map { now >= $0 ? (now - $0) / 1000 : 0 } ?? 0,
                            natTraversal: sa.natDetected)
        }
    }

    func policy(_ id: Int) -> IKEPolicy? { configuration.policy(id: id) ?? generatedPolicies[id] }

    public func phase2(policyID: Int) -> PolicyPhase2 {
        children.contains { $0.policyID == policyID } ? .established : .noPhase2
    }

    /// Policies with an established phase 2 (configured and generated), ascending: what `phase2`
    /// answers for each, in one pass over the child SAs.
    public var establishedPolicyIDs: [Int] { Set(children.map(\.policyID)).sorted() }

    /// The responder's admission so far (see ResponderAdmission.swift).
    public var responderLoad: ResponderLoad {
        var l = load
        l.unverified = unverified.count
        l.verifiedHalfOpen = verifiedHalfOpenTotal
        return l
    }

    // MARK: helpers

    func take() -> [IKEAction] { defer { actions.removeAll() }; return actions }

    /// An audit line. Warnings and errors, and any line passed `limitedBy`, are rate-limited by
    /// keyway-ike under a fixed key (never text a peer chose): what a datagram can cause is bounded.
    func audit(_ level: IKEAudit.Level, _ msgID: String, _ text: String, _ fields: [(String, String)] = [],
               limitedBy key: String? = nil) {
        var note = IKEAudit(level, msgID, text, fields)
        note.rateLimitKey = key ?? (level == .warning || level == .error ? msgID : nil)
        actions.append(.audit(note))
    }

    // MARK: randomness: all of it from the injected source, so an exchange can be replayed

    /// Four bytes of the injected random source, as a number.
    func randomUInt32() -> UInt32 { random(4).reduce(0) { $0 << 8 | UInt32($1) } }

    /// A message ID for a new exchange (never 0, which belongs to phase 1).
    func newMessageID() -> UInt32 { randomUInt32() | 1 }

    /// A Diffie-Hellman key pair whose private value is drawn from the injected random source.
    func newDiffieHellman(_ group: DHGroup) throws(CryptoError) -> DiffieHellman {
        var seed = random(DiffieHellman.seedLength(group: group))
        return try DiffieHellman(group: group, seed: Secret(consuming: &seed))
    }

    /// The SA under `key`, whether it is still unverified or not.
    func negotiation(_ key: IKESAKey) -> IKESA? { sas[key] ?? unverified[key] }

    /// Forgets a phase 1 wherever it lives, keeping the half-open counts exact.
    func removeSA(_ key: IKESAKey) {
        if unverified.remove(key) != nil { return }
        guard let sa = sas.removeValue(forKey: key) else { return }
        if sa.verified, sa.state != .established { releaseVerifiedSlot(sa) }
        lastKeepalive[key] = nil
        if !pendingSignatures.isEmpty { pendingSignatures = pendingSignatures.filter { $0.value.0 != key } }
    }

    func releaseVerifiedSlot(_ sa: IKESA) {
        verifiedHalfOpenTotal -= 1
        let pair = Self.addressPair(sa)
        let n = (verifiedHalfOpen[pair] ?? 1) - 1
        verifiedHalfOpen[pair] = n > 0 ? n : nil
    }

    /// The peer's address and ours, as one key.
    static func addressPair(_ sa: IKESA) -> UInt64 { UInt64(sa.remote.address) << 32 | UInt64(sa.localAddress) }

    /// Whether `other` runs between the same two addresses as `sa` (an unknown local address, 0,
    /// matches any): a peer's INITIAL-CONTACT speaks for the address it wrote to, nothing else.
    static func sameAddresses(_ other: IKESA, _ sa: IKESA) -> Bool {
        other.remote.address == sa.remote.address
            && (other.localAddress == sa.localAddress || other.localAddress == 0 || sa.localAddress == 0)
    }

    static func sameAddresses(_ child: ChildSA, _ sa: IKESA) -> Bool {
        child.remote == sa.remote.address
            && (child.local == sa.localAddress || child.local == 0 || sa.localAddress == 0)
    }

    func send(_ message: [UInt8], sa: IKESA) {
        let datagram = sa.localPort == Self.natTPort ? [0, 0, 0, 0] + message : message
        actions.append(.send(datagram, fromPort: sa.localPort, to: sa.remote, source: sa.localAddress))
    }

    func framed(_ message: [UInt8], sa: IKESA) -> [UInt8] {
        sa.localPort == Self.natTPort ? [0, 0, 0, 0] + message : message
    }

    /// Our address towards a remote: the sa-src-address of a policy that goes there.
    func localAddress(toward remote: UInt32) -> UInt32 {
        if let p = configuration.policies.first(where: { $0.saDestination == remote }) { return p.saSource }
        if let peer = configuration.peer(for: remote),
           let p = configuration.policies.first(where: { peer.contains($0.saDestination) }) {
            return p.saSource
        }
        return 0
    }

    func natHash(_ sa: IKESA, _ address: UInt32, _ port: UInt16) -> [UInt8] {
        sa.choice.hash.digest(sa.initiatorCookie + sa.responderCookie + address.bytes + port.bytes)
    }

    /// Builds a whole message; encrypts it (padding with zeros, as strongSwan does) when `iv` is given.
    func message(_ sa: IKESA, exchange: ExchangeType, messageID: UInt32, payloads: [Payload],
                 iv: [UInt8]?) throws -> (bytes: [UInt8], lastBlock: [UInt8]) {
        var (first, body) = ISAKMPCodec.encode(payloads)
        var flags: UInt8 = 0
        var lastBlock: [UInt8] = []
        if let iv, let keys = sa.keys {
            let block = keys.cipher.blockSize
            if body.count % block != 0 { body += [UInt8](repeating: 0, count: block - body.count % block) }
            try keys.cipher.run(&body, iv: iv, encrypt: true)
            lastBlock = Array(body.suffix(block))
            flags = ISAKMPHeader.encryptedFlag
        }
        let header = ISAKMPHeader(initiatorCookie: sa.initiatorCookie, responderCookie: sa.responderCookie,
                                  nextPayload: first,
                                  exchangeType: exchange.rawValue, flags: flags, messageID: messageID)
        return (header.encoded(bodyLength: body.count) + body, lastBlock)
    }

    /// Decrypts a message body with `iv`; returns the plaintext and the new chain value.
    func decrypt(_ sa: IKESA, _ datagram: [UInt8], iv: [UInt8]) throws -> (body: [UInt8], lastBlock: [UInt8]) {
        guard let keys = sa.keys else { throw NegotiationError.malformed("encrypted message before the key exchange") }
        var body = Array(datagram[ISAKMPHeader.size...])
        let block = keys.cipher.blockSize
        guard !body.isEmpty, body.count % block == 0 else {
            throw NegotiationError.malformed("encrypted body of \(body.count) bytes is not whole blocks")
        }
        let last = Array(body.suffix(block))
        try keys.cipher.run(&body, iv: iv, encrypt: false)
        return (body, last)
    }

    // MARK: starting

    func startNegotiation(_ policy: IKEPolicy, now: UInt64) {
        guard let peer = configuration.peer(for: policy.saDestination) else {
            audit(.warning, "ike-no-peer", "no /ip ipsec peer matches the policy's sa-dst-address",
                  [("policy", String(policy.id)), ("sa-dst-address", IPv4Address.text(policy.saDestination))])
            failPolicies([policy.id], now: now)
            return
        }
        // A phase 1 with that peer already under way or done carries the quick mode: one between
        // the policy's two addresses (a multihomed appliance has one per address of ours).
        if let sa = sas.values.first(where: {
            $0.remote.address == policy.saDestination
                && ($0.localAddress == policy.saSource || $0.localAddress == 0 || policy.saSource == 0)
        }) {
            if sa.state == .established {
                if !sa.quick.values.contains(where: { $0.policy.id == policy.id }) {
                    startQuickMode(sa, policy: policy, now: now)
                }
            } else if !sa.pendingPolicies.contains(policy.id) {
                sa.pendingPolicies.append(policy.id)
            }
            return
        }
        guard peer.exchangeMode != .base else {
            audit(.warning, "ike-refused", "exchange-mode=base is not supported; use main or aggressive",
                  [("peer", IPv4Address.text(policy.saDestination))])
            failPolicies([policy.id], now: now)
            return
        }
        let remote = Endpoint(address: policy.saDestination, port: peer.port)
        if peer.exchangeMode == .aggressive {
            startAggressive(policy, peer: peer, remote: remote, now: now)
            return
        }
        let sa = IKESA(initiator: true, initiatorCookie: random(8), responderCookie: [UInt8](repeating: 0, count: 8),
                       remote: remote,
                       localAddress: policy.saSource, peer: peer, now: now)
        sa.pendingPolicies = [policy.id]
        let saPayload = Payload.sa(doi: 1, situation: 1,
                                   proposals: [Proposal(number: 1, protocolID: ProtocolID.isakmp.rawValue, spi: [],
                                                        transforms: [sa.choice.transform(number: 1)])])
        sa.initiatorSABody = ISAKMPCodec.encodeData(saPayload)
        let payloads = [saPayload] + initiatorVendorIDs(peer)
        do {
            let (bytes, _) = try message(sa, exchange: .identityProtection, messageID: 0, payloads: payloads, iv: nil)
            sas[IKESAKey(initiatorCookie: sa.initiatorCookie, remote: remote.address)] = sa
            send(bytes, sa: sa)
            sa.retransmit.arm(framed(bytes, sa: sa), fromPort: sa.localPort, source: sa.localAddress, to: remote,
                              now: now, waiting: true)
            audit(.informational, "ike-start", "phase 1 negotiation started (main mode)",
                  [("peer", remote.description), ("proposal", sa.choice.description)])
        } catch {
            audit(.error, "ike-failed", "cannot build main mode message 1: \(error)")
        }
    }
}
