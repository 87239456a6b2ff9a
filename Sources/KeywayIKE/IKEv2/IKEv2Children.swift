import KeywayCrypto
import KeywayVocabulary

/// Child SAs (RFC 7296 1.3, 2.8, 2.9, 2.17): the first one in IKE_AUTH, further ones and child
/// rekeys (REKEY_SA, PFS with a KE) in CREATE_CHILD_SA, the IKE SA's own rekey with its children
/// moved over, and simultaneous rekeys resolved by the lowest nonce (2.8.1, 2.8.2).
extension IKEv2Engine {
    func childNotify(_ error: NegotiationError) -> IKEv2Notify {
        switch error {
        case .noProposal: return .noProposalChosen
        case .tsUnacceptable, .invalidID: return .tsUnacceptable
        case .authentication, .badHash: return .authenticationFailed
        case .malformed: return .invalidSyntax
        }
    }

    // MARK: requests we start

    func start(_ sa: IKEv2SA, _ request: PendingRequest, now: UInt64) {
        switch request {
        case .createChild(let policyID, let rekeying):
            startCreateChild(sa, policyID: policyID, rekeying: rekeying, now: now)
        case .rekeyIKE:
            startRekeyIKE(sa, now: now)
        case .deleteChildren(let proto, let spis):
            let p: UInt8 = proto == 51 ? IKEv2Protocol.ah.rawValue : IKEv2Protocol.esp.rawValue
            sendRequest(sa, .informational, [.delete(protocolID: p, spiSize: 4, spis: spis.map(\.bytes))],
                        kind: .deleteChildren, now: now)
        case .deleteIKE:
            sendRequest(sa, .informational, [.delete(protocolID: IKEv2Protocol.ike.rawValue, spiSize: 0, spis: [])],
                        kind: .deleteIKE, now: now)
        case .liveness:
            let interval = max(sa.peer.dpdInterval.milliseconds, 1_000)
            sendRequest(sa, .informational, [], kind: .liveness, now: now, tries: max(1, sa.peer.dpdMaximumFailures),
                        interval: interval)
        }
    }

    func startCreateChild(_ sa: IKEv2SA, policyID: Int, rekeying: UInt32?, now: UInt64) {
        guard let policy = policy(policyID), sa.isEstablished else { return }
        if let rekeying, !children.contains(where: { $0.inboundSPI == rekeying && !$0.replaced }) { return }
        if rekeying == nil, children.contains(where: { $0.policyID == policyID && !$0.replaced }) { return }
        let neg = ChildNegotiation(policy: policy, inboundSPI: newChildSPI(), rekeying: rekeying)
        neg.nonce = random(32)
        neg.group = policy.pfsGroup
        do {
            if let g = neg.group { neg.dh = try newDiffieHellman(g) }
        } catch {
            audit(.error, "ike-failed", "cannot start CREATE_CHILD_SA: \(error)", [("policy", String(policyID))])
            return
        }
        var payloads: [IKEv2Payload] = []
        if let rekeying, let old = children.first(where: { $0.inboundSPI == rekeying }) {
            payloads.append(.notify(protocolID: old.proto == 51
                                        ? IKEv2Protocol.ah.rawValue : IKEv2Protocol.esp.rawValue,
                                    type: IKEv2Notify.rekeySA.rawValue, spi: rekeying.bytes, data: []))
        }
        payloads += [.sa(policy.childProposals(spi: neg.inboundSPI, withGroup: neg.group)), .nonce(neg.nonce)]
        if let dh = neg.dh, let g = neg.group {
            payloads.append(.keyExchange(group: UInt16(g.rawValue), data: dh.publicValue))
        }
        payloads += [.trafficSelectors(initiator: true, [policy.sourceRange.payload]),
                     .trafficSelectors(initiator: false, [policy.destinationRange.payload])]
        if !policy.tunnel {
            payloads.append(.notify(protocolID: 0, type: IKEv2Notify.useTransportMode.rawValue, spi: [], data: []))
        }
        sendRequest(sa, .createChildSA, payloads, kind: .createChild(neg), now: now)
        audit(.informational, "ike-child-start",
              rekeying == nil ? "child SA negotiation started" : "child SA rekey started",
              [("policy", String(policyID)), ("peer", sa.remote.description),
               ("proposal", policy.childProposalDescription),
               ("ike", "v2")])
    }

