import KeywayCrypto
import KeywayVocabulary
import KeywayWire

/// IKE_AUTH (RFC 7296 1.2, 2.15): identities, AUTH with a pre-shared key, RSA signatures (method 1)
/// or RFC 7427 Digital Signatures (method 14, signed by keyway-monitor), INITIAL_CONTACT, and the
/// first child SA.
extension IKEv2Engine {
    // MARK: identities

    func ourIdentity(_ sa: IKEv2SA) -> (type: UInt8, data: [UInt8]) {
        switch sa.peer.myID {
        case .auto: return (IKEv2IDType.ipv4Address, sa.localAddress.bytes)
        case .address(let a): return (IKEv2IDType.ipv4Address, a.value.bytes)
        case .fqdn(let f): return (IKEv2IDType.fqdn, Array(f.utf8))
        case .userFQDN(let u): return (IKEv2IDType.rfc822Address, Array(u.utf8))
        case .keyID(let k): return (IKEv2IDType.keyID, k)
        }
    }

    /// remote-id=auto accepts any identity (the key or pinned certificate authenticates); any
    /// other value must be exactly what the peer sends.
    func identityAccepted(_ expected: IKEIdentity, type: UInt8, data: [UInt8]) -> Bool {
        switch expected {
        case .auto: return true
        case .address(let a): return type == IKEv2IDType.ipv4Address && data == a.value.bytes
        case .fqdn(let f): return type == IKEv2IDType.fqdn && data == Array(f.utf8)
        case .userFQDN(let u): return type == IKEv2IDType.rfc822Address && data == Array(u.utf8)
        case .keyID(let k): return type == IKEv2IDType.keyID && data == k
        }
    }

    /// A peer's identity for audit lines: printable text only, else hex.
    func describeIdentity(type: UInt8, data: [UInt8]) -> String {
        let prefix: String
        switch type {
        case IKEv2IDType.ipv4Address where data.count == 4:
            return "address:" + IPv4Address.text(data.reduce(0) { $0 << 8 | UInt32($1) })
        case IKEv2IDType.fqdn: prefix = "fqdn:"
        case IKEv2IDType.rfc822Address: prefix = "user-fqdn:"
        case IKEv2IDType.keyID: prefix = "key-id:"
        case IKEv2IDType.derASN1DN: return "dn:0x" + Hex.encode(Array(data.prefix(32)))
        default: prefix = "type-\(type):"
        }
        if data.count <= 64, data.allSatisfy({ $0 > 0x20 && $0 < 0x7f }),
           let text = String(validating: data, as: UTF8.self) {
            return prefix + text
        }
        return prefix + "0x" + Hex.encode(Array(data.prefix(32)))
    }

    // MARK: proving who we are

