import KeywayCrypto
import KeywayVocabulary

/// IKE_SA_INIT (RFC 7296 1.2), both roles: SA, KE and nonces, NAT detection (2.23), COOKIE (2.6),
/// INVALID_KE_PAYLOAD and the retry with the group the responder wants (1.2), and the notifies
/// that announce fragmentation (RFC 7383) and signature hashes (RFC 7427).
extension IKEv2Engine {
    // MARK: initiator

    func startNegotiation(_ policy: IKEPolicy, now: UInt64) {
        guard let peer = configuration.peer(for: policy.saDestination) else {
            audit(.warning, "ike-no-peer", "no /ip ipsec peer matches the policy's sa-dst-address",
                  [("policy", String(policy.id)), ("sa-dst-address", IPv4Address.text(policy.saDestination))])
            failPolicies([policy.id], now: now)
            return
        }
        guard peer.exchangeMode == .ike2 else { return }
        guard !(policy.esp && policy.ah) else {
            audit(.warning, "ike-refused", "ipsec-protocols=ah,esp needs IKEv1: IKEv2 has no SA bundles (RFC 7296)",
                  [("policy", String(policy.id)), ("ike", "v2")])
            failPolicies([policy.id], now: now)
            return
        }
        if let sa = sas.values.first(where: { $0.remote.address == policy.saDestination && $0.rekeyedInto == nil
                                              && $0.state != .deleting }) {
            if sa.isEstablished {
                let negotiating = sa.queue.contains {
                    if case .createChild(policy.id, nil) = $0 { return true }; return false
                }
                    || pendingPolicy(sa.outstanding?.kind ?? .liveness).contains(policy.id)
                if !negotiating, !children.contains(where: { $0.policyID == policy.id && !$0.replaced }) {
                    enqueue(sa, .createChild(policyID: policy.id, rekeying: nil), now: now)
                }
            } else if !sa.pendingPolicies.contains(policy.id) {
                sa.pendingPolicies.append(policy.id)
            }
            return
        }
        let sa = IKEv2SA(localSPI: newIKESPI(), originalInitiator: true,
                         remote: Endpoint(address: policy.saDestination, port: peer.port),
                         localAddress: policy.saSource, peer: peer, group: peer.groups.first ?? peer.group,
                         state: .initSent, now: now)
        sa.pendingPolicies = [policy.id]
        sa.initiatorNonce = random(32)
        sas[sa.localSPI] = sa
        sendInit(sa, now: now)
        audit(.informational, "ike-start", "IKE SA negotiation started (IKEv2)",
              [("peer", sa.remote.description), ("proposal", peer.ikeSuiteDescription)])
    }

    /// IKE_SA_INIT request: the cookie first if we were given one; the same nonce (and key pair,
    /// unless the group changed) on every retry.
    func sendInit(_ sa: IKEv2SA, now: UInt64) {
        do {
            let dh = try sa.dh.flatMap { $0.group == sa.group ? $0 : nil } ?? newDiffieHellman(sa.group)
            sa.dh = dh
            var payloads: [IKEv2Payload] = []
            if let cookie = sa.cookie {
                payloads.append(.notify(protocolID: 0, type: IKEv2Notify.cookie.rawValue, spi: [], data: cookie))
            }
            payloads += [.sa([sa.peer.ikeProposal()]),
                         .keyExchange(group: UInt16(sa.group.rawValue), data: dh.publicValue),
                         .nonce(sa.initiatorNonce)]
            payloads += capabilityNotifies(sa, responderSPI: 0)
            let m = plainMessage(spiI: sa.localSPI, spiR: 0, exchange: .ikeSAInit, flags: IKEv2Header.initiatorFlag,
                                 id: 0,
                                 payloads)
            sa.initRequest = m
            sa.nextRequestID = 1
            let datagram = framed(m, sa)
            actions.append(.send(datagram, fromPort: sa.localPort, to: sa.remote, source: sa.localAddress))
            sa.outstanding = OutstandingRequest(messageID: 0, exchange: .ikeSAInit, kind: .ikeSAInit,
                                                datagrams: [datagram],
                                                nextAt: now.saturatingAdd(Self.firstRetransmit),
                                                interval: Self.firstRetransmit, maximumTries: Self.maximumTries)
        } catch {
            audit(.error, "ike-failed", "cannot build IKE_SA_INIT: \(error)", [("peer", sa.remote.description)])
            failPolicies(sa.pendingPolicies, now: now)
            removeSA(sa)
        }
    }

