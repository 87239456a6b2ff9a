import KeywayVocabulary
import KeywayCrypto

/// Quick mode (RFC 2409 5.5), both roles, and informational exchanges:
///   1 I->R *HASH(1) SA Ni [KE] IDci IDcr   2 R->I *HASH(2) SA Nr [KE] IDci IDcr [N(RESPONDER-LIFETIME)]
///   3 I->R *HASH(3)
extension IKEEngine {
    func startQuickMode(_ sa: IKESA, policy: IKEPolicy, now: UInt64) {
        guard let keys = sa.keys else { return }
        let mid = newMessageID()
        let q = QuickExchange(messageID: mid, initiator: true,
                              iv: keys.exchangeIV(lastPhase1Block: sa.iv, messageID: mid),
                              policy: policy, inboundSPI: newSPI(), state: .sentFirst)
        q.initiatorNonce = random(32)
        do {
            if let group = policy.pfsGroup { q.dh = try newDiffieHellman(group) }
            let mode = encapsulation(sa, tunnel: policy.tunnel)
            // Proposed as configured (the configuration bounds it); what is used is capped.
            let lifetime = policy.lifetime
            let proto: ProtocolID = policy.esp ? .esp : .ah
            var choices: [Phase2Choice] = []
            if proto == .esp {
                for enc in policy.encAlgorithms {
                    for auth in enc.isAEAD ? [IntegrityAlgorithm.null] : policy.authAlgorithms {
                        choices.append(Phase2Choice(proto: .esp, encryption: enc, integrity: auth, mode: mode,
                                                    lifetime: lifetime, group: policy.pfsGroup))
                    }
                }
            } else {
                for auth in policy.authAlgorithms where auth != .null {
                    choices.append(Phase2Choice(proto: .ah, encryption: .null, integrity: auth, mode: mode,
                                                lifetime: lifetime, group: policy.pfsGroup))
                }
            }
            q.offered = choices
            let transforms = choices.enumerated().compactMap { $0.element.transform(number: UInt8($0.offset + 1)) }
            var proposals = [Proposal(number: 1, protocolID: proto.rawValue, spi: q.inboundSPI.bytes,
                                      transforms: transforms)]
            if policy.esp && policy.ah {
                // A bundle: AH with the same proposal number as ESP means both (RFC 2408 4.2).
                var bundle = QuickExchange.Bundle(inboundSPI: newSPI())
                bundle.offered = policy.authAlgorithms.filter { $0 != .null }.map {
                    Phase2Choice(proto: .ah, encryption: .null, integrity: $0, mode: mode, lifetime: lifetime,
                                 group: policy.pfsGroup)
                }
                proposals.append(Proposal(number: 1, protocolID: ProtocolID.ah.rawValue, spi: bundle.inboundSPI.bytes,
                                          transforms: bundle.offered.enumerated()
                                              .compactMap { $0.element.transform(number: UInt8($0.offset + 1)) }))
                q.bundle = bundle
            }
            var rest: [Payload] = [.sa(doi: 1, situation: 1, proposals: proposals), .nonce(q.initiatorNonce)]
            if let dh = q.dh { rest.append(.keyExchange(dh.publicValue)) }
            rest += [Self.id(policy.source, policy.sourceLength, policy.proto, policy.sourcePort),
                     Self.id(policy.destination, policy.destinationLength, policy.proto, policy.destinationPort)]
            let hash = try keys.hmacA(mid.bytes + ISAKMPCodec.encode(rest).body)
            let (bytes, last) = try message(sa, exchange: .quick, messageID: mid, payloads: [.hash(hash)] + rest,
                                            iv: q.iv)
            q.iv = last
            sa.quick[mid] = q
            send(bytes, sa: sa)
            q.retransmit.arm(framed(bytes, sa: sa), fromPort: sa.localPort, source: sa.localAddress, to: sa.remote,
                             now: now, waiting: true)
            audit(.informational, "ike-phase2-start", "phase 2 negotiation started",
                  [("policy", String(policy.id)), ("peer", sa.remote.description),
                   ("proposal", choices.map(\.description).joined(separator: ","))])
        } catch {
            audit(.error, "ike-failed", "cannot start quick mode: \(error)", [("policy", String(policy.id))])
        }
    }