    /// AUTH for our side. A pre-shared key proves itself at once; for a signature the monitor signs
    /// the octets these parts make (IKE never holds the private key), and `then` runs on its answer.
    func authenticate(_ sa: IKEv2SA, message: [UInt8], nonce: [UInt8], macedID: [UInt8], now: UInt64,
                      then: @escaping ([IKEv2Payload], UInt64) -> Void,
                      failed: @escaping (NegotiationError, UInt64) -> Void) {
        guard let suite = sa.suite else { return }
        guard let signature = sa.peer.signature else {
            do {
                let auth = try IKEv2Keys.sharedKeyAuth(suite.prf, secret: sa.peer.secret,
                                                       octets: message + nonce + macedID)
                then([.authentication(method: IKEv2AuthMethod.sharedKey.rawValue, data: auth)], now)
            } catch {
                failed(.malformed("cannot compute AUTH: \(error)"), now)
            }
            return
        }
        let exchange = SigningExchange(initiatorSPI: sa.spiI.bytes, responderSPI: sa.spiR.bytes,
                                       peer: IPv4Address(sa.remote.address), prf: suite.prf,
                                       initiator: sa.originalInitiator)
        if sa.signingExchange == nil {
            sa.signingExchange = exchange
            actions.append(.announceSigning(exchange, certificate: signature.certificateName))
        }
        // RFC 7427 when the peer said which hashes it verifies; otherwise RSA with SHA-1 (method 1).
        let method: IKEv2AuthMethod = sa.peerSignatureHashes == nil ? .rsaSignature : .digitalSignature
        nextSignatureID += 1
        let id = Self.signatureIDBit | nextSignatureID
        let certificate = IKEv2Payload.certificate(encoding: IKEv2CertificateEncoding.x509Signature,
                                                   data: signature.localCertificate)
        pendingSignatures[id] = PendingSignature(spi: sa.localSPI, then: { result, now in
            guard let (scheme, sig) = result else {
                failed(.authentication("the monitor did not sign with certificate \(signature.certificateName)"), now)
                return
            }
            if method == .rsaSignature {
                guard scheme == .rsaPKCS1SHA1 else {
                    failed(.authentication("the monitor signed with \(scheme.rawValue) for auth method 1"), now)
                    return
                }
                then([certificate, .authentication(method: method.rawValue, data: sig)], now)
            } else {
                then([certificate, .authentication(method: method.rawValue,
                                                   data: SignatureAlgorithms.authData(scheme, signature: sig))], now)
            }
        })
        actions.append(.signIKEv2(IKEv2SignRequest(id: id, exchange: exchange, certificate: signature.certificateName,
                                                   method: method.rawValue, peerHashes: sa.peerSignatureHashes ?? [],
                                                   message: message, nonce: nonce, macedID: macedID)))
    }

    /// Checks the peer's AUTH over `octets`: the pre-shared key, or a signature that verifies with
    /// the configured remote-certificate (a certificate the peer sends must be that very one).
    func verifyPeer(_ sa: IKEv2SA, method: UInt8, data: [UInt8], certificates: [[UInt8]], octets: [UInt8]) throws {
        guard let suite = sa.suite else { throw NegotiationError.malformed("no keys") }
        guard let signature = sa.peer.signature else {
            guard method == IKEv2AuthMethod.sharedKey.rawValue else {
                throw NegotiationError.authentication("the peer authenticated with method \(method); "
                                                      + "auth-method=pre-shared-key expects a shared key (2)")
            }
            let expected = try IKEv2Keys.sharedKeyAuth(suite.prf, secret: sa.peer.secret, octets: octets)
            guard IKEEngine.constantTimeEqual(expected, data) else {
                throw NegotiationError.authentication("AUTH does not match: the pre-shared keys differ")
            }
            return
        }
        if let first = certificates.first, first != signature.remoteCertificate.der {
            throw NegotiationError.authentication("the peer's certificate is not the configured remote-certificate")
        }
        let scheme: SignatureScheme, salt: Int?, sig: [UInt8]
        switch IKEv2AuthMethod(rawValue: method) {
        case .rsaSignature?: (scheme, salt, sig) = (.rsaPKCS1SHA1, nil, data)
        case .digitalSignature?:
            guard let parsed = SignatureAlgorithms.parse(data), parsed.scheme.hash != .sha1 else {
                throw NegotiationError.authentication("the peer's signature algorithm is not one Keyway verifies "
                                                      + "(RSA PKCS#1, RSA-PSS or ECDSA with SHA-256, -384 or -512)")
            }
            (scheme, salt, sig) = parsed
        default:
            throw NegotiationError.authentication("auth method \(method) is not supported: rsa-signature peers use "
                                                  + "RSA signatures (1) or RFC 7427 digital signatures (14)")
        }
        guard signature.remoteCertificate.verify(signature: sig, over: octets, scheme: scheme, pssSalt: salt) else {
            throw NegotiationError.authentication("the peer's \(scheme.rawValue) signature does not verify with the "
                                                  + "remote-certificate")
        }
    }

    // MARK: initiator

