import KeywayCrypto
import KeywayVocabulary
import KeywayWire

/// IKEv2 (RFC 7296) as a sans-IO engine beside IKEv1's `IKEEngine`, with the same inputs and
/// outputs: datagrams, acquisitions, signatures and the time in (milliseconds); datagrams, SA
/// installs and removes, signing requests and audit lines out. Every random byte comes from the
/// injected source, so an exchange can be replayed byte for byte.
public final class IKEv2Engine {
    public private(set) var configuration: IKEConfiguration
    let random: (Int) -> [UInt8]
    let book: GeneratedPolicyBook
    /// IKE SAs by our SPI.
    var sas: [UInt64: IKEv2SA] = [:]
    /// Responder: (initiator SPI, peer address) of IKE_SA_INITs we answered, to our SPI.
    var answered: [AnsweredKey: UInt64] = [:]
    var children: [IKEv2Child] = []
    var actions: [IKEAction] = []
    /// Policies whose negotiation failed, and when to try again (back-off).
    var retryAt: [Int: (at: UInt64, delay: UInt64)] = [:]
    /// Signatures asked of the monitor, and what to do with each when it comes back.
    var pendingSignatures: [UInt64: PendingSignature] = [:]
    var nextSignatureID: UInt64 = 0
    var admission = IKEv2Admission()
    /// The local address of the datagram being handled (0: unknown).
    var receivedOn: UInt32 = 0

    public static let natTPort: UInt16 = 4500
    /// Signing request ids of this engine have the top bit set (IKEv1's never do): the process
    /// routes each reply by it.
    public static let signatureIDBit: UInt64 = 1 << 63
    /// Retransmissions: 2 s doubling, five tries (about a minute), then the peer is given up.
    static let firstRetransmit: UInt64 = 2_000
    static let maximumTries = 5
    /// Largest datagram we send before fragmenting (RFC 7383 suggests staying near 1280 bytes).
    public static let defaultFragmentLimit = 1_280
    var fragmentLimit = IKEv2Engine.defaultFragmentLimit
    /// Requests waiting for the window, per IKE SA (a peer cannot make this grow: only we queue).
    static let maximumQueued = 64
    /// Children a peer may create per IKE SA, and in all (beyond: NO_ADDITIONAL_SAS).
    static let maximumChildrenPerSA = 256
    static let maximumChildren = 4096
    /// RFC 3948 keepalives from behind a NAT.
    static let keepaliveInterval: UInt64 = 20_000

    public init(configuration: IKEConfiguration = IKEConfiguration(),
                random: @escaping (Int) -> [UInt8] = SecureRandom.bytes,
                generated: GeneratedPolicyBook = GeneratedPolicyBook()) {
        self.configuration = configuration
        self.random = random
        self.book = generated
    }

    // MARK: inputs

    /// New configuration: children of policies that went away or changed are deleted, and IKE SAs
    /// of peers that went away or changed.
    public func configure(_ configuration: IKEConfiguration, now: UInt64) -> [IKEAction] {
        let old = self.configuration
        self.configuration = configuration
        for c in children {
            if book.policies[c.policyID] != nil { continue }
            guard let before = old.policies.first(where: { $0.id == c.policyID }),
                  configuration.policies.contains(before) else {
                deleteChild(c, now: now)
                continue
            }
        }
        for sa in Array(sas.values) {
            guard let current = configuration.peer(for: sa.remote.address), current.exchangeMode == .ike2,
                  current.address == sa.peer.address, current.prefixLength == sa.peer.prefixLength,
                  samePeer(current, sa.peer) else {
                audit(.notice, "ike-delete", "the peer's configuration changed: its IKE SA is deleted",
                      [("peer", sa.remote.description), ("ike", "v2")])
                deleteIKESA(sa, now: now)
                continue
            }
        }
        return take()
    }

