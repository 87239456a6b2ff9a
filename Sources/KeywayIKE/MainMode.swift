import KeywayVocabulary
import KeywayCrypto
import KeywayWire

/// Main mode (identity protection) with pre-shared keys, both roles:
///   1 I->R SA   2 R->I SA   3 I->R KE Ni [NAT-D NAT-D]   4 R->I KE Nr [NAT-D NAT-D]
///   5 I->R *ID HASH_I [N(INITIAL-CONTACT)]   6 R->I *ID HASH_R
extension IKEEngine {
    func mainMode(_ header: ISAKMPHeader, _ datagram: [UInt8], from: Endpoint, localPort: UInt16, now: UInt64) throws {
        let responderCookieZero = header.responderCookie.allSatisfy { $0 == 0 }
        let key = IKESAKey(initiatorCookie: header.initiatorCookie, remote: from.address)
        guard let sa = negotiation(key) else {
            guard responderCookieZero, header.flags & ISAKMPHeader.encryptedFlag == 0 else {
                audit(.informational, "ike-unknown", "main mode message for an unknown ISAKMP SA dropped",
                      [("peer", from.description)], limitedBy: "ike-unknown")
                return
            }
            guard datagram.count <= Self.maximumFirstMessage else {
                audit(.warning, "ike-malformed", "first message longer than \(Self.maximumFirstMessage) bytes dropped",
                      [("peer", from.description)])
                return
            }
            if header.exchangeType == ExchangeType.aggressive.rawValue {
                try respondToAggressive(header, datagram, from: from, now: now)
            } else {
                try respondToFirst(header, datagram, from: from, now: now)
            }
            return
        }
        // A repeated message: the peer lost our answer.
        if datagram == sa.lastReceived, let last = sa.retransmit.message, let to = sa.retransmit.to {
            actions.append(.send(last, fromPort: sa.retransmit.fromPort, to: to, source: sa.retransmit.source))
            return
        }
        if sa.initiator {
            guard sa.responderCookie.allSatisfy({ $0 == 0 }) || sa.responderCookie == header.responderCookie else {
                return
            }
        } else {
            guard header.responderCookie == sa.responderCookie else { return }
            // Our cookie came back: the peer receives at its address. From here on no first
            // message can displace this negotiation.
            if !sa.verified, !verify(sa, key: key) { return }
        }
        // The peer floated to 4500 (RFC 3947): follow it.
        if localPort == Self.natTPort, sa.localPort != Self.natTPort {
            sa.localPort = localPort
            sa.natDetected = sa.natTraversal
        }
        sa.remote = from
        do {
            switch (sa.initiator, sa.state) {
            case (true, .sentSA): try initiatorGotSA(sa, header, datagram, now: now)
            case (true, .sentKE): try initiatorGotKE(sa, header, datagram, now: now)
            case (true, .sentID): try initiatorGotID(sa, header, datagram, now: now)
            case (false, .answeredSA):
                guard spendDiffieHellman(&mainModeDiffieHellman, now: now, peer: from) else { return }
                try responderGotKE(sa, header, datagram, now: now)
            case (false, .answeredKE): try responderGotID(sa, header, datagram, now: now)
            case (true, .sentAggressive): try initiatorGotAggressive2(sa, header, datagram, now: now)
            case (false, .answeredAggressive): try responderGotAggressive3(sa, header, datagram, now: now)
            default: return
            }
            sa.lastReceived = datagram
        } catch let error as NegotiationError {
            fail(sa, error, now: now)
        }
    }

    func fail(_ sa: IKESA, _ error: NegotiationError, now: UInt64) {
        audit(.warning, "ike-failed", "phase 1 negotiation failed: \(error.reason)",
              [("peer", sa.remote.description), ("notify", error.notify.name)])
        sendNotify(error.notify, sa: sa, encrypted: sa.state == .established)
        failPolicies(sa.pendingPolicies, now: now)
        removeSA(IKESAKey(initiatorCookie: sa.initiatorCookie, remote: sa.remote.address))
    }