    /// The response to our IKE_AUTH (first child) or CREATE_CHILD_SA: check, install, and for a
    /// rekey settle which SA survives.
    func initiatorGotChild(_ sa: IKEv2SA, _ neg: ChildNegotiation, _ inner: [IKEv2Codec.Parsed],
                           keNonce: Void?, nonces: ([UInt8], [UInt8]), now: UInt64) {
        var proposals: [IKEv2Proposal]?, tsi: [IKEv2TrafficSelector]?, tsr: [IKEv2TrafficSelector]?
        var ke: (UInt16, [UInt8])?, transport = false, error: UInt16?
        for p in inner {
            switch p.payload {
            case .sa(let props): proposals = props
            case .trafficSelectors(true, let t): tsi = t
            case .trafficSelectors(false, let t): tsr = t
            case .keyExchange(let g, let d): ke = (g, d)
            case .notify(_, IKEv2Notify.useTransportMode.rawValue, _, _): transport = true
            case .notify(_, let type, _, _) where type < IKEv2Notify.firstStatus: error = error ?? type
            default: break
            }
        }
        let policy = neg.policy
        let fail = { [unowned self] (reason: String, notify: String) in
            self.audit(.warning, "ike-failed", "child SA negotiation failed: \(reason)",
                       [("peer", sa.remote.description), ("policy", String(policy.id)), ("notify", notify),
                        ("ike", "v2")])
            self.failPolicies([policy.id], now: now)
            if let old = neg.rekeying { self.markChild(old, remote: sa.remote.address) { $0.rekeying = false } }
        }
        guard let proposals, let tsi, let tsr else {
            let name = error.map(IKEv2Notify.name) ?? "no SA and traffic selectors in the answer"
            audit(.warning, "ike-peer-refused", "peer refused the child SA: \(name)",
                  [("peer", sa.remote.description), ("policy", String(policy.id)), ("ike", "v2")])
            failPolicies([policy.id], now: now)
            if let old = neg.rekeying {
                markChild(old, remote: sa.remote.address) { $0.rekeying = false }
                // The peer is deleting it, or never had it: a new one for the policy, not another rekey.
                if error == IKEv2Notify.childSANotFound.rawValue {
                    markChild(old, remote: sa.remote.address) { $0.replaced = true }
                }
            }
            return
        }
        guard let (choice, outbound) = policy.acceptChild(proposals, group: neg.group), outbound >= 256 else {
            fail("the peer chose \(proposals.map(IKEv2Transforms.describe).joined(separator: "; ")), "
                 + "which we did not offer",
                 "NO_PROPOSAL_CHOSEN")
            return
        }
        let ours = [policy.sourceRange], theirs = [policy.destinationRange]
        let gotI = tsi.compactMap(SelectorRange.init), gotR = tsr.compactMap(SelectorRange.init)
        guard gotI == ours, gotR == theirs else {
            fail("the peer narrowed the traffic selectors to \(describe(gotI)) <=> \(describe(gotR)); "
                 + "policy \(policy.id) "
                 + "needs \(describe(ours)) <=> \(describe(theirs))", "TS_UNACCEPTABLE")
            return
        }
        guard transport == !policy.tunnel else {
            fail("the peer answered in \(transport ? "transport" : "tunnel") mode; policy \(policy.id) is "
                 + (policy.tunnel ? "tunnel" : "transport"), "NO_PROPOSAL_CHOSEN")
            return
        }
        var pfs: Secret?
        if let dh = neg.dh {
            guard let ke, ke.0 == UInt16(dh.group.rawValue), let secret = try? dh.sharedSecret(with: ke.1) else {
                fail("the peer's PFS key exchange is missing or invalid", "INVALID_SYNTAX")
                return
            }
            pfs = secret
        }
        guard let installed = installChild(sa, policy: policy, choice: choice, inbound: neg.inboundSPI,
                                           outbound: outbound,
                                           nonces: nonces, pfs: pfs, weInitiated: true, now: now) else { return }
        guard let old = neg.rekeying, let previous = children.first(where: { $0.inboundSPI == old }) else { return }
        // RFC 7296 2.8.1: if the peer rekeyed the same SA meanwhile, the SA made by the exchange with
        // the lowest of the four nonces is redundant, and whoever started that exchange deletes it.
        if let collision = previous.collision {
            let mine = [nonces.0, nonces.1]
            if lowest(mine + collision.nonces).isMine(count: 2) {
                audit(.notice, "ike-rekey-collision",
                      "simultaneous child rekey: ours holds the lowest nonce, so its SA goes",
                      [("policy", String(policy.id)), ("spi-in", String(installed.inboundSPI, radix: 16))])
                markChild(old, remote: sa.remote.address) { $0.replaced = true; $0.rekeying = false }
                deleteChild(installed, now: now)
            } else {
                audit(.notice, "ike-rekey-collision",
                      "simultaneous child rekey: the peer's SA is redundant and ours survives",
                      [("policy", String(policy.id)), ("spi-in", String(installed.inboundSPI, radix: 16))])
                deleteChild(previous, now: now)
            }
        } else {
            deleteChild(previous, now: now)
        }
    }