    func newSPI() -> UInt32 {
        // SPIs 1-255 are reserved (RFC 4303 2.1).
        var spi: UInt32 = 0
        while spi < 256 { spi = random(4).reduce(0) { $0 << 8 | UInt32($1) } }
        return spi
    }

    func encapsulation(_ sa: IKESA, tunnel: Bool) -> EncapsulationMode {
        guard sa.natTraversal && sa.natDetected else { return tunnel ? .tunnel : .transport }
        if sa.rfc3947 { return tunnel ? .udpTunnel : .udpTransport }
        return tunnel ? .draftUDPTunnel : .draftUDPTransport
    }

    static func id(_ address: UInt32, _ length: Int, _ proto: UInt8?, _ port: UInt16) -> Payload {
        if length == 32 {
            return .identification(type: IDType.ipv4Address, protocolID: proto ?? 0, port: port, data: address.bytes)
        }
        let mask: UInt32 = length == 0 ? 0 : ~UInt32(0) << UInt32(32 - length)
        return .identification(type: IDType.ipv4Subnet, protocolID: proto ?? 0, port: port,
                               data: (address & mask).bytes + mask.bytes)
    }

    /// An ID payload as (address, prefix length, protocol, port).
    static func selector(_ p: Payload) -> (UInt32, Int, UInt8, UInt16)? {
        guard case .identification(let type, let proto, let port, let data) = p else { return nil }
        func u32(_ b: ArraySlice<UInt8>) -> UInt32 { b.reduce(0) { $0 << 8 | UInt32($1) } }
        switch type {
        case IDType.ipv4Address where data.count == 4: return (u32(data[0..<4]), 32, proto, port)
        case IDType.ipv4Subnet where data.count == 8:
            let mask = u32(data[4..<8])
            guard mask.leadingZeroBitCount == 0 || mask == 0, (~mask) & ((~mask) &+ 1) == 0 else { return nil }
            return (u32(data[0..<4]) & mask, mask.nonzeroBitCount, proto, port)
        default: return nil
        }
    }