    /// Moves a responder negotiation whose peer echoed our cookie out of the unverified table,
    /// unless its pair of addresses or everyone already has as many such negotiations as allowed.
    func verify(_ sa: IKESA, key: IKESAKey) -> Bool {
        let pair = Self.addressPair(sa)
        guard verifiedHalfOpenTotal < Self.maximumVerifiedHalfOpen,
              verifiedHalfOpen[pair, default: 0] < Self.maximumVerifiedHalfOpenPerAddress else {
            load.refusedBusy += 1
            audit(.warning, "ike-busy", "too many unfinished phase 1 negotiations with verified peers; this one waits",
                  [("peer", sa.remote.description)])
            return false
        }
        unverified.remove(key)
        sa.verified = true
        sas[key] = sa
        verifiedHalfOpen[pair, default: 0] += 1
        verifiedHalfOpenTotal += 1
        return true
    }

    /// Takes a token for Diffie-Hellman with a peer nobody has authenticated yet; false (audited,
    /// counted) when the budget is spent: the peer retransmits and gets its turn.
    func spendDiffieHellman(_ bucket: inout TokenBucket, now: UInt64, peer: Endpoint) -> Bool {
        if bucket.take(now: now) { return true }
        load.diffieHellmanRefused += 1
        load.refusedBusy += 1
        audit(.warning, "ike-busy", "Diffie-Hellman budget for unauthenticated peers spent; the message is dropped",
              [("peer", peer.description)])
        return false
    }

    /// An informational exchange with one notification; unencrypted before keys exist.
    func sendNotify(_ type: NotifyType, sa: IKESA, encrypted: Bool, protocolID: ProtocolID = .isakmp,
                    spi: [UInt8]? = nil, data: [UInt8] = []) {
        let n = Payload.notification(doi: 1, protocolID: protocolID.rawValue, type: type.rawValue,
                                     spi: spi ?? sa.cookies, data: data)
        if encrypted, let keys = sa.keys {
            let id = newMessageID()
            guard let hash = try? keys.hmacA(id.bytes + ISAKMPCodec.encode([n]).body),
                  let m = try? message(sa, exchange: .informational, messageID: id, payloads: [.hash(hash), n],
                                       iv: keys.exchangeIV(lastPhase1Block: sa.iv, messageID: id)) else { return }
            send(m.bytes, sa: sa)
        } else if let m = try? message(sa, exchange: .informational, messageID: 0, payloads: [n], iv: nil) {
            send(m.bytes, sa: sa)
        }
    }

    func payloads(_ header: ISAKMPHeader, body: [UInt8], decrypted: Bool) throws -> [ISAKMPCodec.Parsed] {
        try ISAKMPCodec.decodeChain(first: header.nextPayload, body: body, allowPadding: decrypted)
    }

    func vendorFlags(_ parsed: [ISAKMPCodec.Parsed], _ sa: IKESA) {
        for p in parsed {
            if case .vendorID(let v) = p.payload, v == VendorIDs.deadPeerDetection { sa.peerSupportsDPD = true }
            guard case .vendorID(let v) = p.payload, sa.peer.natTraversal else { continue }
            if v == VendorIDs.natTraversalRFC3947 { sa.natTraversal = true; sa.rfc3947 = true }
            if VendorIDs.draftNATT.contains(v) { sa.natTraversal = true }
        }
    }

    // MARK: responder

    /// A new responder SA for a first message, if a peer matches and expects this exchange mode.
    func newResponder(_ header: ISAKMPHeader, mode: IKEPeer.ExchangeMode, from: Endpoint, now: UInt64) -> IKESA? {
        let name = mode == .main ? "main mode" : "aggressive mode"
        guard let peer = configuration.peer(for: from.address) else {
            audit(.warning, "ike-no-peer", "\(name) from an address no /ip ipsec peer matches",
                  [("peer", from.description)])
            return nil
        }
        guard peer.exchangeMode == mode else {
            audit(.warning, "ike-refused",
                  "\(name) refused: the peer is configured with exchange-mode=\(peer.exchangeMode)",
                  [("peer", from.description)])
            return nil
        }
        return IKESA(initiator: false, initiatorCookie: header.initiatorCookie, responderCookie: random(8),
                     remote: from,
                     localAddress: receivedOn != 0 ? receivedOn : localAddress(toward: from.address), peer: peer,
                     now: now)
    }