    func sendAuth(_ sa: IKEv2SA, now: UInt64) {
        guard let keys = sa.keys else { return }
        let id = ourIdentity(sa)
        let idPayload = IKEv2Payload.identification(initiator: true, type: id.type, data: id.data)
        var child: ChildNegotiation?
        while child == nil, !sa.pendingPolicies.isEmpty {
            let policyID = sa.pendingPolicies.removeFirst()
            if let p = policy(policyID) {
                child = ChildNegotiation(policy: p, inboundSPI: newChildSPI(), rekeying: nil)
            }
        }
        var childPayloads: [IKEv2Payload] = []
        if let child {
            let p = child.policy
            childPayloads = [.sa(p.childProposals(spi: child.inboundSPI, withGroup: nil)),
                             .trafficSelectors(initiator: true, [p.sourceRange.payload]),
                             .trafficSelectors(initiator: false, [p.destinationRange.payload])]
            if !p.tunnel {
                childPayloads.append(.notify(protocolID: 0, type: IKEv2Notify.useTransportMode.rawValue, spi: [],
                                             data: []))
            }
        }
        var contact: [IKEv2Payload] = []
        // INITIAL_CONTACT tells the peer to drop what it holds from us: only when we hold nothing with it.
        if sa.peer.sendInitialContact,
           !sas.values.contains(where: { $0 !== sa && $0.remote.address == sa.remote.address && $0.isEstablished }),
           !children.contains(where: { $0.remote == sa.remote.address }) {
            contact.append(.notify(protocolID: 0, type: IKEv2Notify.initialContact.rawValue, spi: [], data: []))
        }
        let macedID: [UInt8]
        do { macedID = try keys.macedID(initiator: true, idBody: IKEv2Codec.encodeData(idPayload)) } catch {
            failInit(sa, .malformed("cannot compute the MACed ID: \(error)"), now: now)
            return
        }
        authenticate(sa, message: sa.initRequest, nonce: sa.responderNonce, macedID: macedID, now: now,
                     then: { [unowned self] proof, now in
                         self.sendRequest(sa, .ikeAuth, [idPayload] + proof + contact + childPayloads,
                                          kind: .ikeAuth(child), now: now)
                     },
                     failed: { [unowned self] error, now in
                         if let child { self.failPolicies([child.policy.id], now: now) }
                         self.failInit(sa, error, now: now)
                     })
    }

    func initiatorGotAuth(_ sa: IKEv2SA, child: ChildNegotiation?, _ inner: [IKEv2Codec.Parsed], now: UInt64) {
        var idr: IKEv2Codec.Parsed?, auth: (UInt8, [UInt8])?, certificates: [[UInt8]] = []
        var errors: [UInt16] = []
        for p in inner {
            switch p.payload {
            case .identification(false, _, _): idr = p
            case .authentication(let m, let d): auth = (m, d)
            case .certificate(IKEv2CertificateEncoding.x509Signature, let d): certificates.append(d)
            case .notify(_, let type, _, _) where type < IKEv2Notify.firstStatus: errors.append(type)
            default: break
            }
        }
        let failedPolicies = sa.pendingPolicies + (child.map { [$0.policy.id] } ?? [])
        guard let idr, let auth, case .identification(_, let idType, let idData) = idr.payload else {
            let name = errors.first.map(IKEv2Notify.name) ?? "no AUTH payload"
            audit(.warning, "ike-peer-refused", "peer refused the IKE SA: \(name)",
                  [("peer", sa.remote.description), ("ike", "v2")])
            failPolicies(failedPolicies, now: now)
            removeSA(sa)
            return
        }
        do {
            guard identityAccepted(sa.peer.remoteID, type: idType, data: idData) else {
                let who = describeIdentity(type: idType, data: idData)
                throw NegotiationError.authentication("the peer identified as \(who); remote-id=\(sa.peer.remoteID)")
            }
            guard let keys = sa.keys else { return }
            let octets = sa.initResponse + sa.initiatorNonce + (try keys.macedID(initiator: false, idBody: idr.body))
            try verifyPeer(sa, method: auth.0, data: auth.1, certificates: certificates, octets: octets)
        } catch let error as NegotiationError {
            audit(.warning, "ike-failed", "IKE SA negotiation failed: \(error.reason)",
                  [("peer", sa.remote.description), ("notify", "AUTHENTICATION_FAILED"), ("ike", "v2")])
            // RFC 7296 2.21.2: tell the responder, then forget the SA.
            if let datagrams = protect(sa, .informational, sa.nextRequestID, response: false,
                                       [.notify(protocolID: 0, type: IKEv2Notify.authenticationFailed.rawValue, spi: [],
                                                data: [])]) {
                for d in datagrams {
                    actions.append(.send(d, fromPort: sa.localPort, to: sa.remote, source: sa.localAddress))
                }
            }
            failPolicies(failedPolicies, now: now)
            removeSA(sa)
            return
        } catch {
            failPolicies(failedPolicies, now: now)
            removeSA(sa)
            return
        }
        established(sa, now: now)
        if let child {
            initiatorGotChild(sa, child, inner, keNonce: nil, nonces: (sa.initiatorNonce, sa.responderNonce), now: now)
        }
        startPending(sa, now: now)
    }