    /// Which of several nonces is lowest (compared as unsigned big-endian numbers of their bytes).
    func lowest(_ nonces: [[UInt8]]) -> Int {
        var best = 0
        for i in nonces.indices.dropFirst() where nonces[i].lexicographicallyPrecedes(nonces[best]) { best = i }
        return best
    }

    // MARK: answering

    /// The responder's child SA: a policy for the traffic selectors (narrowed to it), a proposal
    /// from its proposal, PFS when it says so. Returns the payloads to answer with and what to
    /// install once the answer is sent.
    func respondChild(_ sa: IKEv2SA, proposals: [IKEv2Proposal], tsi: [IKEv2TrafficSelector],
                      tsr: [IKEv2TrafficSelector],
                      transport: Bool, nonces: ([UInt8], [UInt8]), peerKE: (UInt16, [UInt8])?, inIKEAuth: Bool,
                      rekeying: IKEv2Child?,
                      now: UInt64) throws -> (payloads: [IKEv2Payload], install: (UInt64) -> Void) {
        guard children.count < Self.maximumChildren,
              children.filter({ $0.ikeSPI == sa.localSPI }).count < Self.maximumChildrenPerSA else {
            throw NegotiationError.noProposal("too many child SAs with this peer")
        }
        let initiatorSide = tsi.compactMap(SelectorRange.init), responderSide = tsr.compactMap(SelectorRange.init)
        let policy = try selectPolicy(sa, initiatorSide: initiatorSide, responderSide: responderSide,
                                      transport: transport, rekeying: rekeying)
        let group: DHGroup? = inIKEAuth ? nil : policy.pfsGroup
        let choice: IKEv2ChildChoice, chosen: IKEv2Proposal, outbound: UInt32
        switch policy.chooseChild(proposals, group: group, ignoreGroups: inIKEAuth) {
        case .success(let (p, c, spi)): (chosen, choice, outbound) = (p, c, spi)
        case .failure(let error): throw error
        }
        guard outbound >= 256 else { throw NegotiationError.malformed("the peer's SPI \(outbound) is reserved") }
        var pfs: Secret?, keyPayload: [IKEv2Payload] = []
        if let group {
            guard let peerKE else { throw NegotiationError.malformed("PFS group \(group.name) without a KE payload") }
            guard peerKE.0 == UInt16(group.rawValue) else { throw InvalidKE(group: group) }
            let dh = try newDiffieHellman(group)
            do { pfs = try dh.sharedSecret(with: peerKE.1) } catch {
                throw NegotiationError.malformed("the peer's \(group.name) public value refused: \(error)")
            }
            keyPayload = [.keyExchange(group: UInt16(group.rawValue), data: dh.publicValue)]
        }
        let inbound = newChildSPI()
        var answer = chosen
        answer.spi = inbound.bytes
        var payloads: [IKEv2Payload] = [.sa([answer])]
        if !inIKEAuth { payloads += [.nonce(nonces.1)] + keyPayload }
        payloads += [.trafficSelectors(initiator: true, [policy.destinationRange.payload]),
                     .trafficSelectors(initiator: false, [policy.sourceRange.payload])]
        if !policy.tunnel {
            payloads.append(.notify(protocolID: 0, type: IKEv2Notify.useTransportMode.rawValue, spi: [], data: []))
        }
        let install: (UInt64) -> Void = { [unowned self] now in
            guard let made = self.installChild(sa, policy: policy, choice: choice, inbound: inbound, outbound: outbound,
                                               nonces: nonces, pfs: pfs, weInitiated: false, now: now),
                  let old = rekeying else { return }
            self.markChild(old.inboundSPI, remote: old.remote) { c in
                if c.rekeying {
                    // Our own rekey of it is under way: remember this one to settle the collision.
                    c.collision = (made.inboundSPI, [nonces.0, nonces.1])
                } else {
                    // The peer started this rekey, so the peer deletes the old SA.
                    c.replaced = true
                }
            }
        }
        return (payloads, install)
    }