    /// The monitor's answer to a `.signIKEv2` action (nil: it would not sign).
    public func signed(id: UInt64, scheme: SignatureScheme?, signature: [UInt8], now: UInt64) -> [IKEAction] {
        guard let pending = pendingSignatures.removeValue(forKey: id), sas[pending.spi] != nil else { return [] }
        pending.then(scheme.flatMap { s in signature.isEmpty ? nil : (s, signature) }, now)
        return take()
    }

    /// A (re)started datapath holds no negotiated SA: forget ours and tell the peers.
    public func datapathRestarted(now: UInt64) -> [IKEAction] {
        for c in children { deleteChild(c, now: now) }
        return take()
    }

    /// The datapath dropped a packet for a policy without SAs.
    public func acquire(policyID: Int, now: UInt64) -> [IKEAction] {
        guard let policy = configuration.policies.first(where: { $0.id == policyID }) else { return [] }
        if let retry = retryAt[policyID], retry.at > now { return [] }
        startNegotiation(policy, now: now)
        return take()
    }

    /// An IKEv2 datagram (without the non-ESP marker) that came to `localPort` of `localAddress`.
    public func receive(_ datagram: [UInt8], from: Endpoint, localPort: UInt16, localAddress: UInt32 = 0,
                        now: UInt64) -> [IKEAction] {
        receivedOn = localAddress
        defer { receivedOn = 0 }
        do {
            let message = try IKEv2Codec.decodeMessage(datagram)
            try dispatch(message, datagram, from: from, localPort: localPort, now: now)
        } catch let error as ISAKMPError {
            audit(.warning, "ike-malformed", "IKEv2 message dropped: \(error)", [("peer", from.description)])
            if case .unsupportedCriticalPayload(let type) = error {
                answerUnsupportedCritical(datagram, type: type, from: from, localPort: localPort)
            }
        } catch let error as NegotiationError {
            audit(.warning, "ike-failed", error.reason, [("peer", from.description), ("ike", "v2")])
        } catch {
            audit(.error, "ike-failed", "\(error)", [("peer", from.description), ("ike", "v2")])
        }
        return take()
    }

    /// Retransmissions, liveness checks, rekeying and lifetimes.
    public func tick(now: UInt64) -> [IKEAction] {
        admission.rotate(now: now, random: random)
        for sa in Array(sas.values) where sas[sa.localSPI] != nil {
            tick(sa, now: now)
        }
        for c in children {
            guard let current = children.first(where: { $0.inboundSPI == c.inboundSPI && $0.remote == c.remote }) else {
                continue
            }
            if now >= current.installedAt.saturatingAdd(current.lifetime.milliseconds) {
                audit(.notice, "ike-expired", "child SA lifetime ended",
                      [("policy", String(current.policyID)), ("spi-in", String(current.inboundSPI, radix: 16))])
                deleteChild(current, now: now)
            } else if !current.rekeying, !current.replaced, now >= current.rekeyAt,
                      let sa = sas[current.ikeSPI], sa.isEstablished, policy(current.policyID) != nil {
                markChild(current.inboundSPI, remote: current.remote) { $0.rekeying = true }
                audit(.informational, "ike-rekey", "rekeying a child SA before its lifetime ends",
                      [("policy", String(current.policyID)), ("ike", "v2")])
                enqueue(sa, .createChild(policyID: current.policyID, rekeying: current.inboundSPI), now: now)
            }
        }
        return take()
    }

