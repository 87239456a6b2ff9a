import KeywayCrypto

/// Aggressive mode with pre-shared keys (RFC 2409 5.4), both roles:
///   1 I->R SA KE Ni IDii [VID]   2 R->I SA KE Nr IDir [NAT-D NAT-D] HASH_R [VID]
///   3 I->R *HASH_I [NAT-D NAT-D]
/// One DH group goes in the first message, so the initiator offers exactly one transform.
extension IKEEngine {
    func startAggressive(_ policy: IKEPolicy, peer: IKEPeer, remote: Endpoint, now: UInt64) {
        guard peer.signature == nil else {
            audit(.warning, "ike-refused",
                  "aggressive mode with rsa-signature is not supported; use exchange-mode=main",
                  [("peer", remote.description)])
            failPolicies([policy.id], now: now)
            return
        }
        let sa = IKESA(initiator: true, initiatorCookie: random(8), responderCookie: [UInt8](repeating: 0, count: 8),
                       remote: remote,
                       localAddress: policy.saSource, peer: peer, now: now)
        sa.state = .sentAggressive
        sa.pendingPolicies = [policy.id]
        do {
            let dh = try newDiffieHellman(sa.choice.group)
            sa.dh = dh
            sa.initiatorKE = dh.publicValue
            sa.initiatorNonce = random(32)
            let saPayload = Payload.sa(doi: 1, situation: 1,
                                       proposals: [Proposal(number: 1, protocolID: ProtocolID.isakmp.rawValue, spi: [],
                                                            transforms: [sa.choice.transform(number: 1)])])
            sa.initiatorSABody = ISAKMPCodec.encodeData(saPayload)
            let id = identity(sa)
            sa.initiatorIDBody = ISAKMPCodec.encodeData(id)
            let payloads: [Payload] = [saPayload, .keyExchange(sa.initiatorKE), .nonce(sa.initiatorNonce), id]
                + initiatorVendorIDs(peer)
            let (bytes, _) = try message(sa, exchange: .aggressive, messageID: 0, payloads: payloads, iv: nil)
            sas[IKESAKey(initiatorCookie: sa.initiatorCookie, remote: remote.address)] = sa
            send(bytes, sa: sa)
            sa.retransmit.arm(bytes, fromPort: sa.localPort, source: sa.localAddress, to: remote, now: now,
                              waiting: true)
            audit(.informational, "ike-start", "phase 1 negotiation started (aggressive mode)",
                  [("peer", remote.description), ("proposal", sa.choice.description)])
        } catch {
            audit(.error, "ike-failed", "cannot build aggressive mode message 1: \(error)")
        }
    }

    func respondToAggressive(_ header: ISAKMPHeader, _ datagram: [UInt8], from: Endpoint, now: UInt64) throws {
        guard let sa = newResponder(header, mode: .aggressive, from: from, now: now) else { return }
        guard sa.peer.signature == nil else {
            audit(.warning, "ike-refused",
                  "aggressive mode with rsa-signature is not supported; use exchange-mode=main",
                  [("peer", from.description)])
            return
        }
        let parsed = try payloads(header, body: Array(datagram[ISAKMPHeader.size...]), decrypted: false)
        sa.state = .answeredAggressive
        guard let saPayload = parsed.first(where: { if case .sa = $0.payload { return true } else { return false } }),
              case .sa(_, _, let proposals) = saPayload.payload,
              let id = parsed.first(
                  where: { if case .identification = $0.payload { return true } else { return false } }) else {
            throw NegotiationError.malformed("aggressive mode message 1 without SA and ID")
        }
        sa.initiatorSABody = saPayload.body
        sa.initiatorIDBody = id.body
        vendorFlags(parsed, sa)
        guard let (proposal, transform) = choosePhase1(sa, proposals, now: now) else { return }
        // Anyone can send this message with any source address: its DH comes from a budget.
        guard spendDiffieHellman(&aggressiveDiffieHellman, now: now, peer: from) else { return }
        do {
            try takeKeyExchange(sa, parsed)
            let dh = try newDiffieHellman(sa.choice.group)
            sa.dh = dh
            sa.responderKE = dh.publicValue
            sa.responderNonce = random(32)
            try deriveKeys(sa)
            guard let keys = sa.keys else { return }
            let ourID = identity(sa)
            let hashR = try keys.authenticationHash(initiator: false, gxi: sa.initiatorKE, gxr: sa.responderKE,
                                                    ckyI: sa.initiatorCookie,
                                                    ckyR: sa.responderCookie, saBody: sa.initiatorSABody,
                                                    idBody: ISAKMPCodec.encodeData(ourID))
            var reply: [Payload] = [.sa(doi: 1, situation: 1,
                                        proposals: [Proposal(number: proposal.number, protocolID: proposal.protocolID,
                                                             spi: [], transforms: [transform])]),
                                    .keyExchange(sa.responderKE), .nonce(sa.responderNonce), ourID]
            if sa.natTraversal { reply += natDiscoveryPayloads(sa) }
            reply.append(.hash(hashR))
            try answerFirst(sa, reply + responderVendorIDs(sa), exchange: .aggressive, datagram: datagram, now: now)
        } catch let error as NegotiationError {
            fail(sa, error, now: now)
        }
    }