    func quickMode(_ header: ISAKMPHeader, _ datagram: [UInt8], from: Endpoint, now: UInt64) throws {
        guard let sa = sas[IKESAKey(initiatorCookie: header.initiatorCookie, remote: from.address)],
              sa.state == .established,
              sa.responderCookie == header.responderCookie, let keys = sa.keys else {
            audit(.informational, "ike-unknown", "quick mode without an established phase 1 dropped",
                  [("peer", from.description)], limitedBy: "ike-unknown")
            return
        }
        guard header.flags & ISAKMPHeader.encryptedFlag != 0, header.messageID != 0 else {
            throw NegotiationError.malformed("quick mode not encrypted")
        }
        let mid = header.messageID
        if let q = sa.quick[mid], datagram == q.lastReceived, let last = q.retransmit.message,
           let to = q.retransmit.to {
            actions.append(.send(last, fromPort: q.retransmit.fromPort, to: to, source: q.retransmit.source))
            return
        }
        if sa.quick[mid] == nil, let done = sa.finishedQuick[mid], datagram == done.received {
            actions.append(.send(done.reply, fromPort: sa.localPort, to: sa.remote, source: sa.localAddress))
            return
        }
        let existing = sa.quick[mid]
        let iv = existing?.iv ?? keys.exchangeIV(lastPhase1Block: sa.iv, messageID: mid)
        let (body, last) = try decrypt(sa, datagram, iv: iv)
        sa.lastHeard = now
        let parsed = try ISAKMPCodec.decodeChain(first: header.nextPayload, body: body, allowPadding: true)
        guard case .hash(let hash)? = parsed.first?.payload, let hashEnd = parsed.first?.end,
              let end = parsed.last?.end else {
            throw NegotiationError.malformed("quick mode message does not start with HASH")
        }
        let rest = Array(body[hashEnd..<end])
        do {
            switch (existing?.initiator, existing?.state) {
            case (nil, _):
                guard Self.constantTimeEqual(try keys.hmacA(mid.bytes + rest), hash) else {
                    throw NegotiationError.badHash("HASH(1) does not match")
                }
                // Even an authenticated peer gets only so many unfinished quick modes at once.
                guard sa.quick.count < Self.maximumQuickModesPerPhase1 else {
                    load.refusedBusy += 1
                    audit(.warning, "ike-busy",
                          "too many unfinished quick modes with this peer; the new one is dropped",
                          [("peer", sa.remote.description)])
                    return
                }
                try respondQuick(sa, mid: mid, parsed: Array(parsed.dropFirst()), iv: last, datagram: datagram,
                                 now: now)
            case (true?, .sentFirst?):
                guard let q = existing else { return }
                guard Self.constantTimeEqual(try keys.hmacA(mid.bytes + q.initiatorNonce + rest), hash) else {
                    throw NegotiationError.badHash("HASH(2) does not match")
                }
                q.iv = last
                try initiatorGotQuick2(sa, q, parsed: Array(parsed.dropFirst()), datagram: datagram, now: now)
            case (false?, .sentSecond?):
                guard let q = existing else { return }
                let expected = try keys.hmacA([0] + mid.bytes + q.initiatorNonce + q.responderNonce)
                guard Self.constantTimeEqual(expected, hash) else {
                    throw NegotiationError.badHash("HASH(3) does not match")
                }
                q.retransmit.stop()
                sa.quick[mid] = nil
                try installChild(sa, q, now: now)
            default:
                return
            }
        } catch let error as NegotiationError {
            audit(.warning, "ike-failed", "phase 2 negotiation failed: \(error.reason)",
                  [("peer", sa.remote.description), ("notify", error.notify.name)])
            sendNotify(error.notify, sa: sa, encrypted: true, protocolID: .esp,
                       spi: existing.map { $0.inboundSPI.bytes } ?? [0, 0, 0, 0])
            if let q = existing ?? sa.quick[mid] { failPolicies([q.policy.id], now: now) }
            sa.quick[mid] = nil
        }
    }