    private func tick(_ sa: IKEv2SA, now: UInt64) {
        if let out = sa.outstanding, now >= out.nextAt {
            if out.sent >= out.maximumTries {
                giveUp(sa, out, now: now)
                return
            }
            for d in out.datagrams {
                actions.append(.send(d, fromPort: sa.localPort, to: sa.remote, source: sa.localAddress))
            }
            var next = out
            next.sent += 1
            if case .liveness = out.kind {} else { next.interval = next.interval.saturatingAdd(next.interval) }
            next.nextAt = now.saturatingAdd(next.interval)
            sa.outstanding = next
        }
        if sa.state == .initAnswered, now >= sa.createdAt.saturatingAdd(IKEv2Admission.halfOpenTimeout) {
            audit(.informational, "ike-abandoned", "IKE_SA_INIT answered but no IKE_AUTH followed",
                  [("peer", sa.remote.description), ("ike", "v2")], limitedBy: "ike-abandoned")
            removeSA(sa)
            return
        }
        if sa.rekeyedInto != nil, sa.isEstablished {
            // Replaced by a rekey the peer started: it deletes this SA; if it never does, it goes now.
            if now >= sa.expiresAt { removeSA(sa) }
            return
        }
        guard sa.isEstablished else { return }
        if sa.natDetected, sa.localPort == Self.natTPort,
           now >= max(sa.lastKeepalive, sa.establishedAt ?? now).saturatingAdd(Self.keepaliveInterval) {
            sa.lastKeepalive = now
            actions.append(.send([0xff], fromPort: Self.natTPort, to: sa.remote, source: sa.localAddress))
        }
        let interval = sa.peer.dpdInterval.milliseconds
        if interval > 0, sa.outstanding == nil, sa.queue.isEmpty, sa.rekeyedInto == nil,
           now >= sa.lastHeard.saturatingAdd(interval) {
            enqueue(sa, .liveness, now: now)
        }
        if sa.rekeyedInto == nil, now >= sa.expiresAt {
            audit(.notice, "ike-expired", "IKE SA lifetime ended", [("peer", sa.remote.description), ("ike", "v2")])
            deleteIKESA(sa, now: now)
            return
        }
        if sa.rekeyedInto == nil, now >= sa.rekeyAt {
            sa.rekeyAt = .max
            audit(.informational, "ike-rekey", "rekeying the IKE SA before its lifetime ends",
                  [("peer", sa.remote.description), ("ike", "v2")])
            enqueue(sa, .rekeyIKE, now: now)
        }
    }

    /// A request ran out of retransmissions: the exchange failed, and for an established SA the
    /// peer is taken for dead (RFC 7296 2.4).
    private func giveUp(_ sa: IKEv2SA, _ out: OutstandingRequest, now: UInt64) {
        sa.outstanding = nil
        switch out.kind {
        case .ikeSAInit, .ikeAuth:
            audit(.warning, "ike-timeout", "IKE SA negotiation timed out: no answer from the peer",
                  [("peer", sa.remote.description), ("state", sa.state.rawValue), ("ike", "v2")])
            failPolicies(sa.pendingPolicies + pendingPolicy(out.kind), now: now)
            removeSA(sa)
        case .liveness:
            audit(.warning, "ike-dpd",
                  "peer did not answer \(out.maximumTries) liveness checks: its SAs are removed",
                  [("peer", sa.remote.description), ("ike", "v2")])
            removeSAAndChildren(sa, now: now)
        default:
            audit(.warning, "ike-timeout", "no answer from the peer to an \(out.exchange) request: its SAs are removed",
                  [("peer", sa.remote.description), ("ike", "v2")])
            failPolicies(pendingPolicy(out.kind), now: now)
            removeSAAndChildren(sa, now: now)
        }
    }

    func pendingPolicy(_ kind: RequestKind) -> [Int] {
        switch kind {
        case .ikeAuth(let c?): return [c.policy.id]
        case .createChild(let c): return [c.policy.id]
        default: return []
        }
    }

    // MARK: state for printouts

    public func remotePeers(now: UInt64) -> [RemotePeerState] {
        sas.values.filter { $0.rekeyedInto == nil }.sorted { $0.createdAt < $1.createdAt }.map { sa in
            RemotePeerState(local: sa.localAddress, remote: sa.remote, state: sa.state.rawValue,
                            side: sa.originalInitiator ? "initiator" : "responder",
                            establishedSeconds: sa.establishedAt.map { now >= $0 ? (now - $0) / 1000 : 0 } ?? 0,
                            natTraversal: sa.natDetected, version: 2)
        }
    }

    public func phase2(policyID: Int) -> PolicyPhase2 {
        children.contains { $0.policyID == policyID } ? .established : .noPhase2
    }