    func initiatorGotAggressive2(_ sa: IKESA, _ header: ISAKMPHeader, _ datagram: [UInt8], now: UInt64) throws {
        let parsed = try payloads(header, body: Array(datagram[ISAKMPHeader.size...]), decrypted: false)
        guard case .sa(_, _, let proposals)? = parsed.first(
                  where: { if case .sa = $0.payload { return true } else { return false } })?.payload,
              proposals.count == 1, proposals.first?.transforms.count == 1, let t = proposals.first?.transforms.first,
              case .success(let choice) = Phase1Choice.parse(t), choice.authentication == 1, sa.peer.signature == nil,
              choice.encryption == sa.choice.encryption,
              choice.hash == sa.choice.hash, choice.group == sa.choice.group else {
            throw NegotiationError.noProposal("peer chose a transform we did not offer")
        }
        guard let id = parsed.first(
                  where: { if case .identification = $0.payload { return true } else { return false } }),
              case .hash(let hashR)? = parsed.first(
                  where: { if case .hash = $0.payload { return true } else { return false } })?.payload else {
            throw NegotiationError.malformed("aggressive mode message 2 without ID and HASH")
        }
        sa.responderCookie = header.responderCookie
        sa.choice.lifetime = min(choice.lifetime, sa.choice.lifetime).capped(at: .maximumLifetime)
        vendorFlags(parsed, sa)
        try takeKeyExchange(sa, parsed)
        try deriveKeys(sa)
        guard let keys = sa.keys else { return }
        let expected = try keys.authenticationHash(initiator: false, gxi: sa.initiatorKE, gxr: sa.responderKE,
                                                   ckyI: sa.initiatorCookie,
                                                   ckyR: sa.responderCookie, saBody: sa.initiatorSABody,
                                                   idBody: id.body)
        guard Self.constantTimeEqual(expected, hashR) else {
            throw NegotiationError.authentication("HASH_R does not match: the pre-shared keys differ")
        }
        // The NAT-D hashes in message 3 are of the addresses as message 2 travelled.
        var list: [Payload] = []
        let hashI = try keys.authenticationHash(initiator: true, gxi: sa.initiatorKE, gxr: sa.responderKE,
                                                ckyI: sa.initiatorCookie,
                                                ckyR: sa.responderCookie, saBody: sa.initiatorSABody,
                                                idBody: sa.initiatorIDBody)
        list.append(.hash(hashI))
        if sa.natTraversal { list += natDiscoveryPayloads(sa) }
        if sa.natTraversal && sa.natDetected {
            sa.localPort = Self.natTPort
            sa.remote.port = Self.natTPort
        }
        let (bytes, lastBlock) = try message(sa, exchange: .aggressive, messageID: 0, payloads: list, iv: sa.iv)
        sa.iv = lastBlock
        send(bytes, sa: sa)
        sa.retransmit.stop()
        established(sa, now: now)
    }

    func responderGotAggressive3(_ sa: IKESA, _ header: ISAKMPHeader, _ datagram: [UInt8], now: UInt64) throws {
        guard let keys = sa.keys else { return }
        var parsed: [ISAKMPCodec.Parsed]
        if header.flags & ISAKMPHeader.encryptedFlag != 0 {
            let (body, last) = try decrypt(sa, datagram, iv: sa.iv)
            do { parsed = try payloads(header, body: body, decrypted: true) } catch {
                throw NegotiationError.authentication(
                    "message 3 does not decrypt (\(error)): the pre-shared keys differ")
            }
            sa.iv = last
        } else {
            parsed = try payloads(header, body: Array(datagram[ISAKMPHeader.size...]), decrypted: false)
        }
        guard case .hash(let hashI)? = parsed.first(
                  where: { if case .hash = $0.payload { return true } else { return false } })?.payload else {
            throw NegotiationError.malformed("aggressive mode message 3 without HASH")
        }
        let expected = try keys.authenticationHash(initiator: true, gxi: sa.initiatorKE, gxr: sa.responderKE,
                                                   ckyI: sa.initiatorCookie,
                                                   ckyR: sa.responderCookie, saBody: sa.initiatorSABody,
                                                   idBody: sa.initiatorIDBody)
        guard Self.constantTimeEqual(expected, hashI) else {
            throw NegotiationError.authentication("HASH_I does not match: the pre-shared keys differ")
        }
        let nat = parsed.compactMap { p -> [UInt8]? in
            if case .natDiscovery(let d) = p.payload { return d } else { return nil }
        }
        if sa.natTraversal, nat.count >= 2 {
            sa.natDetected = sa.natDetected || nat[0] != natHash(sa, sa.localAddress, 500)
                || !nat.dropFirst().contains(natHash(sa, sa.remote.address, sa.remote.port))
        }
        if sa.localPort == Self.natTPort || (sa.natTraversal && sa.peer.forceUDPEncapsulation) { sa.natDetected = true }
        sa.retransmit.stop()
        established(sa, now: now)
    }
}