    private func respondQuick(_ sa: IKESA, mid: UInt32, parsed: [ISAKMPCodec.Parsed], iv: [UInt8], datagram: [UInt8],
                              now: UInt64) throws {
        guard let keys = sa.keys else { return }
        var proposals: [Proposal] = [], nonce: [UInt8]?, ke: [UInt8]?, ids: [Payload] = []
        for p in parsed {
            switch p.payload {
            case .sa(_, _, let props): proposals = props
            case .nonce(let n): nonce = n
            case .keyExchange(let k): ke = k
            case .identification: ids.append(p.payload)
            default: break
            }
        }
        guard let nonce, !proposals.isEmpty else {
            throw NegotiationError.malformed("quick mode message 1 without SA and nonce")
        }
        // Without IDs the selectors are the two hosts (transport mode between the peers).
        let initiatorID = ids.count == 2 ? Self.selector(ids[0]) : (sa.remote.address, 32, 0, 0)
        let responderID = ids.count == 2 ? Self.selector(ids[1]) : (sa.localAddress, 32, 0, 0)
        guard let ci = initiatorID, let cr = responderID else {
            throw NegotiationError.invalidID("unsupported identity payloads")
        }
        // Our policy mirrors the peer's: its destination is their source.
        let configured = configuration.policies.first(where: { p in
            p.destination == ci.0 && p.destinationLength == ci.1 && p.source == cr.0 && p.sourceLength == cr.1
                && (p.proto ?? 0) == ci.2 && p.destinationPort == ci.3 && p.sourcePort == cr.3
                && (p.saDestination == sa.remote.address || sa.peer.contains(p.saDestination))
        })
        guard let policy = try configured ?? generatePolicy(sa, initiatorID: ci, responderID: cr,
                                                            proposals: proposals) else {
            throw NegotiationError.invalidID("no policy for \(IPv4Address.text(cr.0))/\(cr.1) <=> "
                                             + "\(IPv4Address.text(ci.0))/\(ci.1)")
        }
        let wantMode = encapsulation(sa, tunnel: policy.tunnel)
        let ourLifetime = policy.lifetime
        var offered: [String] = []
        var chosen: (Proposal, Transform, Phase2Choice)?
        var lifetimeRefusal: String?
        for prop in proposals {
            guard let proto = ProtocolID(rawValue: prop.protocolID), proto != .isakmp, prop.spi.count == 4 else {
                continue
            }
            for t in prop.transforms {
                guard case .success(let c) = Phase2Choice.parse(t, proto: proto) else { continue }
                offered.append(c.description)
                guard chosen == nil, proto == (policy.esp ? .esp : .ah),
                      proto == .ah || policy.encAlgorithms.contains(c.encryption),
                      c.integrity == .null ? c.encryption.isAEAD : policy.authAlgorithms.contains(c.integrity),
                      c.mode.isTunnel == wantMode.isTunnel, c.mode.isUDP == wantMode.isUDP,
                      c.group == policy.pfsGroup else { continue }
                if let refusal = lifetimeCheck(sa.peer.proposalCheck, proposed: c.lifetime, ours: ourLifetime) {
                    lifetimeRefusal = refusal
                    continue
                }
                chosen = (prop, t, c)
            }
        }
        guard let (prop, transform, proposedChoice) = chosen else {
            let ours = policy.encAlgorithms.map(\.rawValue).joined(separator: ",") + "/"
                + policy.authAlgorithms.map(\.rawValue).joined(separator: ",")
                + "/" + (policy.pfsGroup?.name ?? "no pfs") + " lifetime \(ourLifetime)"
            throw NegotiationError.noProposal(
                lifetimeRefusal ?? "peer offered \(offered.joined(separator: ", ")); policy \(policy.id) has \(ours)")
        }
        // A bundle: the AH proposal with the same number, one acceptable transform of it.
        var ahPart: (Proposal, Transform, Phase2Choice)?
        if policy.esp && policy.ah {
            for p in proposals where p.number == prop.number && p.protocolID == ProtocolID.ah.rawValue
                && p.spi.count == 4 {
                for t in p.transforms {
                    guard ahPart == nil, case .success(let c) = Phase2Choice.parse(t, proto: .ah),
                          policy.authAlgorithms.contains(c.integrity),
                          c.group == policy.pfsGroup else { continue }
                    ahPart = (p, t, c)
                }
            }
            guard ahPart != nil else {
                throw NegotiationError.noProposal(
                    "policy \(policy.id) has ipsec-protocols=ah,esp; the peer offered no acceptable AH beside its ESP")
            }
        }
        var choice = proposedChoice
        switch sa.peer.proposalCheck {
        case .claim: choice.lifetime = min(choice.lifetime, ourLifetime)
        case .obey, .strict, .exact: break
        }
        // Never beyond the maximum, whatever was proposed or configured (obey takes the peer's
        // lifetime only up to it). When we use less than proposed, RESPONDER-LIFETIME says so.
        choice.lifetime = choice.lifetime.capped(at: .maximumLifetime)
        let responderLifetime: Seconds? = choice.lifetime < proposedChoice.lifetime ? choice.lifetime : nil
        let q = QuickExchange(messageID: mid, initiator: false, iv: iv, policy: policy, inboundSPI: newSPI(),
                              state: .sentSecond)
        q.createdAt = now
        q.initiatorNonce = nonce
        q.responderNonce = random(32)
        q.outboundSPI = prop.spi.reduce(0) { $0 << 8 | UInt32($1) }
        q.choice = choice
        q.lifetime = choice.lifetime
        var answer = [Proposal(number: prop.number, protocolID: prop.protocolID, spi: q.inboundSPI.bytes,
                               transforms: [transform])]
        if let (ahProp, ahTransform, ahChoice) = ahPart {
            var bundle = QuickExchange.Bundle(inboundSPI: newSPI())
            bundle.outboundSPI = ahProp.spi.reduce(0) { $0 << 8 | UInt32($1) }
            bundle.choice = ahChoice
            q.bundle = bundle
            answer.append(Proposal(number: ahProp.number, protocolID: ahProp.protocolID, spi: bundle.inboundSPI.bytes,
                                   transforms: [ahTransform]))
        }
        var reply: [Payload] = [.sa(doi: 1, situation: 1, proposals: answer), .nonce(q.responderNonce)]
        if let group = choice.group {
            guard let ke else { throw NegotiationError.malformed("PFS group \(group.name) without a KE payload") }
            let dh = try newDiffieHellman(group)
            q.dh = dh
            q.peerKE = ke
            reply.append(.keyExchange(dh.publicValue))
        }
        reply += ids
        if let life = responderLifetime {
            reply.append(.notification(doi: 1, protocolID: prop.protocolID, type: NotifyType.responderLifetime.rawValue,
                                       spi: q.inboundSPI.bytes,
                                       data: ISAKMPCodec.encodeAttributes(
                                           [Attribute(basic: Phase2Attribute.lifeType, UInt16(LifeType.seconds)),
                                            Phase1Choice.duration(Phase2Attribute.lifeDuration, life.value)])))
        }
        let hash = try keys.hmacA(mid.bytes + nonce + ISAKMPCodec.encode(reply).body)
        let (bytes, last) = try message(sa, exchange: .quick, messageID: mid, payloads: [.hash(hash)] + reply, iv: q.iv)
        q.iv = last
        q.lastReceived = datagram
        sa.quick[mid] = q
        send(bytes, sa: sa)
        // Repeated until message 3 comes: without it the peer has SAs and we have none.
        q.retransmit.arm(framed(bytes, sa: sa), fromPort: sa.localPort, source: sa.localAddress, to: sa.remote,
                         now: now, waiting: true)
    }