    private func respondToFirst(_ header: ISAKMPHeader, _ datagram: [UInt8], from: Endpoint, now: UInt64) throws {
        guard let sa = newResponder(header, mode: .main, from: from, now: now) else { return }
        let parsed = try payloads(header, body: Array(datagram[ISAKMPHeader.size...]), decrypted: false)
        guard let saPayload = parsed.first(where: { if case .sa = $0.payload { return true } else { return false } }),
              case .sa(_, _, let proposals) = saPayload.payload else {
            throw NegotiationError.malformed("main mode message 1 without an SA payload")
        }
        sa.initiatorSABody = saPayload.body
        vendorFlags(parsed, sa)
        guard let (proposal, transform) = choosePhase1(sa, proposals, now: now) else { return }
        let reply: [Payload] = [.sa(doi: 1, situation: 1,
                                    proposals: [Proposal(number: proposal.number, protocolID: proposal.protocolID,
                                                         spi: [], transforms: [transform])])]
        try answerFirst(sa, reply + responderVendorIDs(sa), exchange: .identityProtection, datagram: datagram, now: now)
    }

    /// The responder's first answer: the SA is kept from here on, and the answer repeated if the
    /// peer repeats itself.
    func answerFirst(_ sa: IKESA, _ payloads: [Payload], exchange: ExchangeType, datagram: [UInt8],
                     now: UInt64) throws {
        let (bytes, _) = try message(sa, exchange: exchange, messageID: 0, payloads: payloads, iv: nil)
        sa.lastReceived = datagram
        send(bytes, sa: sa)
        sa.retransmit.arm(bytes, fromPort: sa.localPort, source: sa.localAddress, to: sa.remote, now: now,
                          waiting: false)
        // Kept as unverified until the peer echoes our cookie; the oldest such give way.
        let evicted = unverified.admit(sa,
                                       key: IKESAKey(initiatorCookie: sa.initiatorCookie, remote: sa.remote.address))
        if !evicted.isEmpty {
            load.evicted += UInt64(evicted.count)
            audit(.warning, "ike-busy", "unverified phase 1 negotiations gave way to newer first messages",
                  [("evicted", String(evicted.count))])
        }
        audit(.informational, "ike-start",
              "phase 1 negotiation answered (\(exchange == .aggressive ? "aggressive" : "main") mode)",
              [("peer", sa.remote.description), ("proposal", sa.choice.description)], limitedBy: "ike-start-responder")
    }

    /// What the initiator's first message says we support, and what a responder says back.
    func initiatorVendorIDs(_ peer: IKEPeer) -> [Payload] {
        (peer.natTraversal ? [.vendorID(VendorIDs.natTraversalRFC3947), .vendorID(VendorIDs.natTraversalDraft02n)] : [])
            + [.vendorID(VendorIDs.deadPeerDetection)]
    }

    func responderVendorIDs(_ sa: IKESA) -> [Payload] {
        (sa.natTraversal
             ? [.vendorID(sa.rfc3947 ? VendorIDs.natTraversalRFC3947 : VendorIDs.natTraversalDraft02n)] : [])
            + [.vendorID(VendorIDs.deadPeerDetection)]
    }

    /// RFC 3947 3.2: the hash of the remote end's address and port first, then ours. Forced
    /// encapsulation hashes no address of ours: the peer sees a NAT in front of us.
    func natDiscoveryPayloads(_ sa: IKESA) -> [Payload] {
        let ours = sa.peer.forceUDPEncapsulation ? natHash(sa, 0, 0) : natHash(sa, sa.localAddress, sa.localPort)
        return [.natDiscovery(natHash(sa, sa.remote.address, sa.remote.port)), .natDiscovery(ours)]
    }

    /// The responder's pick among the initiator's transforms: ours, with the shorter lifetime.
    /// On failure the SA is failed (NO-PROPOSAL-CHOSEN, both sides named) and nil returned.
    func choosePhase1(_ sa: IKESA, _ proposals: [Proposal], now: UInt64) -> (Proposal, Transform)? {
        let peer = sa.peer
        let ours = sa.choice
        var offered: [String] = []
        var chosen: (Proposal, Transform, Phase1Choice)?
        for p in proposals where p.protocolID == ProtocolID.isakmp.rawValue {
            for t in p.transforms {
                guard case .success(let c) = Phase1Choice.parse(t) else { continue }
                offered.append(c.description)
                if c.authentication == ours.authentication, c.encryption == ours.encryption, c.hash == ours.hash,
                   c.group == ours.group, chosen == nil {
                    chosen = (p, t, c)
                }
            }
        }
        guard let (proposal, transform, choice) = chosen else {
            let error = NegotiationError.noProposal(
                "peer offered \(offered.isEmpty ? "nothing usable" : offered.joined(separator: ", ")); "
                + "peer \(IPv4Address.text(peer.address))/\(peer.prefixLength) has \(ours)")
            fail(sa, error, now: now)
            return nil
        }
        // The initiator's lifetime is taken when shorter than ours (never beyond the maximum).
        sa.choice = Phase1Choice(encryption: choice.encryption, hash: choice.hash, group: choice.group,
                                 lifetime: min(choice.lifetime, peer.lifetime).capped(at: .maximumLifetime))
        sa.choice.authentication = choice.authentication
        return (proposal, transform)
    }

