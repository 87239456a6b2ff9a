import KeywayCrypto
import KeywayVocabulary
import KeywayWire

/// keyway-ike's two engines behind one face, so that its main stays a thin loop: each datagram
/// goes to the IKEv1 or the IKEv2 engine by the major version in its header, each acquire by the
/// exchange-mode of the policy's peer, each signing reply by its id. Both engines share the
/// injected random source and the generated policies (one id space, one set of bounds).
public final class IKEService {
    public let v1: IKEEngine
    public let v2: IKEv2Engine
    let book = GeneratedPolicyBook()

    public init(configuration: IKEConfiguration = IKEConfiguration(),
                random: @escaping (Int) -> [UInt8] = SecureRandom.bytes) {
        v1 = IKEEngine(configuration: configuration, random: random, generated: book)
        v2 = IKEv2Engine(configuration: configuration, random: random, generated: book)
    }

    public var configuration: IKEConfiguration { v1.configuration }

    public func configure(_ configuration: IKEConfiguration, now: UInt64) -> [IKEAction] {
        v1.configure(configuration, now: now) + v2.configure(configuration, now: now)
    }

    public func setOwnAddresses(_ addresses: [IPv4Address]) { book.ownAddresses = addresses }

    /// A datagram to our port 500 or 4500 (there with the non-ESP marker, or a NAT keepalive).
    public func receive(_ payload: [UInt8], from: Endpoint, localPort: UInt16, localAddress: UInt32 = 0,
                        now: UInt64) -> [IKEAction] {
        var message = payload[...]
        if localPort == IKEEngine.natTPort {
            guard payload.count >= 4, payload[0] == 0, payload[1] == 0, payload[2] == 0, payload[3] == 0 else {
                return []
            }
            message = payload[4...]
        }
        if IKEv2Header.majorVersion(Array(message)) == 2 {
            return v2.receive(Array(message), from: from, localPort: localPort, localAddress: localAddress, now: now)
        }
        return v1.receive(payload, from: from, localPort: localPort, localAddress: localAddress, now: now)
    }

    public func acquire(policyID: Int, now: UInt64) -> [IKEAction] {
        guard let policy = configuration.policies.first(where: { $0.id == policyID }) else { return [] }
        if configuration.peer(for: policy.saDestination)?.exchangeMode == .ike2 {
            return v2.acquire(policyID: policyID, now: now)
        }
        return v1.acquire(policyID: policyID, now: now)
    }

    public func tick(now: UInt64) -> [IKEAction] { v1.tick(now: now) + v2.tick(now: now) }

    /// The monitor's answer to an IKEv1 `.sign`.
    public func signed(id: UInt64, signature: [UInt8]?, now: UInt64) -> [IKEAction] {
        id & IKEv2Engine.signatureIDBit == 0 ? v1.signed(id: id, signature: signature, now: now) : []
    }

    /// The monitor's answer to a `.signIKEv2`.
    public func signedIKEv2(id: UInt64, scheme: SignatureScheme?, signature: [UInt8], now: UInt64) -> [IKEAction] {
        id & IKEv2Engine.signatureIDBit != 0 ? v2.signed(id: id, scheme: scheme, signature: signature, now: now) : []
    }

    public func datapathRestarted(now: UInt64) -> [IKEAction] {
        v1.datapathRestarted(now: now) + v2.datapathRestarted(now: now)
    }

    public func remotePeers(now: UInt64) -> [RemotePeerState] { v1.remotePeers(now: now) + v2.remotePeers(now: now) }

    public func phase2(policyID: Int) -> PolicyPhase2 {
        v1.phase2(policyID: policyID) == .established || v2.phase2(policyID: policyID) == .established
            ? .established : .noPhase2
    }

    /// Policies with an established phase 2 under either version, ascending: the per-second
    /// report must not ask `phase2` once per policy of 100,000.
    public var establishedPolicyIDs: [Int] { Set(v1.establishedPolicyIDs + v2.establishedPolicyIDs).sorted() }

    public var generatedPolicies: [Int: IKEPolicy] { book.policies }

    public var responderLoad: ResponderLoad {
        let a = v1.responderLoad, b = v2.responderLoad
        var l = ResponderLoad()
        l.unverified = a.unverified + b.unverified
        l.verifiedHalfOpen = a.verifiedHalfOpen + b.verifiedHalfOpen
        l.evicted = a.evicted
        l.refusedBusy = a.refusedBusy.saturatingAdd(b.refusedBusy)
        l.diffieHellmanRefused = a.diffieHellmanRefused.saturatingAdd(b.diffieHellmanRefused)
        l.cookiesSent = b.cookiesSent
        return l
    }
}