    /// NAT detection (when nat-traversal allows it), fragmentation support, and the hashes we
    /// verify (signature peers).
    func capabilityNotifies(_ sa: IKEv2SA, responderSPI: UInt64) -> [IKEv2Payload] {
        var out: [IKEv2Payload] = []
        if sa.natTraversal {
            let spiI = sa.originalInitiator ? sa.localSPI : sa.remoteSPI
            // force-udp-encapsulation: our source hash names no address of ours, so the peer sees a
            // NAT in front of us and both ends put ESP in UDP.
            let source = sa.peer.forceUDPEncapsulation ? natHash(spiI, responderSPI, 0, 0)
                : natHash(spiI, responderSPI, sa.localAddress, sa.localPort)
            out.append(.notify(protocolID: 0, type: IKEv2Notify.natDetectionSourceIP.rawValue, spi: [], data: source))
            out.append(.notify(protocolID: 0, type: IKEv2Notify.natDetectionDestinationIP.rawValue, spi: [],
                               data: natHash(spiI, responderSPI, sa.remote.address, sa.remote.port)))
        }
        out.append(.notify(protocolID: 0, type: IKEv2Notify.fragmentationSupported.rawValue, spi: [], data: []))
        if sa.peer.signature != nil {
            var hashes: [UInt8] = []
            for h in [IKEv2SignatureHash.sha256, .sha384, .sha512] { hashes.put16(h.rawValue) }
            out.append(.notify(protocolID: 0, type: IKEv2Notify.signatureHashAlgorithms.rawValue, spi: [],
                               data: hashes))
        }
        return out
    }

    /// RFC 7296 2.23: SHA-1(SPIi | SPIr | IP | Port).
    func natHash(_ spiI: UInt64, _ spiR: UInt64, _ address: UInt32, _ port: UInt16) -> [UInt8] {
        HashAlgorithm.sha1.digest(spiI.bytes + spiR.bytes + address.bytes + port.bytes)
    }

    /// Reads the peer's capability notifies of an IKE_SA_INIT message.
    func takeCapabilities(_ sa: IKEv2SA, _ payloads: [IKEv2Codec.Parsed], spiR: UInt64) {
        var sources: [[UInt8]] = [], destination: [UInt8]?
        for p in payloads {
            guard case .notify(_, let type, _, let data) = p.payload else { continue }
            switch IKEv2Notify(rawValue: type) {
            case .natDetectionSourceIP?: sources.append(data)
            case .natDetectionDestinationIP?: destination = data
            case .fragmentationSupported?: sa.peerFragmentation = true
            case .signatureHashAlgorithms?:
                var hashes: [HashAlgorithm] = []
                for i in stride(from: 0, to: data.count - 1, by: 2) {
                    switch IKEv2SignatureHash(rawValue: UInt16(data[i]) << 8 | UInt16(data[i + 1])) {
                    case .sha1?: hashes.append(.sha1)
                    case .sha256?: hashes.append(.sha256)
                    case .sha384?: hashes.append(.sha384)
                    case .sha512?: hashes.append(.sha512)
                    case nil: break
                    }
                }
                sa.peerSignatureHashes = hashes
            default: break
            }
        }
        guard sa.natTraversal, let destination, !sources.isEmpty else {
            // A peer that sends no NAT detection cannot float to 4500: no UDP encapsulation.
            sa.natTraversal = false
            return
        }
        let spiI = sa.originalInitiator ? sa.localSPI : sa.remoteSPI
        let them = natHash(spiI, spiR, sa.remote.address, sa.remote.port)
        let us = natHash(spiI, spiR, sa.localAddress, sa.localPort)
        // Their source hash names them as they see themselves; their destination hash names us.
        sa.natDetected = !sources.contains(them) || destination != us || sa.peer.forceUDPEncapsulation
    }