    func keyExchangePayloads(_ sa: IKESA) -> [Payload] {
        var out: [Payload] = [.keyExchange(sa.initiator ? sa.initiatorKE : sa.responderKE),
                              .nonce(sa.initiator ? sa.initiatorNonce : sa.responderNonce)]
        if sa.natTraversal { out += natDiscoveryPayloads(sa) }
        return out
    }

    /// Reads KE, nonce and NAT-D from message 3 or 4.
    func takeKeyExchange(_ sa: IKESA, _ parsed: [ISAKMPCodec.Parsed]) throws {
        var ke: [UInt8]?, nonce: [UInt8]?, nat: [[UInt8]] = []
        for p in parsed {
            switch p.payload {
            case .keyExchange(let k): ke = k
            case .nonce(let n): nonce = n
            case .natDiscovery(let d): nat.append(d)
            default: break
            }
        }
        guard let ke, let nonce else { throw NegotiationError.malformed("main mode key exchange without KE and nonce") }
        guard (8...256).contains(nonce.count) else { throw NegotiationError.malformed("nonce of \(nonce.count) bytes") }
        if sa.initiator {
            sa.responderKE = ke; sa.responderNonce = nonce
        } else {
            sa.initiatorKE = ke; sa.initiatorNonce = nonce
        }
        if sa.natTraversal, nat.count >= 2 {
            // Their first hash is of us as they see us; the others are of themselves.
            let us = natHash(sa, sa.localAddress, sa.localPort)
            let them = natHash(sa, sa.remote.address, sa.remote.port)
            sa.natDetected = nat[0] != us || !nat.dropFirst().contains(them) || sa.peer.forceUDPEncapsulation
        }
    }

    func deriveKeys(_ sa: IKESA) throws {
        guard let dh = sa.dh else { throw NegotiationError.malformed("no DH state") }
        let peerKE = sa.initiator ? sa.responderKE : sa.initiatorKE
        let shared: Secret
        do { shared = try dh.sharedSecret(with: peerKE) } catch {
            throw NegotiationError.malformed("peer's \(sa.choice.group.name) public value refused: \(error)")
        }
        // The private value has done its work: gone now (forward secrecy, and some 2 KiB a peer).
        sa.dh = nil
        sa.keys = try Phase1Keys(preSharedKey: sa.peer.signature == nil ? sa.peer.secret : nil, choice: sa.choice,
                                 initiatorNonce: sa.initiatorNonce,
                                 responderNonce: sa.responderNonce, sharedSecret: shared,
                                 initiatorCookie: sa.initiatorCookie, responderCookie: sa.responderCookie)
        sa.iv = sa.keys?.phase1IV(gxi: sa.initiatorKE, gxr: sa.responderKE) ?? []
    }

    func identity(_ sa: IKESA) -> Payload {
        .identification(type: IDType.ipv4Address, protocolID: 0, port: 0, data: sa.localAddress.bytes)
    }

    private func responderGotKE(_ sa: IKESA, _ header: ISAKMPHeader, _ datagram: [UInt8], now: UInt64) throws {
        let parsed = try payloads(header, body: Array(datagram[ISAKMPHeader.size...]), decrypted: false)
        try takeKeyExchange(sa, parsed)
        let dh = try newDiffieHellman(sa.choice.group)
        sa.dh = dh
        sa.responderKE = dh.publicValue
        sa.responderNonce = random(32)
        try deriveKeys(sa)
        let (bytes, _) = try message(sa, exchange: .identityProtection, messageID: 0, payloads: keyExchangePayloads(sa),
                                     iv: nil)
        sa.state = .answeredKE
        // Announced only now that message 3 carried our cookie: spoofed first messages cannot
        // flood the monitor's table of announced exchanges.
        announceSigning(sa)
        send(bytes, sa: sa)
        sa.retransmit.arm(framed(bytes, sa: sa), fromPort: sa.localPort, source: sa.localAddress, to: sa.remote,
                          now: now, waiting: false)
    }