    /// The policy a peer's traffic selectors ask for: for a rekey, the old child's; otherwise the
    /// first configured policy with this peer that they cover (narrowed to it), else one
    /// generate-policy may make for exactly what they propose.
    func selectPolicy(_ sa: IKEv2SA, initiatorSide: [SelectorRange], responderSide: [SelectorRange], transport: Bool,
                      rekeying: IKEv2Child?) throws -> IKEPolicy {
        guard !initiatorSide.isEmpty, !responderSide.isEmpty else {
            throw NegotiationError.tsUnacceptable("the peer proposed no IPv4 traffic selectors")
        }
        if let rekeying {
            guard let p = policy(rekeying.policyID),
                  p.fits(initiatorSide: initiatorSide, responderSide: responderSide) else {
                throw NegotiationError.tsUnacceptable("the rekey's traffic selectors no longer cover policy "
                                                      + "\(rekeying.policyID)")
            }
            return p
        }
        let candidates = configuration.policies.filter { p in
            (p.saDestination == sa.remote.address || sa.peer.contains(p.saDestination)) && !(p.esp && p.ah)
        }
        if let p = candidates.first(where: { $0.fits(initiatorSide: initiatorSide, responderSide: responderSide) }) {
            guard p.tunnel == !transport else {
                throw NegotiationError.noProposal("the peer asked for \(transport ? "transport" : "tunnel") mode; "
                                                  + "policy \(p.id) is \(p.tunnel ? "tunnel" : "transport")")
            }
            return p
        }
        let proposed = "\(describe(responderSide)) <=> \(describe(initiatorSide))"
        if sa.peer.generatePolicy, let theirs = initiatorSide.first?.prefix, let ours = responderSide.first?.prefix,
           let first = initiatorSide.first, first.proto == responderSide.first?.proto {
            let pending = sas.values.flatMap { s in
                s.outstanding.map { pendingPolicy($0.kind) } ?? []
            }.compactMap { book.policies[$0] }
            var p = try book.policy(peer: sa.peer, configuration: configuration, remote: sa.remote.address,
                                    local: sa.localAddress, ours: IPv4Prefix(ours.address, length: ours.length),
                                    ourPort: ours.port, theirs: IPv4Prefix(theirs.address, length: theirs.length),
                                    theirPort: theirs.port, proto: first.proto == 0 ? nil : first.proto,
                                    tunnel: !transport, pending: pending)
            p.dynamic = true
            return p
        }
        let configured = candidates.map {
            "policy \($0.id) \(describe([$0.sourceRange])) <=> \(describe([$0.destinationRange]))"
        }
        throw NegotiationError.tsUnacceptable("peer proposed \(proposed); "
                                              + (configured.isEmpty ? "no policy names this peer"
                                                                    : configured.joined(separator: ", ")))
    }

    // MARK: installing and removing