    /// `proposal-check`, as the manual describes it; nil when the proposed lifetime is acceptable.
    func lifetimeCheck(_ check: IKEPeer.ProposalCheck, proposed: Seconds, ours: Seconds) -> String? {
        switch check {
        case .obey, .claim: return nil
        case .strict:
            return proposed > ours
                ? "lifetime mismatch: peer proposed \(proposed), longer than our \(ours) (proposal-check=strict)"
                : nil
        case .exact:
            return proposed != ours
                ? "lifetime mismatch: peer proposed \(proposed), ours is \(ours) (proposal-check=exact)"
                : nil
        }
    }

    private func initiatorGotQuick2(_ sa: IKESA, _ q: QuickExchange, parsed: [ISAKMPCodec.Parsed], datagram: [UInt8],
                                    now: UInt64) throws {
        guard let keys = sa.keys else { return }
        var proposals: [Proposal] = [], nonce: [UInt8]?, ke: [UInt8]?, responderLifetime: Seconds?
        for p in parsed {
            switch p.payload {
            case .sa(_, _, let props): proposals = props
            case .nonce(let n): nonce = n
            case .keyExchange(let k): ke = k
            case .notification(_, _, let type, _, let data) where type == NotifyType.responderLifetime.rawValue:
                var r = ByteReader(data)
                if let attributes = try? ISAKMPCodec.attributes(&r),
                   let d = attributes.first(where: { $0.type == Phase2Attribute.lifeDuration })?.integer {
                    responderLifetime = Seconds(d)
                }
            default: break
            }
        }
        // A bundle's answer has the AH proposal after the ESP one.
        if var bundle = q.bundle {
            guard proposals.count == 2, let ah = proposals.last, ah.protocolID == ProtocolID.ah.rawValue,
                  ah.spi.count == 4,
                  ah.transforms.count == 1, let t = ah.transforms.first,
                  case .success(let c) = Phase2Choice.parse(t, proto: .ah),
                  let match = bundle.offered.first(where: { $0.integrity == c.integrity && $0.group == c.group }) else {
                throw NegotiationError.noProposal("the peer's answer does not keep the AH half of the bundle")
            }
            bundle.outboundSPI = ah.spi.reduce(0) { $0 << 8 | UInt32($1) }
            bundle.choice = match
            q.bundle = bundle
            proposals.removeLast()
        }
        guard let nonce, proposals.count == 1, let prop = proposals.first, prop.spi.count == 4,
              prop.transforms.count == 1,
              let t = prop.transforms.first, let proto = ProtocolID(rawValue: prop.protocolID),
              case .success(let c) = Phase2Choice.parse(t, proto: proto) else {
            throw NegotiationError.noProposal("the peer's answer does not choose exactly one transform")
        }
        guard let match = q.offered.first(where: {
            $0.encryption == c.encryption && $0.integrity == c.integrity && $0.mode == c.mode && $0.group == c.group
                && $0.proto == c.proto
        }) else {
            throw NegotiationError.noProposal("peer chose \(c), which we did not offer")
        }
        q.responderNonce = nonce
        q.outboundSPI = prop.spi.reduce(0) { $0 << 8 | UInt32($1) }
        var choice = match
        // The shorter of what the peer says (its answer or RESPONDER-LIFETIME) and what we offered.
        choice.lifetime = min(responderLifetime ?? c.lifetime, match.lifetime).capped(at: .maximumLifetime)
        q.choice = choice
        q.lifetime = choice.lifetime
        if q.dh != nil {
            guard let ke else { throw NegotiationError.malformed("PFS answer without KE") }
            q.peerKE = ke
        }
        let hash = try keys.hmacA([0] + q.messageID.bytes + q.initiatorNonce + q.responderNonce)
        let (bytes, _) = try message(sa, exchange: .quick, messageID: q.messageID, payloads: [.hash(hash)], iv: q.iv)
        send(bytes, sa: sa)
        q.retransmit.stop()
        sa.quick[q.messageID] = nil
        if sa.finishedQuick.count >= Self.maximumQuickModesPerPhase1,
           let oldest = sa.finishedQuick.min(by: { $0.value.at < $1.value.at })?.key {
            sa.finishedQuick[oldest] = nil
        }
        sa.finishedQuick[q.messageID] = (datagram, framed(bytes, sa: sa), now)
        try installChild(sa, q, now: now)
    }