    // MARK: responder

    func responderGotAuth(_ sa: IKEv2SA, _ id: UInt32, _ inner: [IKEv2Codec.Parsed], now: UInt64) {
        guard sa.state == .initAnswered else { return }
        var idi: IKEv2Codec.Parsed?, auth: (UInt8, [UInt8])?, certificates: [[UInt8]] = []
        var proposals: [IKEv2Proposal]?, tsi: [IKEv2TrafficSelector]?, tsr: [IKEv2TrafficSelector]?
        var transport = false, eap = false
        for p in inner {
            switch p.payload {
            case .identification(true, _, _): idi = p
            case .authentication(let m, let d): auth = (m, d)
            case .certificate(IKEv2CertificateEncoding.x509Signature, let d): certificates.append(d)
            case .sa(let props): proposals = props
            case .trafficSelectors(true, let t): tsi = t
            case .trafficSelectors(false, let t): tsr = t
            case .notify(_, IKEv2Notify.initialContact.rawValue, _, _): sa.peerSentInitialContact = true
            case .notify(_, IKEv2Notify.useTransportMode.rawValue, _, _): transport = true
            case .other(IKEv2PayloadType.eap, _, _): eap = true
            default: break
            }
        }
        let refuse = { [unowned self] (error: NegotiationError) in
            self.audit(.warning, "ike-failed", "IKE SA negotiation failed: \(error.reason)",
                       [("peer", sa.remote.description), ("notify", "AUTHENTICATION_FAILED"), ("ike", "v2")])
            self.sendResponse(sa, .ikeAuth, id,
                              [.notify(protocolID: 0, type: IKEv2Notify.authenticationFailed.rawValue, spi: [],
                                       data: [])])
            self.removeSA(sa)
        }
        guard let idi, let auth, case .identification(_, let idType, let idData) = idi.payload,
              let keys = sa.keys else {
            refuse(.authentication(eap ? "EAP is not supported: the initiator sent no AUTH"
                                       : "IKE_AUTH without IDi and AUTH"))
            return
        }
        do {
            guard identityAccepted(sa.peer.remoteID, type: idType, data: idData) else {
                let who = describeIdentity(type: idType, data: idData)
                throw NegotiationError.authentication("the peer identified as \(who); remote-id=\(sa.peer.remoteID)")
            }
            let octets = sa.initRequest + sa.responderNonce + (try keys.macedID(initiator: true, idBody: idi.body))
            try verifyPeer(sa, method: auth.0, data: auth.1, certificates: certificates, octets: octets)
        } catch let error as NegotiationError {
            refuse(error)
            return
        } catch {
            refuse(.malformed("\(error)"))
            return
        }
        // Authenticated: no longer a half-open SA, and no longer an IKE_SA_INIT to answer again.
        admission.release(sa)
        answered[AnsweredKey(initiatorSPI: sa.remoteSPI, address: sa.remote.address)] = nil
        var childPayloads: [IKEv2Payload] = []
        var install: ((UInt64) -> Void)?
        if let proposals, let tsi, let tsr {
            do {
                let answer = try respondChild(sa, proposals: proposals, tsi: tsi, tsr: tsr, transport: transport,
                                              nonces: (sa.initiatorNonce, sa.responderNonce), peerKE: nil,
                                              inIKEAuth: true,
                                              rekeying: nil, now: now)
                childPayloads = answer.payloads
                install = answer.install
            } catch let error as NegotiationError {
                let notify = childNotify(error)
                audit(.warning, "ike-failed", "child SA negotiation failed: \(error.reason)",
                      [("peer", sa.remote.description), ("notify", IKEv2Notify.name(notify.rawValue)), ("ike", "v2")])
                childPayloads = [.notify(protocolID: 0, type: notify.rawValue, spi: [], data: [])]
            } catch {
                childPayloads = [.notify(protocolID: 0, type: IKEv2Notify.noProposalChosen.rawValue, spi: [], data: [])]
            }
        }
        let ours = ourIdentity(sa)
        let idPayload = IKEv2Payload.identification(initiator: false, type: ours.type, data: ours.data)
        let macedID: [UInt8]
        do { macedID = try keys.macedID(initiator: false, idBody: IKEv2Codec.encodeData(idPayload)) } catch { return }
        authenticate(sa, message: sa.initResponse, nonce: sa.initiatorNonce, macedID: macedID, now: now,
                     then: { [unowned self] proof, now in
                         self.sendResponse(sa, .ikeAuth, id, [idPayload] + proof + childPayloads)
                         self.established(sa, now: now)
                         install?(now)
                         self.startPending(sa, now: now)
                     },
                     failed: { error, _ in refuse(error) })
    }