    func initiatorGotInit(_ sa: IKEv2SA, _ m: IKEv2Codec.Message, _ datagram: [UInt8], from: Endpoint,
                          now: UInt64) throws {
        let payloads = m.payloads
        for p in payloads {
            guard case .notify(_, let type, _, let data) = p.payload,
                  type < IKEv2Notify.firstStatus || type == IKEv2Notify.cookie.rawValue else { continue }
            switch IKEv2Notify(rawValue: type) {
            case .cookie?:
                guard sa.cookieRetries < 3, !data.isEmpty, data.count <= 64 else {
                    return failInit(sa, .malformed("the responder keeps asking for cookies"), now: now)
                }
                sa.cookieRetries += 1
                sa.cookie = data
                audit(.informational, "ike-cookie", "the responder asked for a cookie: IKE_SA_INIT repeated with it",
                      [("peer", sa.remote.description)])
                sendInit(sa, now: now)
                return
            case .invalidKEPayload?:
                guard data.count == 2, let group = DHGroup(rawValue: Int(UInt16(data[0]) << 8 | UInt16(data[1]))),
                      sa.peer.groups.contains(group), group != sa.group, sa.groupRetries < 2 else {
                    return failInit(sa, .noProposal("the responder asked for a Diffie-Hellman group we did not offer"),
                                    now: now)
                }
                sa.groupRetries += 1
                audit(.informational, "ike-invalid-ke",
                      "the responder wants group \(group.name) (INVALID_KE_PAYLOAD): IKE_SA_INIT repeated with it",
                      [("peer", sa.remote.description), ("was", sa.group.name)])
                sa.group = group
                sa.dh = nil
                sendInit(sa, now: now)
                return
            default:
                audit(.warning, "ike-peer-refused", "peer refused the IKE SA: \(IKEv2Notify.name(type))",
                      [("peer", sa.remote.description), ("ike", "v2")])
                failPolicies(sa.pendingPolicies, now: now)
                removeSA(sa)
                return
            }
        }
        do {
            var proposals: [IKEv2Proposal]?, ke: (UInt16, [UInt8])?, nonce: [UInt8]?
            for p in payloads {
                switch p.payload {
                case .sa(let props): proposals = props
                case .keyExchange(let g, let d): ke = (g, d)
                case .nonce(let n): nonce = n
                default: break
                }
            }
            guard let proposals, let ke, let nonce else {
                throw NegotiationError.malformed("IKE_SA_INIT response without SA, KE and nonce")
            }
            guard let suite = sa.peer.acceptIKE(proposals), suite.group == sa.group,
                  ke.0 == UInt16(sa.group.rawValue) else {
                let chose = proposals.map(IKEv2Transforms.describe).joined(separator: "; ")
                throw NegotiationError.noProposal("the responder chose \(chose), which we did not offer")
            }
            guard (16...256).contains(nonce.count) else {
                throw NegotiationError.malformed("nonce of \(nonce.count) bytes")
            }
            guard m.header.responderSPI != 0, let dh = sa.dh else {
                throw NegotiationError.malformed("no responder SPI")
            }
            sa.remoteSPI = m.header.responderSPI
            sa.responderNonce = nonce
            sa.initResponse = datagram
            sa.suite = suite
            let shared: Secret
            do { shared = try dh.sharedSecret(with: ke.1) } catch {
                throw NegotiationError.malformed("the responder's \(suite.group.name) public value refused: \(error)")
            }
            let seed = try IKEv2Keys.initialSKEYSEED(suite.prf, ni: sa.initiatorNonce, nr: nonce, sharedSecret: shared)
            sa.keys = try IKEv2Keys(suite: suite, skeyseed: seed, ni: sa.initiatorNonce, nr: nonce, spiI: sa.localSPI,
                                    spiR: sa.remoteSPI)
            sa.dh = nil
            takeCapabilities(sa, payloads, spiR: sa.remoteSPI)
            // Behind a NAT (or facing one) everything from IKE_AUTH on goes over UDP 4500.
            if sa.natDetected {
                sa.localPort = Self.natTPort
                sa.remote.port = Self.natTPort
            }
            sa.outstanding = nil
            sa.state = .authSent
            sendAuth(sa, now: now)
        } catch let error as NegotiationError {
            failInit(sa, error, now: now)
        }
    }

    func failInit(_ sa: IKEv2SA, _ error: NegotiationError, now: UInt64) {
        audit(.warning, "ike-failed", "IKE SA negotiation failed: \(error.reason)",
              [("peer", sa.remote.description), ("ike", "v2")])
        failPolicies(sa.pendingPolicies, now: now)
        removeSA(sa)
    }