    private func installChild(_ sa: IKESA, _ q: QuickExchange, now: UInt64) throws {
        guard let keys = sa.keys, let choice = q.choice else { return }
        var pfsSecret: Secret?
        if let dh = q.dh {
            do {
                pfsSecret = try dh.sharedSecret(with: q.peerKE)
            } catch {
                throw NegotiationError.malformed("PFS public value refused: \(error)")
            }
        }
        let proto: UInt8 = choice.proto == .esp ? 50 : 51
        let encLength = choice.proto == .esp ? choice.encryption.keyMaterialLength : 0
        let length = encLength + choice.integrity.keyLength
        let udp = choice.mode.isUDP
        var out: [NegotiatedSA] = []
        for (inbound, spi) in [(true, q.inboundSPI), (false, q.outboundSPI)] {
            let km = try keys.keymat(length: length, pfsSecret: pfsSecret, proto: choice.proto.rawValue, spi: spi,
                                     ni: q.initiatorNonce, nr: q.responderNonce)
            out.append(NegotiatedSA(policyID: q.policy.id, inbound: inbound, proto: proto, spi: spi,
                                    source: inbound ? sa.remote.address : sa.localAddress,
                                    destination: inbound ? sa.localAddress : sa.remote.address,
                                    tunnel: choice.mode.isTunnel,
                                    encryption: choice.proto == .esp ? choice.encryption : .null,
                                    integrity: choice.integrity,
                                    encryptionKey: km.slice(0..<encLength), integrityKey: km.slice(encLength..<length),
                                    lifetime: q.lifetime, lifetimeBytes: 0,
                                    udpLocalPort: udp ? sa.localPort : nil, udpRemotePort: udp ? sa.remote.port : nil,
                                    pfs: q.dh != nil))
        }
        if q.policy.dynamic {
            let isNew = generatedPolicies[q.policy.id] == nil
            generatedPolicies[q.policy.id] = q.policy
            for i in out.indices { out[i].generatedPolicy = q.policy }
            if isNew { audit(.notice, "ike-generated-policy", "policy generated for the peer (generate-policy=yes)",
                  [("policy", String(q.policy.id)),
                   ("src-address", "\(IPv4Address.text(q.policy.source))/\(q.policy.sourceLength)"),
                   ("dst-address", "\(IPv4Address.text(q.policy.destination))/\(q.policy.destinationLength)"),
                   ("peer", sa.remote.description)]) }
        }
        var ahSPIs: (inbound: UInt32, outbound: UInt32)?
        if let bundle = q.bundle, let ahChoice = bundle.choice {
            // AH over ESP: with ESP in tunnel mode AH protects the ESP packet in transport mode.
            let ahLength = ahChoice.integrity.keyLength
            for (inbound, spi) in [(true, bundle.inboundSPI), (false, bundle.outboundSPI)] {
                let km = try keys.keymat(length: ahLength, pfsSecret: pfsSecret, proto: ProtocolID.ah.rawValue,
                                         spi: spi,
                                         ni: q.initiatorNonce, nr: q.responderNonce)
                out.append(NegotiatedSA(policyID: q.policy.id, inbound: inbound, proto: 51, spi: spi,
                                        source: inbound ? sa.remote.address : sa.localAddress,
                                        destination: inbound ? sa.localAddress : sa.remote.address,
                                        tunnel: false, encryption: .null, integrity: ahChoice.integrity,
                                        encryptionKey: Secret([]), integrityKey: km, lifetime: q.lifetime,
                                        lifetimeBytes: 0, udpLocalPort: nil, udpRemotePort: nil, pfs: q.dh != nil))
            }
            ahSPIs = (bundle.inboundSPI, bundle.outboundSPI)
        }
        actions.append(.install(out))
        children.append(ChildSA(policyID: q.policy.id,
                                ikeKey: IKESAKey(initiatorCookie: sa.initiatorCookie, remote: sa.remote.address),
                                inboundSPI: q.inboundSPI, outboundSPI: q.outboundSPI, proto: proto,
                                local: sa.localAddress, remote: sa.remote.address,
                                installedAt: now, lifetime: q.lifetime, initiator: q.initiator, ahSPIs: ahSPIs))
        retryAt[q.policy.id] = nil
        audit(.notice, "ike-phase2-established", "phase 2 established: SAs installed",
              [("policy", String(q.policy.id)), ("peer", sa.remote.description), ("proposal", choice.description),
               ("spi-in", String(q.inboundSPI, radix: 16)), ("spi-out", String(q.outboundSPI, radix: 16)),
               ("lifetime", q.lifetime.description), ("mode", "\(choice.mode)")])
    }