    /// KEYMAT (RFC 7296 2.17): the initiator's outbound keys first, then the responder's; each
    /// the cipher key (and salt) then the integrity key.
    @discardableResult
    func installChild(_ sa: IKEv2SA, policy: IKEPolicy, choice: IKEv2ChildChoice, inbound: UInt32, outbound: UInt32,
                      nonces: ([UInt8], [UInt8]), pfs: Secret?, weInitiated: Bool, now: UInt64) -> IKEv2Child? {
        guard let keys = sa.keys else { return nil }
        let encLength = choice.proto == .esp ? choice.encryption.keyMaterialLength : 0
        let one = encLength + choice.integrity.keyLength
        let km: Secret
        do { km = try keys.keymat(length: 2 * one, pfs: pfs, ni: nonces.0, nr: nonces.1) } catch {
            audit(.error, "ike-failed", "cannot derive child SA keys: \(error)", [("policy", String(policy.id))])
            return nil
        }
        let first = km.slice(0..<one), second = km.slice(one..<(2 * one))
        let (outKeys, inKeys) = weInitiated ? (first, second) : (second, first)
        let proto: UInt8 = choice.proto == .esp ? 50 : 51
        let lifetime = policy.lifetime.value == 0
            ? Seconds.maximumLifetime : policy.lifetime.capped(at: .maximumLifetime)
        let udp = sa.natDetected && choice.proto == .esp
        var out: [NegotiatedSA] = []
        for (isInbound, spi, material) in [(true, inbound, inKeys), (false, outbound, outKeys)] {
            out.append(NegotiatedSA(policyID: policy.id, inbound: isInbound, proto: proto, spi: spi,
                                    source: isInbound ? sa.remote.address : sa.localAddress,
                                    destination: isInbound ? sa.localAddress : sa.remote.address,
                                    tunnel: policy.tunnel, encryption: choice.proto == .esp ? choice.encryption : .null,
                                    integrity: choice.integrity, encryptionKey: material.slice(0..<encLength),
                                    integrityKey: material.slice(encLength..<one), lifetime: lifetime, lifetimeBytes: 0,
                                    generatedPolicy: nil, udpLocalPort: udp ? sa.localPort : nil,
                                    udpRemotePort: udp ? sa.remote.port : nil, pfs: pfs != nil))
        }
        if policy.dynamic {
            let isNew = book.policies[policy.id] == nil
            book.policies[policy.id] = policy
            for i in out.indices { out[i].generatedPolicy = policy }
            if isNew {
                audit(.notice, "ike-generated-policy", "policy generated for the peer (generate-policy=yes)",
                      [("policy", String(policy.id)),
                       ("src-address", "\(IPv4Address.text(policy.source))/\(policy.sourceLength)"),
                       ("dst-address", "\(IPv4Address.text(policy.destination))/\(policy.destinationLength)"),
                       ("peer", sa.remote.description)])
            }
        }
        actions.append(.install(out))
        let child = IKEv2Child(policyID: policy.id, ikeSPI: sa.localSPI, inboundSPI: inbound, outboundSPI: outbound,
                               proto: proto, local: sa.localAddress, remote: sa.remote.address, installedAt: now,
                               lifetime: lifetime, rekeyAt: rekeyPoint(from: now, lifetime: lifetime))
        children.append(child)
        retryAt[policy.id] = nil
        audit(.notice, "ike-child-established", "child SA established: SAs installed",
              [("policy", String(policy.id)), ("peer", sa.remote.description), ("proposal", choice.description),
               ("spi-in", String(inbound, radix: 16)), ("spi-out", String(outbound, radix: 16)),
               ("lifetime", lifetime.description), ("mode", policy.tunnel ? "tunnel" : "transport"),
               ("nat-t", udp ? "yes" : "no"), ("ike", "v2")])
        return child
    }

    func markChild(_ inbound: UInt32, remote: UInt32, _ change: (inout IKEv2Child) -> Void) {
        guard let i = children.firstIndex(where: { $0.inboundSPI == inbound && $0.remote == remote }) else { return }
        change(&children[i])
    }

    /// Takes a child out of the datapath (both directions), without telling the peer.
    func removeChild(_ c: IKEv2Child) {
        guard children.contains(where: { $0.inboundSPI == c.inboundSPI && $0.remote == c.remote }) else { return }
        children.removeAll { $0.inboundSPI == c.inboundSPI && $0.remote == c.remote }
        if book.policies[c.policyID] != nil, !children.contains(where: { $0.policyID == c.policyID }) {
            book.policies[c.policyID] = nil
        }
        actions.append(.remove([(spi: c.inboundSPI, proto: c.proto, destination: c.local),
                                (spi: c.outboundSPI, proto: c.proto, destination: c.remote)]))
    }

    /// Removes a child and tells the peer (INFORMATIONAL with a Delete of our inbound SPI).
    func deleteChild(_ c: IKEv2Child, now: UInt64) {
        removeChild(c)
        guard let sa = sas[c.ikeSPI], sa.isEstablished else { return }
        enqueue(sa, .deleteChildren(proto: c.proto, spis: [c.inboundSPI]), now: now)
    }

    /// Deletes an IKE SA and with it its children (RFC 7296 1.4.1: they close with it).
    func deleteIKESA(_ sa: IKEv2SA, now: UInt64) {
        for c in children where c.ikeSPI == sa.localSPI { removeChild(c) }
        guard sa.isEstablished else {
            failPolicies(sa.pendingPolicies, now: now)
            removeSA(sa)
            return
        }
        sa.state = .deleting
        sa.queue = [.deleteIKE]
        pump(sa, now: now)
    }

    // MARK: the IKE SA's rekey