    private func responderGotID(_ sa: IKESA, _ header: ISAKMPHeader, _ datagram: [UInt8], now: UInt64) throws {
        guard header.flags & ISAKMPHeader.encryptedFlag != 0, let keys = sa.keys else {
            throw NegotiationError.malformed("message 5 not encrypted")
        }
        let (body, last) = try decrypt(sa, datagram, iv: sa.iv)
        sa.iv = last
        let parsed: [ISAKMPCodec.Parsed]
        do { parsed = try payloads(header, body: body, decrypted: true) } catch {
            // Garbage after decryption is what a wrong pre-shared key looks like.
            throw NegotiationError.authentication("message 5 does not decrypt (\(error)): the pre-shared keys differ")
        }
        guard let id = parsed.first(
                  where: { if case .identification = $0.payload { return true } else { return false } }) else {
            throw NegotiationError.malformed("message 5 without ID")
        }
        let expected = try keys.authenticationHash(initiator: true, gxi: sa.initiatorKE, gxr: sa.responderKE,
                                                   ckyI: sa.initiatorCookie,
                                                   ckyR: sa.responderCookie, saBody: sa.initiatorSABody,
                                                   idBody: id.body)
        try verifyAuthentication(sa, parsed, expected: expected, what: "HASH_I")
        for p in parsed {
            if case .notification(_, _, let type, _, _) = p.payload, type == NotifyType.initialContact.rawValue {
                sa.peerSentInitialContact = true
            }
        }
        let ourID = identity(sa)
        let idBody = ISAKMPCodec.encodeData(ourID)
        let hashR = try keys.authenticationHash(initiator: false, gxi: sa.initiatorKE, gxr: sa.responderKE,
                                                ckyI: sa.initiatorCookie,
                                                ckyR: sa.responderCookie, saBody: sa.initiatorSABody, idBody: idBody)
        authenticate(sa, hash: hashR, now: now) { [unowned self] proof, now in
            let (bytes, lastBlock) = try self.message(sa, exchange: .identityProtection, messageID: 0,
                                                      payloads: [ourID] + proof, iv: sa.iv)
            sa.iv = lastBlock
            self.send(bytes, sa: sa)
            sa.retransmit.arm(self.framed(bytes, sa: sa), fromPort: sa.localPort, source: sa.localAddress,
                              to: sa.remote, now: now, waiting: false)
            self.established(sa, now: now)
        }
    }

    /// Signature peers: tells the monitor, once, which exchange signatures will be asked for.
    func announceSigning(_ sa: IKESA) {
        guard let signature = sa.peer.signature, sa.signingExchange == nil else { return }
        let exchange = SigningExchange(initiatorCookie: sa.initiatorCookie, peer: IPv4Address(sa.remote.address),
                                       prf: sa.choice.hash, initiator: sa.initiator)
        sa.signingExchange = exchange
        actions.append(.announceSigning(exchange, certificate: signature.certificateName))
    }

    /// Pre-shared key: HASH proves it at once. Signatures: the monitor signs the hash (IKE never
    /// holds the private key), and the message goes out when the signature comes back.
    func authenticate(_ sa: IKESA, hash: [UInt8], now: UInt64, then: @escaping ([Payload], UInt64) throws -> Void) {
        guard let signature = sa.peer.signature else {
            do {
                try then([.hash(hash)], now)
            } catch {
                audit(.error, "ike-failed", "cannot build the authenticated message: \(error)")
            }
            return
        }
        // Only what was announced, and only a value of the PRF's length, is ever asked for.
        guard let exchange = sa.signingExchange, hash.count == exchange.prf.outputLength else {
            fail(sa, .authentication("no announced exchange, or a hash of the wrong length, to sign"), now: now)
            return
        }
        nextSignatureID += 1
        let id = nextSignatureID
        let certificate = Payload.certificate(encoding: 4, data: signature.localCertificate)
        pendingSignatures[id] = (IKESAKey(initiatorCookie: sa.initiatorCookie, remote: sa.remote.address),
                                 { [unowned self] sig, now in
            guard let sig else {
                self.fail(sa,
                          .authentication("the monitor could not sign with certificate \(signature.certificateName)"),
                          now: now)
                return
            }
            do { try then([certificate, .signature(sig)], now) } catch {
                self.audit(.error, "ike-failed", "cannot build the signed message: \(error)")
            }
        })
        actions.append(.sign(id: id, certificate: signature.certificateName, data: hash, exchange: exchange))
    }