    /// Policies with an established child SA, ascending (one pass, as IKEEngine's).
    public var establishedPolicyIDs: [Int] { Set(children.map(\.policyID)).sorted() }

    public var generatedPolicies: [Int: IKEPolicy] { book.policies }

    public var responderLoad: ResponderLoad { admission.load(halfOpen: admission.unverified + admission.verified) }

    // MARK: dispatch

    func dispatch(_ m: IKEv2Codec.Message, _ datagram: [UInt8], from: Endpoint, localPort: UInt16, now: UInt64) throws {
        let h = m.header
        guard let exchange = IKEv2Exchange(rawValue: h.exchange) else {
            audit(.warning, "ike-malformed", "unknown IKEv2 exchange type \(h.exchange)", [("peer", from.description)])
            return
        }
        if exchange == .ikeSAInit, !h.isResponse {
            guard h.responderSPI == 0, h.messageID == 0, h.fromOriginalInitiator else {
                throw NegotiationError.malformed("IKE_SA_INIT request with a responder SPI or message ID")
            }
            try respondToInit(m, datagram, from: from, localPort: localPort, now: now)
            return
        }
        // Our SPI is the responder's when the original initiator sent it, else the initiator's.
        let ours = h.fromOriginalInitiator ? h.responderSPI : h.initiatorSPI
        guard let sa = sas[ours], sa.remote.address == from.address,
              sa.originalInitiator != h.fromOriginalInitiator else {
            audit(.informational, "ike-unknown", "IKEv2 message for an unknown IKE SA dropped",
                  [("peer", from.description)], limitedBy: "ike-unknown")
            return
        }
        let theirs = h.fromOriginalInitiator ? h.initiatorSPI : h.responderSPI
        if exchange == .ikeSAInit {
            guard sa.state == .initSent, h.isResponse, h.messageID == 0 else { return }
            try initiatorGotInit(sa, m, datagram, from: from, now: now)
            return
        }
        guard sa.remoteSPI == theirs else { return }
        if h.isResponse {
            guard let out = sa.outstanding, out.messageID == h.messageID, out.exchange == exchange else { return }
            guard let inner = try unprotect(sa, m, datagram, now: now) else { return }
            followPeer(sa, from: from, localPort: localPort)
            sa.outstanding = nil
            try handleResponse(sa, out, inner, now: now)
            pump(sa, now: now)
        } else {
            if h.messageID &+ 1 == sa.peerNextRequestID, sa.peerNextRequestID > 0 {
                // A retransmission: our answer went missing (for fragments, answer the first only).
                if m.encrypted?.fragment.map({ $0.number == 1 }) ?? true {
                    for d in sa.lastResponse {
                        actions.append(.send(d, fromPort: sa.localPort, to: sa.remote, source: sa.localAddress))
                    }
                }
                return
            }
            guard h.messageID == sa.peerNextRequestID else { return }
            guard let inner = try unprotect(sa, m, datagram, now: now) else { return }
            followPeer(sa, from: from, localPort: localPort)
            sa.peerNextRequestID &+= 1
            sa.lastResponse = []
            handleRequest(sa, exchange, h.messageID, inner, now: now)
            pump(sa, now: now)
        }
    }

    /// An authenticated message on 4500 (or from a new port behind a NAT): answer there from now on.
    func followPeer(_ sa: IKEv2SA, from: Endpoint, localPort: UInt16) {
        if localPort == Self.natTPort { sa.localPort = Self.natTPort }
        if sa.natDetected || localPort == Self.natTPort { sa.remote.port = from.port }
    }