    func startRekeyIKE(_ sa: IKEv2SA, now: UInt64) {
        guard sa.isEstablished, sa.rekeyedInto == nil, let suite = sa.suite else { return }
        do {
            let r = IKERekey(newSPI: newIKESPI(), nonce: random(32), dh: try newDiffieHellman(suite.group))
            sendRequest(sa, .createChildSA, [.sa([sa.peer.ikeProposal(spi: r.newSPI.bytes)]), .nonce(r.nonce),
                                             .keyExchange(group: UInt16(suite.group.rawValue), data: r.dh.publicValue)],
                        kind: .rekeyIKE(r), now: now)
        } catch {
            audit(.error, "ike-failed", "cannot start the IKE SA rekey: \(error)", [("peer", sa.remote.description)])
        }
    }

    /// A new IKE SA from a rekey: keyed from the old SK_d, in the old one's place (RFC 7296 2.18).
    func rekeyedSA(_ old: IKEv2SA, localSPI: UInt64, remoteSPI: UInt64, weInitiated: Bool, suite: IKEv2Suite,
                   shared: Secret, ni: [UInt8], nr: [UInt8], now: UInt64) throws -> IKEv2SA {
        guard let oldKeys = old.keys else { throw NegotiationError.malformed("no keys") }
        let sa = IKEv2SA(localSPI: localSPI, originalInitiator: weInitiated, remote: old.remote,
                         localAddress: old.localAddress, peer: old.peer, group: suite.group, state: .initAnswered,
                         now: now)
        sa.remoteSPI = remoteSPI
        sa.localPort = old.localPort
        sa.suite = suite
        sa.natTraversal = old.natTraversal
        sa.natDetected = old.natDetected
        sa.peerFragmentation = old.peerFragmentation
        sa.peerSignatureHashes = old.peerSignatureHashes
        sa.initiatorNonce = ni
        sa.responderNonce = nr
        let seed = try IKEv2Keys.rekeySKEYSEED(oldKeys.suite.prf, oldSKd: oldKeys.skD, sharedSecret: shared, ni: ni,
                                               nr: nr)
        sa.keys = try IKEv2Keys(suite: suite, skeyseed: seed, ni: ni, nr: nr, spiI: sa.spiI, spiR: sa.spiR)
        sas[localSPI] = sa
        established(sa, now: now)
        return sa
    }

    func moveChildren(from old: IKEv2SA, to new: IKEv2SA) {
        for i in children.indices where children[i].ikeSPI == old.localSPI { children[i].ikeSPI = new.localSPI }
        new.queue += old.queue.filter { if case .createChild = $0 { return true }; return false }
        old.queue.removeAll { if case .createChild = $0 { return true }; return false }
    }

    func initiatorGotRekeyIKE(_ sa: IKEv2SA, _ r: IKERekey, _ inner: [IKEv2Codec.Parsed], now: UInt64) {
        var proposals: [IKEv2Proposal]?, nonce: [UInt8]?, ke: (UInt16, [UInt8])?, error: UInt16?
        for p in inner {
            switch p.payload {
            case .sa(let props): proposals = props
            case .nonce(let n): nonce = n
            case .keyExchange(let g, let d): ke = (g, d)
            case .notify(_, let type, _, _) where type < IKEv2Notify.firstStatus: error = error ?? type
            default: break
            }
        }
        guard let proposals, let nonce, let ke, let suite = sa.peer.acceptIKE(proposals), suite.group == r.dh.group,
              ke.0 == UInt16(suite.group.rawValue), let spi = proposals.first?.spi, spi.count == 8,
              (16...256).contains(nonce.count) else {
            audit(.warning, "ike-peer-refused",
                  "peer refused the IKE SA rekey: \(error.map(IKEv2Notify.name) ?? "an answer we cannot use")",
                  [("peer", sa.remote.description), ("ike", "v2")])
            // Try again later, well before the hard lifetime.
            sa.rekeyAt = now.saturatingAdd(30_000)
            return
        }
        let new: IKEv2SA
        do {
            let shared = try r.dh.sharedSecret(with: ke.1)
            new = try rekeyedSA(sa, localSPI: r.newSPI, remoteSPI: UInt64(bytes: spi), weInitiated: true, suite: suite,
                                shared: shared, ni: r.nonce, nr: nonce, now: now)
        } catch {
            audit(.warning, "ike-failed", "IKE SA rekey failed: \(error)", [("peer", sa.remote.description)])
            sa.rekeyAt = now.saturatingAdd(30_000)
            return
        }
        if let collision = sa.collidingRekey, let theirs = sas[collision.newSPI] {
            // RFC 7296 2.8.2: the new SA from the exchange with the lowest nonce is redundant.
            if lowest([r.nonce, nonce] + collision.nonces).isMine(count: 2) {
                audit(.notice, "ike-rekey-collision",
                      "simultaneous IKE SA rekey: ours holds the lowest nonce, so it goes",
                      [("peer", sa.remote.description)])
                sa.rekeyedInto = theirs.localSPI
                sa.expiresAt = now.saturatingAdd(IKEv2Admission.halfOpenTimeout)
                deleteIKESA(new, now: now)
                return
            }
            audit(.notice, "ike-rekey-collision",
                  "simultaneous IKE SA rekey: the peer's SA is redundant, ours survives",
                  [("peer", sa.remote.description)])
            moveChildren(from: theirs, to: new)
            theirs.rekeyedInto = new.localSPI
            theirs.expiresAt = now.saturatingAdd(IKEv2Admission.halfOpenTimeout)
        }
        moveChildren(from: sa, to: new)
        sa.rekeyedInto = new.localSPI
        audit(.notice, "ike-rekeyed", "IKE SA rekeyed: its children moved to the new SA",
              [("peer", sa.remote.description), ("ike", "v2")])
        // We started the surviving rekey: the old SA is ours to delete.
        sa.state = .deleting
        sa.queue = [.deleteIKE]
    }