    /// HASH for a pre-shared key; for signatures, SIG verified with the configured
    /// remote-certificate (a CERT the peer sends must be that very certificate).
    func verifyAuthentication(_ sa: IKESA, _ parsed: [ISAKMPCodec.Parsed], expected: [UInt8], what: String) throws {
        guard let signature = sa.peer.signature else {
            guard case .hash(let received)? = parsed.first(
                      where: { if case .hash = $0.payload { return true } else { return false } })?.payload else {
                throw NegotiationError.malformed("\(what) missing")
            }
            guard Self.constantTimeEqual(expected, received) else {
                throw NegotiationError.authentication("\(what) does not match: the pre-shared keys differ")
            }
            return
        }
        guard case .signature(let sig)? = parsed.first(
                  where: { if case .signature = $0.payload { return true } else { return false } })?.payload else {
            throw NegotiationError.authentication("no signature from the peer (rsa-signature expected)")
        }
        if case .certificate(_, let der)? = parsed.first(
               where: { if case .certificate = $0.payload { return true } else { return false } })?.payload,
           der != signature.remoteCertificate.der {
            throw NegotiationError.authentication("the peer's certificate is not the configured remote-certificate")
        }
        guard signature.remoteCertificate.verify(signature: sig, over: expected) else {
            throw NegotiationError.authentication(
                "the peer's signature over \(what) does not verify with the remote-certificate")
        }
    }

    // MARK: initiator

    private func initiatorGotSA(_ sa: IKESA, _ header: ISAKMPHeader, _ datagram: [UInt8], now: UInt64) throws {
        let parsed = try payloads(header, body: Array(datagram[ISAKMPHeader.size...]), decrypted: false)
        guard case .sa(_, _, let proposals)? = parsed.first(
                  where: { if case .sa = $0.payload { return true } else { return false } })?.payload,
              proposals.count == 1, let t = proposals.first?.transforms.first,
              proposals.first?.transforms.count == 1 else {
            throw NegotiationError.malformed("message 2 must choose exactly one transform")
        }
        guard case .success(let choice) = Phase1Choice.parse(t), choice.authentication == sa.choice.authentication,
              choice.encryption == sa.choice.encryption,
              choice.hash == sa.choice.hash, choice.group == sa.choice.group else {
            throw NegotiationError.noProposal("peer chose a transform we did not offer")
        }
        sa.responderCookie = header.responderCookie
        sa.choice.lifetime = min(choice.lifetime, sa.choice.lifetime).capped(at: .maximumLifetime)
        vendorFlags(parsed, sa)
        announceSigning(sa)
        let dh = try newDiffieHellman(sa.choice.group)
        sa.dh = dh
        sa.initiatorKE = dh.publicValue
        sa.initiatorNonce = random(32)
        let (bytes, _) = try message(sa, exchange: .identityProtection, messageID: 0, payloads: keyExchangePayloads(sa),
                                     iv: nil)
        sa.state = .sentKE
        send(bytes, sa: sa)
        sa.retransmit.arm(framed(bytes, sa: sa), fromPort: sa.localPort, source: sa.localAddress, to: sa.remote,
                          now: now, waiting: true)
    }