    func removeChild(_ c: ChildSA, sendDelete: Bool, now: UInt64) {
        children.removeAll { $0.inboundSPI == c.inboundSPI && $0.remote == c.remote }
        // A generated policy lives as long as its SAs (the datapath drops it with them).
        if generatedPolicies[c.policyID] != nil, !children.contains(where: { $0.policyID == c.policyID }) {
            generatedPolicies[c.policyID] = nil
        }
        var gone = [(spi: c.inboundSPI, proto: c.proto, destination: c.local),
                    (spi: c.outboundSPI, proto: c.proto, destination: c.remote)]
        if let ah = c.ahSPIs {
            gone += [(spi: ah.inbound, proto: UInt8(51), destination: c.local),
                     (spi: ah.outbound, proto: UInt8(51), destination: c.remote)]
        }
        actions.append(.remove(gone))
        guard sendDelete, let sa = sas[c.ikeKey], sa.state == .established, let keys = sa.keys else { return }
        let mid = newMessageID()
        let d = Payload.delete(doi: 1, protocolID: c.proto == 50 ? ProtocolID.esp.rawValue : ProtocolID.ah.rawValue,
                               spiSize: 4, spis: [c.inboundSPI.bytes])
        guard let hash = try? keys.hmacA(mid.bytes + ISAKMPCodec.encode([d]).body),
              let m = try? message(sa, exchange: .informational, messageID: mid, payloads: [.hash(hash), d],
                                   iv: keys.exchangeIV(lastPhase1Block: sa.iv, messageID: mid)) else { return }
        send(m.bytes, sa: sa)
    }