    /// Checks and decrypts the SK payload (reassembling fragments); nil while fragments are missing.
    func unprotect(_ sa: IKEv2SA, _ m: IKEv2Codec.Message, _ datagram: [UInt8],
                   now: UInt64) throws -> [IKEv2Codec.Parsed]? {
        guard let encrypted = m.encrypted, let incoming = sa.incoming else {
            let name = IKEv2Exchange(rawValue: m.header.exchange).map { "\($0)" } ?? "a message"
            throw NegotiationError.malformed("\(name) without an encrypted payload")
        }
        let plain: [UInt8]
        do { plain = try incoming.open(datagram, encrypted) } catch {
            audit(.warning, "ike-malformed", "IKEv2 message failed its integrity check: dropped",
                  [("peer", sa.remote.description)])
            return nil
        }
        sa.lastHeard = now
        guard let fragment = encrypted.fragment else {
            return try IKEv2Codec.decodeInner(first: encrypted.firstInner, body: plain)
        }
        // RFC 7383 2.6: fragments of one message share its ID; each was authenticated above.
        var buffer = sa.fragments
        if buffer == nil || buffer?.messageID != m.header.messageID || buffer?.isResponse != m.header.isResponse
            || buffer?.total != fragment.total {
            buffer = FragmentBuffer(messageID: m.header.messageID, isResponse: m.header.isResponse,
                                    total: fragment.total)
        }
        guard var b = buffer else { return nil }
        if b.parts[fragment.number] == nil {
            guard b.bytes + plain.count <= FragmentBuffer.maximumBytes else {
                sa.fragments = nil
                throw NegotiationError.malformed("fragmented message longer than \(FragmentBuffer.maximumBytes) bytes")
            }
            b.parts[fragment.number] = plain
            b.bytes += plain.count
            if fragment.number == 1 { b.firstInner = encrypted.firstInner }
        }
        guard b.parts.count == Int(b.total) else {
            sa.fragments = b
            return nil
        }
        sa.fragments = nil
        var whole: [UInt8] = []
        for n in 1...b.total { whole += b.parts[n] ?? [] }
        audit(.informational, "ike-fragments", "reassembled an IKEv2 message from \(b.total) fragments (RFC 7383)",
              [("peer", sa.remote.description), ("bytes", String(whole.count))], limitedBy: "ike-fragments")
        return try IKEv2Codec.decodeInner(first: b.firstInner, body: whole)
    }

    // MARK: sending

    /// Queues work for the window and sends it when the window is free.
    func enqueue(_ sa: IKEv2SA, _ request: PendingRequest, now: UInt64) {
        guard sa.queue.count < Self.maximumQueued else {
            audit(.warning, "ike-busy", "too many requests waiting for the peer: one is dropped",
                  [("peer", sa.remote.description), ("ike", "v2")])
            return
        }
        sa.queue.append(request)
        pump(sa, now: now)
    }

    /// Sends the next queued request if nothing is outstanding.
    func pump(_ sa: IKEv2SA, now: UInt64) {
        while sa.outstanding == nil, sa.isEstablished || sa.state == .deleting, !sa.queue.isEmpty,
              sas[sa.localSPI] != nil {
            let next = sa.queue.removeFirst()
            start(sa, next, now: now)
        }
    }

    /// Encrypts and sends a request; it is retransmitted until its response arrives.
    func sendRequest(_ sa: IKEv2SA, _ exchange: IKEv2Exchange, _ payloads: [IKEv2Payload], kind: RequestKind,
                     now: UInt64, tries: Int = IKEv2Engine.maximumTries,
                     interval: UInt64 = IKEv2Engine.firstRetransmit) {
        let id = sa.nextRequestID
        sa.nextRequestID &+= 1
        guard let datagrams = protect(sa, exchange, id, response: false, payloads) else { return }
        for d in datagrams { actions.append(.send(d, fromPort: sa.localPort, to: sa.remote, source: sa.localAddress)) }
        sa.outstanding = OutstandingRequest(messageID: id, exchange: exchange, kind: kind, datagrams: datagrams,
                                            nextAt: now.saturatingAdd(interval), interval: interval,
                                            maximumTries: tries)
    }