    // MARK: CREATE_CHILD_SA requests from the peer

    func responderCreateChild(_ sa: IKEv2SA, _ id: UInt32, _ inner: [IKEv2Codec.Parsed], now: UInt64) {
        var proposals: [IKEv2Proposal]?, nonce: [UInt8]?, ke: (UInt16, [UInt8])?
        var tsi: [IKEv2TrafficSelector]?, tsr: [IKEv2TrafficSelector]?, transport = false, rekey: (UInt8, [UInt8])?
        for p in inner {
            switch p.payload {
            case .sa(let props): proposals = props
            case .nonce(let n): nonce = n
            case .keyExchange(let g, let d): ke = (g, d)
            case .trafficSelectors(true, let t): tsi = t
            case .trafficSelectors(false, let t): tsr = t
            case .notify(_, IKEv2Notify.useTransportMode.rawValue, _, _): transport = true
            case .notify(let proto, IKEv2Notify.rekeySA.rawValue, let spi, _): rekey = (proto, spi)
            default: break
            }
        }
        let answerError = { [unowned self] (notify: IKEv2Notify, data: [UInt8]) in
            self.sendResponse(sa, .createChildSA, id,
                              [.notify(protocolID: 0, type: notify.rawValue, spi: [], data: data)])
        }
        guard let proposals, let nonce, (16...256).contains(nonce.count) else {
            answerError(.invalidSyntax, [])
            return
        }
        guard sa.isEstablished, sa.rekeyedInto == nil else {
            answerError(.temporaryFailure, [])
            return
        }
        if proposals.contains(where: { $0.protocolID == IKEv2Protocol.ike.rawValue }) {
            responderRekeyIKE(sa, id, proposals: proposals, nonce: nonce, ke: ke, now: now)
            return
        }
        var rekeying: IKEv2Child?
        if let rekey {
            let spi = rekey.1.count == 4 ? rekey.1.reduce(0) { $0 << 8 | UInt32($1) } : 0
            guard let c = children.first(where: { $0.outboundSPI == spi && $0.ikeSPI == sa.localSPI }) else {
                answerError(.childSANotFound, [])
                return
            }
            guard !c.replaced else {
                answerError(.temporaryFailure, [])
                return
            }
            rekeying = c
        }
        guard let tsi, let tsr else {
            answerError(.invalidSyntax, [])
            return
        }
        let ours = random(32)
        do {
            let answer = try respondChild(sa, proposals: proposals, tsi: tsi, tsr: tsr, transport: transport,
                                          nonces: (nonce, ours), peerKE: ke, inIKEAuth: false, rekeying: rekeying,
                                          now: now)
            sendResponse(sa, .createChildSA, id, answer.payloads)
            answer.install(now)
        } catch let wanted as InvalidKE {
            var data: [UInt8] = []
            data.put16(UInt16(wanted.group.rawValue))
            audit(.informational, "ike-invalid-ke", "CREATE_CHILD_SA with a KE of another group: INVALID_KE_PAYLOAD",
                  [("peer", sa.remote.description), ("wanted", wanted.group.name)])
            answerError(.invalidKEPayload, data)
        } catch let error as NegotiationError {
            let notify = childNotify(error)
            audit(.warning, "ike-failed", "child SA negotiation failed: \(error.reason)",
                  [("peer", sa.remote.description), ("notify", IKEv2Notify.name(notify.rawValue)), ("ike", "v2")])
            answerError(notify, [])
        } catch {
            answerError(.noProposalChosen, [])
        }
    }