    private func initiatorGotKE(_ sa: IKESA, _ header: ISAKMPHeader, _ datagram: [UInt8], now: UInt64) throws {
        let parsed = try payloads(header, body: Array(datagram[ISAKMPHeader.size...]), decrypted: false)
        try takeKeyExchange(sa, parsed)
        try deriveKeys(sa)
        guard let keys = sa.keys else { return }
        // Behind a NAT (or facing one) everything from message 5 on goes over UDP 4500.
        if sa.natTraversal && sa.natDetected {
            sa.localPort = Self.natTPort
            sa.remote.port = Self.natTPort
        }
        let ourID = identity(sa)
        let hashI = try keys.authenticationHash(initiator: true, gxi: sa.initiatorKE, gxr: sa.responderKE,
                                                ckyI: sa.initiatorCookie,
                                                ckyR: sa.responderCookie, saBody: sa.initiatorSABody,
                                                idBody: ISAKMPCodec.encodeData(ourID))
        var contact: [Payload] = []
        // INITIAL-CONTACT tells the peer to drop everything it holds from us between these two
        // addresses: only when we hold nothing there either (a new phase 1 after the old one
        // expired must not cut live SAs).
        if sa.peer.sendInitialContact
            && !sas.values.contains(where: { $0 !== sa && Self.sameAddresses($0, sa) && $0.state == .established })
            && !children.contains(where: { Self.sameAddresses($0, sa) }) {
            contact.append(.notification(doi: 1, protocolID: ProtocolID.isakmp.rawValue,
                                         type: NotifyType.initialContact.rawValue, spi: sa.cookies, data: []))
        }
        sa.state = .sentID
        authenticate(sa, hash: hashI, now: now) { [unowned self] proof, now in
            let (bytes, lastBlock) = try self.message(sa, exchange: .identityProtection, messageID: 0,
                                                      payloads: [ourID] + proof + contact, iv: sa.iv)
            sa.iv = lastBlock
            self.send(bytes, sa: sa)
            sa.retransmit.arm(self.framed(bytes, sa: sa), fromPort: sa.localPort, source: sa.localAddress,
                              to: sa.remote, now: now, waiting: true)
        }
    }

    private func initiatorGotID(_ sa: IKESA, _ header: ISAKMPHeader, _ datagram: [UInt8], now: UInt64) throws {
        guard header.flags & ISAKMPHeader.encryptedFlag != 0, let keys = sa.keys else {
            throw NegotiationError.malformed("message 6 not encrypted")
        }
        let (body, last) = try decrypt(sa, datagram, iv: sa.iv)
        let parsed: [ISAKMPCodec.Parsed]
        do { parsed = try payloads(header, body: body, decrypted: true) } catch {
            throw NegotiationError.authentication("message 6 does not decrypt (\(error)): the pre-shared keys differ")
        }
        guard let id = parsed.first(
                  where: { if case .identification = $0.payload { return true } else { return false } }) else {
            throw NegotiationError.malformed("message 6 without ID")
        }
        let expected = try keys.authenticationHash(initiator: false, gxi: sa.initiatorKE, gxr: sa.responderKE,
                                                   ckyI: sa.initiatorCookie,
                                                   ckyR: sa.responderCookie, saBody: sa.initiatorSABody,
                                                   idBody: id.body)
        try verifyAuthentication(sa, parsed, expected: expected, what: "HASH_R")
        sa.iv = last
        sa.retransmit.stop()
        established(sa, now: now)
    }

    func established(_ sa: IKESA, now: UInt64) {
        if sa.verified, sa.state != .established { releaseVerifiedSlot(sa) }
        sa.state = .established
        sa.establishedAt = now
        // What only the exchange's hashes covered is not needed again: a phase 1 that lasts a day
        // should not carry its public values, nonces and bodies (about 1 KiB).
        sa.initiatorKE = []; sa.responderKE = []; sa.initiatorNonce = []; sa.responderNonce = []
        sa.initiatorSABody = []; sa.initiatorIDBody = []
        sa.lastHeard = now
        audit(.notice, "ike-established", "phase 1 established",
              [("peer", sa.remote.description), ("side", sa.initiator ? "initiator" : "responder"),
               ("proposal", sa.choice.description), ("nat-t", sa.natDetected ? "yes" : "no")])
        if sa.peerSentInitialContact {
            // The peer starts afresh: what we hold from its previous life is stale. A multihomed
            // appliance of ours is as many peers to it as it has addresses: only this pair's go.
            let stale = sas.filter { $0.value !== sa && Self.sameAddresses($0.value, sa) }
            for (k, _) in stale { removeSA(k) }
            for c in children where Self.sameAddresses(c, sa) { removeChild(c, sendDelete: false, now: now) }
            if !stale.isEmpty {
                audit(.notice, "ike-initial-contact", "peer restarted: its old SAs were dropped",
                      [("peer", sa.remote.description)])
            }
        }
        let pending = sa.pendingPolicies
        sa.pendingPolicies = []
        for id in pending {
            if let policy = configuration.policy(id: id) { startQuickMode(sa, policy: policy, now: now) }
        }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var d: UInt8 = 0
        for i in a.indices { d |= a[i] ^ b[i] }
        return d == 0
    }
}