    /// Encrypts and sends the response to the peer's request `id`, kept for its retransmissions.
    func sendResponse(_ sa: IKEv2SA, _ exchange: IKEv2Exchange, _ id: UInt32, _ payloads: [IKEv2Payload]) {
        guard let datagrams = protect(sa, exchange, id, response: true, payloads) else { return }
        sa.lastResponse = datagrams
        for d in datagrams { actions.append(.send(d, fromPort: sa.localPort, to: sa.remote, source: sa.localAddress)) }
    }

    /// The datagrams of one protected message: one SK payload, or SKF fragments when the peer
    /// reassembles and the message would exceed `fragmentLimit` (RFC 7383).
    func protect(_ sa: IKEv2SA, _ exchange: IKEv2Exchange, _ id: UInt32, response: Bool,
                 _ payloads: [IKEv2Payload]) -> [[UInt8]]? {
        guard let out = sa.outgoing else { return nil }
        var flags: UInt8 = sa.originalInitiator ? IKEv2Header.initiatorFlag : 0
        if response { flags |= IKEv2Header.responseFlag }
        let header = IKEv2Header(initiatorSPI: sa.spiI, responderSPI: sa.spiR, nextPayload: 0,
                                 exchange: exchange.rawValue,
                                 flags: flags, messageID: id)
        let (first, inner) = IKEv2Codec.encode(payloads)
        let marker = sa.localPort == Self.natTPort ? 4 : 0
        let whole = IKEv2Header.size + 4 + inner.count + out.overhead() + marker
        do {
            if !sa.peerFragmentation || whole <= fragmentLimit {
                let m = try out.seal(header: header, plaintextPayloads: [], firstInner: first, fragment: nil,
                                     inner: inner,
                                     iv: iv(out))
                return [framed(m, sa)]
            }
            let room = fragmentLimit - IKEv2Header.size - 8 - out.overhead() - marker
            let chunk = max(64, room - room % max(1, out.blockSize))
            let pieces = stride(from: 0, to: inner.count, by: chunk)
                .map { Array(inner[$0..<min($0 + chunk, inner.count)]) }
            guard pieces.count <= Int(IKEv2Codec.maximumFragments) else { return nil }
            return try pieces.enumerated().map { i, piece in
                try framed(out.seal(header: header, plaintextPayloads: [], firstInner: i == 0 ? first : 0,
                                    fragment: (UInt16(i + 1), UInt16(pieces.count)), inner: piece, iv: iv(out)), sa)
            }
        } catch {
            audit(.error, "ike-failed", "cannot protect an IKEv2 message: \(error)", [("peer", sa.remote.description)])
            return nil
        }
    }

    func iv(_ p: SKProtection) -> [UInt8] { random(p.ivLength) }

    func framed(_ message: [UInt8], _ sa: IKEv2SA) -> [UInt8] {
        sa.localPort == Self.natTPort ? [0, 0, 0, 0] + message : message
    }

    /// An unprotected message (IKE_SA_INIT, and answers to it).
    func plainMessage(spiI: UInt64, spiR: UInt64, exchange: IKEv2Exchange, flags: UInt8, id: UInt32,
                      _ payloads: [IKEv2Payload]) -> [UInt8] {
        let (first, body) = IKEv2Codec.encode(payloads)
        let header = IKEv2Header(initiatorSPI: spiI, responderSPI: spiR, nextPayload: first,
                                 exchange: exchange.rawValue,
                                 flags: flags, messageID: id)
        return header.encoded(totalLength: IKEv2Header.size + body.count) + body
    }

    // MARK: helpers

    func take() -> [IKEAction] { defer { actions.removeAll() }; return actions }

    /// An audit line; warnings, errors and lines given `limitedBy` are rate-limited by keyway-ike
    /// under a fixed key (never text a peer chose).
    func audit(_ level: IKEAudit.Level, _ msgID: String, _ text: String, _ fields: [(String, String)] = [],
               limitedBy key: String? = nil) {
        var note = IKEAudit(level, msgID, text, fields)
        note.rateLimitKey = key ?? (level == .warning || level == .error ? msgID : nil)
        actions.append(.audit(note))
    }

    func randomUInt32() -> UInt32 { random(4).reduce(0) { $0 << 8 | UInt32($1) } }