    func responderRekeyIKE(_ sa: IKEv2SA, _ id: UInt32, proposals: [IKEv2Proposal], nonce: [UInt8],
                           ke: (UInt16, [UInt8])?, now: UInt64) {
        let error = { [unowned self] (notify: IKEv2Notify, data: [UInt8], reason: String) in
            self.audit(.warning, "ike-failed", "IKE SA rekey refused: \(reason)",
                       [("peer", sa.remote.description), ("notify", IKEv2Notify.name(notify.rawValue)), ("ike", "v2")])
            self.sendResponse(sa, .createChildSA, id,
                              [.notify(protocolID: 0, type: notify.rawValue, spi: [], data: data)])
        }
        guard sa.state == .established, sa.rekeyedInto == nil else {
            error(.temporaryFailure, [], "the SA is being deleted")
            return
        }
        let suite: IKEv2Suite, chosen: IKEv2Proposal
        switch sa.peer.chooseIKE(proposals, preferredGroup: ke.flatMap { DHGroup(rawValue: Int($0.0)) }) {
        case .success(let (p, s)): (chosen, suite) = (p, s)
        case .failure(let e):
            error(.noProposalChosen, [], e.reason)
            return
        }
        guard chosen.spi.count == 8, UInt64(bytes: chosen.spi) != 0 else {
            error(.invalidSyntax, [], "the new initiator SPI is not 8 bytes")
            return
        }
        guard let ke, ke.0 == UInt16(suite.group.rawValue) else {
            var data: [UInt8] = []
            data.put16(UInt16(suite.group.rawValue))
            error(.invalidKEPayload, data, "the KE is not for \(suite.group.name)")
            return
        }
        do {
            let dh = try newDiffieHellman(suite.group)
            let shared = try dh.sharedSecret(with: ke.1)
            let nr = random(32)
            let localSPI = newIKESPI()
            var answer = chosen
            answer.spi = localSPI.bytes
            sendResponse(sa, .createChildSA, id, [.sa([answer]), .nonce(nr),
                                                  .keyExchange(group: UInt16(suite.group.rawValue),
                                                               data: dh.publicValue)])
            let new = try rekeyedSA(sa, localSPI: localSPI, remoteSPI: UInt64(bytes: chosen.spi), weInitiated: false,
                                    suite: suite, shared: shared, ni: nonce, nr: nr, now: now)
            if case .rekeyIKE? = sa.outstanding?.kind {
                // Our own rekey of this SA is under way: settled when its answer comes (RFC 7296 2.8.2).
                sa.collidingRekey = (new.localSPI, [nonce, nr])
            }
            moveChildren(from: sa, to: new)
            if sa.collidingRekey == nil {
                sa.rekeyedInto = new.localSPI
                // The peer started this rekey: it deletes the old SA; we forget it after a while regardless.
                sa.expiresAt = now.saturatingAdd(IKEv2Admission.halfOpenTimeout)
            }
            audit(.notice, "ike-rekeyed", "IKE SA rekeyed by the peer: its children moved to the new SA",
                  [("peer", sa.remote.description), ("ike", "v2")])
        } catch {
            self.error(sa, id, .noProposalChosen, "IKE SA rekey failed: \(error)")
        }
    }

    func error(_ sa: IKEv2SA, _ id: UInt32, _ notify: IKEv2Notify, _ text: String) {
        audit(.warning, "ike-failed", text, [("peer", sa.remote.description), ("ike", "v2")])
        if sa.lastResponse.isEmpty {
            sendResponse(sa, .createChildSA, id, [.notify(protocolID: 0, type: notify.rawValue, spi: [], data: [])])
        }
    }
}

/// A CREATE_CHILD_SA whose KE is for another group than the policy's PFS group.
struct InvalidKE: Error { let group: DHGroup }

extension Int {
    /// Whether this index (of `lowest`) falls in the first `count` entries: ours.
    func isMine(count: Int) -> Bool { self < count }
}