    // MARK: responder

    /// An answer without state: COOKIE, INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN.
    func answerInit(spiI: UInt64, to: Endpoint, localPort: UInt16, _ type: IKEv2Notify, data: [UInt8]) {
        let m = plainMessage(spiI: spiI, spiR: 0, exchange: .ikeSAInit, flags: IKEv2Header.responseFlag, id: 0,
                             [.notify(protocolID: 0, type: type.rawValue, spi: [], data: data)])
        actions.append(.send(localPort == Self.natTPort ? [0, 0, 0, 0] + m : m, fromPort: localPort, to: to,
                             source: receivedOn))
    }

    func respondToInit(_ m: IKEv2Codec.Message, _ datagram: [UInt8], from: Endpoint, localPort: UInt16,
                       now: UInt64) throws {
        let spiI = m.header.initiatorSPI
        guard datagram.count <= IKEv2Admission.maximumInitMessage else {
            audit(.warning, "ike-malformed",
                  "IKE_SA_INIT longer than \(IKEv2Admission.maximumInitMessage) bytes dropped",
                  [("peer", from.description)])
            return
        }
        if let spi = answered[AnsweredKey(initiatorSPI: spiI, address: from.address)], let sa = sas[spi] {
            // The peer lost our answer: the same one again (anything else under this SPI is dropped).
            if sa.state == .initAnswered, datagram == sa.initRequest {
                actions.append(.send(framed(sa.initResponse, sa), fromPort: sa.localPort, to: sa.remote,
                                     source: sa.localAddress))
            }
            return
        }
        guard let peer = configuration.peer(for: from.address) else {
            audit(.warning, "ike-no-peer", "IKE_SA_INIT from an address no /ip ipsec peer matches",
                  [("peer", from.description)])
            return
        }
        guard peer.exchangeMode == .ike2 else {
            audit(.warning, "ike-refused",
                  "IKEv2 refused: the peer is configured with exchange-mode=\(peer.exchangeMode)",
                  [("peer", from.description)])
            return
        }
        var proposals: [IKEv2Proposal]?, ke: (UInt16, [UInt8])?, nonce: [UInt8]?, cookie: [UInt8]?
        for p in m.payloads {
            switch p.payload {
            case .sa(let props): proposals = props
            case .keyExchange(let g, let d): ke = (g, d)
            case .nonce(let n): nonce = n
            case .notify(_, IKEv2Notify.cookie.rawValue, _, let data): cookie = data
            default: break
            }
        }
        guard let proposals, let ke, let nonce, (16...256).contains(nonce.count) else {
            audit(.warning, "ike-malformed", "IKE_SA_INIT without SA, KE and a nonce of 16 to 256 bytes",
                  [("peer", from.description)])
            answerInit(spiI: spiI, to: from, localPort: localPort, .invalidSyntax, data: [])
            return
        }
        admission.rotate(now: now, random: random)
        let returnedCookie = cookie.map {
            admission.valid($0, nonce: nonce, address: from.address, initiatorSPI: spiI)
        } ?? false
        if admission.needsCookie && !returnedCookie {
            admission.cookiesSent += 1
            answerInit(spiI: spiI, to: from, localPort: localPort, .cookie,
                       data: admission.cookie(nonce: nonce, address: from.address, initiatorSPI: spiI))
            audit(.informational, "ike-cookie", "half-open IKE SAs at the threshold: answered with a COOKIE",
                  [("peer", from.description), ("threshold", String(IKEv2Admission.cookieThreshold))],
                  limitedBy: "ike-cookie")
            return
        }
        let suite: IKEv2Suite, chosen: IKEv2Proposal
        switch peer.chooseIKE(proposals, preferredGroup: DHGroup(rawValue: Int(ke.0))) {
        case .success(let (p, s)): (chosen, suite) = (p, s)
        case .failure(let error):
            audit(.warning, "ike-failed", "IKE SA negotiation failed: \(error.reason)",
                  [("peer", from.description), ("notify", "NO_PROPOSAL_CHOSEN"), ("ike", "v2")])
            answerInit(spiI: spiI, to: from, localPort: localPort, .noProposalChosen, data: [])
            return
        }
        guard ke.0 == UInt16(suite.group.rawValue) else {
            var data: [UInt8] = []
            data.put16(UInt16(suite.group.rawValue))
            audit(.informational, "ike-invalid-ke",
                  "the initiator's KE is for another group: INVALID_KE_PAYLOAD asks for \(suite.group.name)",
                  [("peer", from.description), ("offered", DHGroup(rawValue: Int(ke.0))?.name ?? "group-\(ke.0)")],
                  limitedBy: "ike-invalid-ke")
            answerInit(spiI: spiI, to: from, localPort: localPort, .invalidKEPayload, data: data)
            return
        }
        guard admission.spendDiffieHellman(now: now) else {
            audit(.warning, "ike-busy", "Diffie-Hellman budget for unauthenticated peers spent; IKE_SA_INIT dropped",
                  [("peer", from.description)])
            return
        }
        let sa = IKEv2SA(localSPI: newIKESPI(), originalInitiator: false, remote: from,
                         localAddress: receivedOn != 0 ? receivedOn : localAddress(toward: from.address), peer: peer,
                         group: suite.group, state: .initAnswered, now: now)
        sa.localPort = localPort
        sa.remoteSPI = spiI
        guard admission.admit(sa, verified: returnedCookie) else {
            audit(.warning, "ike-busy", "too many half-open IKE SAs with verified peers; IKE_SA_INIT refused",
                  [("peer", from.description)])
            return
        }
        do {
            let dh = try newDiffieHellman(suite.group)
            let shared: Secret
            do { shared = try dh.sharedSecret(with: ke.1) } catch {
                throw NegotiationError.malformed("the initiator's \(suite.group.name) public value refused: \(error)")
            }
            sa.initiatorNonce = nonce
            sa.responderNonce = random(32)
            sa.initRequest = datagram
            sa.suite = suite
            let seed = try IKEv2Keys.initialSKEYSEED(suite.prf, ni: nonce, nr: sa.responderNonce, sharedSecret: shared)
            sa.keys = try IKEv2Keys(suite: suite, skeyseed: seed, ni: nonce, nr: sa.responderNonce, spiI: spiI,
                                    spiR: sa.localSPI)
            takeCapabilities(sa, m.payloads, spiR: 0)
            var payloads: [IKEv2Payload] = [.sa([chosen]),
                                             .keyExchange(group: UInt16(suite.group.rawValue), data: dh.publicValue),
                                             .nonce(sa.responderNonce)]
            payloads += capabilityNotifies(sa, responderSPI: sa.localSPI)
            let response = plainMessage(spiI: spiI, spiR: sa.localSPI, exchange: .ikeSAInit,
                                        flags: IKEv2Header.responseFlag, id: 0, payloads)
            sa.initResponse = response
            sa.peerNextRequestID = 1
            sas[sa.localSPI] = sa
            answered[AnsweredKey(initiatorSPI: spiI, address: from.address)] = sa.localSPI
            actions.append(.send(framed(response, sa), fromPort: sa.localPort, to: sa.remote, source: sa.localAddress))
            audit(.informational, "ike-start", "IKE SA negotiation answered (IKEv2)",
                  [("peer", sa.remote.description), ("proposal", suite.description)], limitedBy: "ike-start-responder")
        } catch let error as NegotiationError {
            admission.release(sa)
            audit(.warning, "ike-failed", "IKE SA negotiation failed: \(error.reason)",
                  [("peer", from.description), ("notify", "INVALID_SYNTAX"), ("ike", "v2")])
            answerInit(spiI: spiI, to: from, localPort: localPort, .invalidSyntax, data: [])
        }
    }

    /// RFC 7296 2.5: an IKE_SA_INIT with a critical payload we do not know is answered with
    /// UNSUPPORTED_CRITICAL_PAYLOAD (statelessly; later messages answer in their own exchange).
    func answerUnsupportedCritical(_ datagram: [UInt8], type: UInt8, from: Endpoint, localPort: UInt16) {
        guard datagram.count >= IKEv2Header.size, datagram[18] == IKEv2Exchange.ikeSAInit.rawValue,
              datagram[19] & IKEv2Header.responseFlag == 0 else { return }
        let spiI = UInt64(bytes: Array(datagram[0..<8]))
        answerInit(spiI: spiI, to: from, localPort: localPort, .unsupportedCriticalPayload, data: [type])
    }
}