    /// A fresh, unused, non-zero IKE SPI.
    func newIKESPI() -> UInt64 {
        var spi: UInt64 = 0
        for _ in 0..<16 {
            spi = UInt64(bytes: random(8))
            if spi != 0, sas[spi] == nil { return spi }
        }
        return spi == 0 ? 1 : spi
    }

    /// A child SPI of ours: at least 256 (RFC 4303 2.1) and not in use.
    func newChildSPI() -> UInt32 {
        var spi: UInt32 = 0
        for _ in 0..<64 {
            spi = randomUInt32()
            if spi >= 256, !children.contains(where: { $0.inboundSPI == spi }) { return spi }
        }
        return max(spi, 256)
    }

    func newDiffieHellman(_ group: DHGroup) throws -> DiffieHellman {
        var seed = random(DiffieHellman.seedLength(group: group))
        return try DiffieHellman(group: group, seed: Secret(consuming: &seed))
    }

    /// A jittered point at about 80% of `lifetime` (between 70% and 80%), so both ends rarely rekey at once.
    func rekeyPoint(from: UInt64, lifetime: Seconds) -> UInt64 {
        let ms = lifetime.milliseconds
        let eighty = ms / 10 * 8
        let spread = ms / 10
        let jitter = spread == 0 ? 0 : UInt64(randomUInt32()) % spread
        return from.saturatingAdd(eighty - jitter)
    }

    func policy(_ id: Int) -> IKEPolicy? { configuration.policies.first { $0.id == id } ?? book.policies[id] }

    func failPolicies(_ ids: [Int], now: UInt64) {
        for id in ids where id < IKEEngine.firstGeneratedPolicyID {
            let delay = min((retryAt[id]?.delay ?? 5_000) * 2, 300_000)
            retryAt[id] = (now.saturatingAdd(delay), delay)
        }
    }

    /// Forgets an IKE SA (its children stay unless removed separately).
    func removeSA(_ sa: IKEv2SA) {
        guard sas.removeValue(forKey: sa.localSPI) != nil else { return }
        admission.release(sa)
        if !sa.originalInitiator { answered[AnsweredKey(initiatorSPI: sa.remoteSPI, address: sa.remote.address)] = nil }
        if !pendingSignatures.isEmpty { pendingSignatures = pendingSignatures.filter { $0.value.spi != sa.localSPI } }
    }

    /// The IKE SA and every child it owns, without telling the peer (it is gone or said so itself).
    func removeSAAndChildren(_ sa: IKEv2SA, now: UInt64) {
        for c in children where c.ikeSPI == sa.localSPI { removeChild(c) }
        removeSA(sa)
    }

    func samePeer(_ a: IKEPeer, _ b: IKEPeer) -> Bool {
        a.port == b.port && a.secret == b.secret && a.hash == b.hash && a.encryption == b.encryption
            && a.groups == b.groups && a.natTraversal == b.natTraversal && a.myID == b.myID && a.remoteID == b.remoteID
            && a.signature?.certificateName == b.signature?.certificateName
            && a.signature?.remoteCertificate.der == b.signature?.remoteCertificate.der
            && a.signature?.localCertificate == b.signature?.localCertificate && a.generatePolicy == b.generatePolicy
    }

    /// Our address towards a remote: the sa-src-address of a policy that goes there.
    func localAddress(toward remote: UInt32) -> UInt32 {
        if let p = configuration.policies.first(where: { $0.saDestination == remote }) { return p.saSource }
        if let peer = configuration.peer(for: remote),
           let p = configuration.policies.first(where: { peer.contains($0.saDestination) }) { return p.saSource }
        return 0
    }
}

/// A signature asked of the monitor: the IKE SA (our SPI) and what to do with the answer.
struct PendingSignature {
    let spi: UInt64
    let then: ((SignatureScheme, [UInt8])?, UInt64) -> Void
}

struct AnsweredKey: Hashable {
    var initiatorSPI: UInt64
    var address: UInt32
}