    func informational(_ header: ISAKMPHeader, _ datagram: [UInt8], from: Endpoint, now: UInt64) throws {
        guard let sa = sas[IKESAKey(initiatorCookie: header.initiatorCookie, remote: from.address)] else { return }
        var parsed: [ISAKMPCodec.Parsed]
        if header.flags & ISAKMPHeader.encryptedFlag != 0 {
            guard let keys = sa.keys else { return }
            let (body, _) = try decrypt(sa, datagram,
                                        iv: keys.exchangeIV(lastPhase1Block: sa.iv, messageID: header.messageID))
            parsed = try ISAKMPCodec.decodeChain(first: header.nextPayload, body: body, allowPadding: true)
            guard case .hash(let hash)? = parsed.first?.payload, let hashEnd = parsed.first?.end,
                  let end = parsed.last?.end,
                  Self.constantTimeEqual(try keys.hmacA(header.messageID.bytes + Array(body[hashEnd..<end])),
                                         hash) else {
                audit(.warning, "ike-malformed", "informational message with a bad HASH dropped",
                      [("peer", from.description)])
                return
            }
            parsed.removeFirst()
            // An authenticated message is a sign of life (RFC 3706).
            sa.lastHeard = now
            sa.unansweredProbes = 0
        } else {
            // Before the keys exist a peer can only tell us why it refused; after, plaintext is not believed.
            guard sa.state != .established else { return }
            parsed = try ISAKMPCodec.decodeChain(first: header.nextPayload, body: Array(datagram[ISAKMPHeader.size...]),
                                                 allowPadding: false)
        }
        for p in parsed {
            switch p.payload {
            case .delete(_, let proto, _, let spis) where proto == ProtocolID.esp.rawValue
                 || proto == ProtocolID.ah.rawValue:
                for spi in spis {
                    let value = spi.reduce(0) { $0 << 8 | UInt32($1) }
                    for c in children where c.outboundSPI == value && c.remote == from.address {
                        audit(.notice, "ike-delete", "peer deleted a phase 2 SA",
                              [("peer", from.description), ("spi", String(value, radix: 16))])
                        removeChild(c, sendDelete: false, now: now)
                    }
                }
            case .delete(_, let proto, _, _) where proto == ProtocolID.isakmp.rawValue:
                audit(.notice, "ike-delete", "peer deleted the phase 1 SA", [("peer", from.description)])
                removeSA(IKESAKey(initiatorCookie: sa.initiatorCookie, remote: from.address))
            case .notification(_, _, let type, _, let data):
                if type == NotifyType.rUThere.rawValue, sa.state == .established, let keys = sa.keys {
                    let mid = newMessageID()
                    let ack = Payload.notification(doi: 1, protocolID: ProtocolID.isakmp.rawValue,
                                                   type: NotifyType.rUThereAck.rawValue, spi: sa.cookies, data: data)
                    if let hash = try? keys.hmacA(mid.bytes + ISAKMPCodec.encode([ack]).body),
                       let m = try? message(sa, exchange: .informational, messageID: mid, payloads: [.hash(hash), ack],
                                            iv: keys.exchangeIV(lastPhase1Block: sa.iv, messageID: mid)) {
                        send(m.bytes, sa: sa)
                    }
                    continue
                }
                if type == NotifyType.rUThereAck.rawValue { continue }
                let name = NotifyType(rawValue: type)?.name ?? "notify-\(type)"
                if type < 8192 {
                    // An error notification: the negotiation under way with this peer has failed.
                    audit(.warning, "ike-peer-refused", "peer refused the negotiation: \(name)",
                          [("peer", from.description)])
                    let failed = sa.pendingPolicies + sa.quick.values.map(\.policy.id)
                    failPolicies(failed, now: now)
                    sa.quick.removeAll()
                    if sa.state != .established {
                        removeSA(IKESAKey(initiatorCookie: sa.initiatorCookie, remote: from.address))
                    }
                } else {
                    audit(.informational, "ike-notify", "peer notified \(name)", [("peer", from.description)],
                          limitedBy: "ike-notify")
                }
            default:
                break
            }
        }
    }
}
