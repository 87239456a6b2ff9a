import KeywayVocabulary

/// INFORMATIONAL (RFC 7296 1.4, 1.5, 2.4): deletes both ways, liveness checks, error
/// notifications; and where each request and response goes.
extension IKEv2Engine {
    func handleRequest(_ sa: IKEv2SA, _ exchange: IKEv2Exchange, _ id: UInt32, _ inner: [IKEv2Codec.Parsed],
                       now: UInt64) {
        switch exchange {
        case .ikeAuth:
            guard sa.state == .initAnswered else { return }
            responderGotAuth(sa, id, inner, now: now)
        case .createChildSA:
            responderCreateChild(sa, id, inner, now: now)
        case .informational:
            responderInformational(sa, id, inner, now: now)
        case .ikeSAInit:
            return
        }
    }

    func handleResponse(_ sa: IKEv2SA, _ out: OutstandingRequest, _ inner: [IKEv2Codec.Parsed], now: UInt64) throws {
        switch out.kind {
        case .ikeAuth(let child):
            initiatorGotAuth(sa, child: child, inner, now: now)
        case .createChild(let neg):
            var nonce: [UInt8]?
            for p in inner { if case .nonce(let n) = p.payload { nonce = n } }
            if let n = nonce, !(16...256).contains(n.count) { nonce = nil }
            if nonce == nil, !inner.contains(where: { if case .notify = $0.payload { return true }; return false }) {
                throw NegotiationError.malformed("CREATE_CHILD_SA response without a nonce")
            }
            initiatorGotChild(sa, neg, inner, keNonce: nil, nonces: (neg.nonce, nonce ?? []), now: now)
        case .rekeyIKE(let r):
            initiatorGotRekeyIKE(sa, r, inner, now: now)
        case .deleteIKE, .authenticationFailed:
            audit(.notice, "ike-deleted", "IKE SA deleted", [("peer", sa.remote.description), ("ike", "v2")])
            removeSAAndChildren(sa, now: now)
        case .deleteChildren, .liveness, .ikeSAInit:
            break
        }
    }

    func responderInformational(_ sa: IKEv2SA, _ id: UInt32, _ inner: [IKEv2Codec.Parsed], now: UInt64) {
        var reply: [IKEv2Payload] = []
        var deleteIKE = false
        for p in inner {
            switch p.payload {
            case .delete(IKEv2Protocol.ike.rawValue, _, _):
                deleteIKE = true
            case .delete(let proto, 4, let spis)
                where proto == IKEv2Protocol.esp.rawValue || proto == IKEv2Protocol.ah.rawValue:
                // RFC 7296 1.4.1: the answer names our inbound half of each pair.
                let ipProto: UInt8 = proto == IKEv2Protocol.esp.rawValue ? 50 : 51
                var ours: [[UInt8]] = []
                for spi in spis {
                    let value = spi.reduce(0) { $0 << 8 | UInt32($1) }
                    guard let c = children.first(where: { $0.outboundSPI == value && $0.remote == sa.remote.address
                                                          && $0.proto == ipProto }) else { continue }
                    audit(.notice, "ike-delete", "peer deleted a child SA",
                          [("peer", sa.remote.description), ("policy", String(c.policyID)),
                           ("spi", String(value, radix: 16)), ("ike", "v2")])
                    ours.append(c.inboundSPI.bytes)
                    removeChild(c)
                }
                if !ours.isEmpty { reply.append(.delete(protocolID: proto, spiSize: 4, spis: ours)) }
            case .notify(_, let type, _, _) where type < IKEv2Notify.firstStatus:
                audit(.warning, "ike-peer-refused", "peer notified \(IKEv2Notify.name(type))",
                      [("peer", sa.remote.description), ("ike", "v2")])
                if type == IKEv2Notify.authenticationFailed.rawValue { deleteIKE = true }
            default:
                break
            }
        }
        sendResponse(sa, .informational, id, reply)
        if deleteIKE {
            audit(.notice, "ike-delete", "peer deleted the IKE SA", [("peer", sa.remote.description), ("ike", "v2")])
            removeSAAndChildren(sa, now: now)
        }
    }
}