    // MARK: both

    func established(_ sa: IKEv2SA, now: UInt64) {
        sa.state = .established
        sa.establishedAt = now
        sa.lastHeard = now
        let lifetime = sa.peer.lifetime.capped(at: .maximumLifetime)
        if lifetime.value > 0 {
            sa.rekeyAt = rekeyPoint(from: now, lifetime: lifetime)
            sa.expiresAt = now.saturatingAdd(lifetime.milliseconds)
        }
        audit(.notice, "ike-established", "IKE SA established (IKEv2)",
              [("peer", sa.remote.description), ("side", sa.originalInitiator ? "initiator" : "responder"),
               ("proposal", sa.suite?.description ?? ""), ("nat-t", sa.natDetected ? "yes" : "no"), ("ike", "v2")])
        if sa.peerSentInitialContact {
            // The peer starts afresh: what we hold from its previous life is stale.
            let stale = sas.values.filter { $0 !== sa && $0.remote.address == sa.remote.address
                                            && ($0.isEstablished || $0.state == .deleting) }
            for old in stale { removeSAAndChildren(old, now: now) }
            for c in children where c.remote == sa.remote.address { removeChild(c) }
            if !stale.isEmpty {
                audit(.notice, "ike-initial-contact", "peer restarted: its old SAs were dropped",
                      [("peer", sa.remote.description)])
            }
        }
    }

    /// Policies that waited for the IKE SA get CREATE_CHILD_SA exchanges.
    func startPending(_ sa: IKEv2SA, now: UInt64) {
        let pending = sa.pendingPolicies
        sa.pendingPolicies = []
        for id in pending where policy(id) != nil { enqueue(sa, .createChild(policyID: id, rekeying: nil), now: now) }
    }
}
