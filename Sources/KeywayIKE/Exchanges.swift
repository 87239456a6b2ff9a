import KeywayCrypto
import KeywayWire

/// Phase 1: one ISAKMP SA with a peer, from the first message to its end.
final class IKESA {
    enum State: String {
        case sentSA = "message-1-sent", sentKE = "message-3-sent", sentID = "message-5-sent"
        case answeredSA = "message-2-sent", answeredKE = "message-4-sent"
        case sentAggressive = "aggressive-1-sent", answeredAggressive = "aggressive-2-sent"
        case established
    }

    let initiator: Bool
    let initiatorCookie: [UInt8]
    var responderCookie: [UInt8]
    var remote: Endpoint
    var localPort: UInt16 = 500
    let localAddress: UInt32
    let peer: IKEPeer
    var choice: Phase1Choice
    var state: State
    let createdAt: UInt64
    var establishedAt: UInt64?

    /// SAi_b: the initiator's SA payload body as it went on the wire.
    var initiatorSABody: [UInt8] = []
    var dh: DiffieHellman?
    var initiatorNonce: [UInt8] = []
    var responderNonce: [UInt8] = []
    var initiatorKE: [UInt8] = []
    var responderKE: [UInt8] = []
    var keys: Phase1Keys?
    /// The CBC chain of the main-mode exchange; after message 6, the last phase 1 block.
    var iv: [UInt8] = []

    /// The peer sent a NAT-T vendor ID and we allow NAT-T; rfc3947 tells which encapsulation numbers.
    var natTraversal = false
    var rfc3947 = false
    var natDetected = false
    var peerSentInitialContact = false
    /// Signature peers: the exchange announced to the monitor (once), which every `.sign` names.
    var signingExchange: SigningExchange?
    /// Aggressive mode: the initiator's ID payload body, for HASH_I.
    var initiatorIDBody: [UInt8] = []

    var retransmit = Retransmission()
    var lastReceived: [UInt8] = []
    /// Responder: the peer echoed our cookie (it receives at its address), so no first message
    /// may displace this negotiation. Until then it lives in `UnverifiedResponders`.
    var verified = false
    /// Place and cost in `UnverifiedResponders`.
    var admission: UInt64 = 0
    var footprint = 0
    /// Dead peer detection (RFC 3706): the peer sent the DPD vendor ID; the last time it showed
    /// it was alive; R-U-THERE requests sent and not answered.
    var peerSupportsDPD = false
    var lastHeard: UInt64 = 0
    var lastProbe: UInt64 = 0
    var unansweredProbes = 0
    var probeSequence: UInt32 = 0
    /// Policies waiting for this phase 1 to finish.
    var pendingPolicies: [Int] = []
    var quick: [UInt32: QuickExchange] = [:]
    /// Quick modes we initiated and finished: the peer's message 2 and our message 3, by message
    /// ID, so that a repeated message 2 (our message 3 was lost) is answered again. Kept while the
    /// peer may still retransmit, at most `IKEEngine.maximumQuickModesPerPhase1`.
    var finishedQuick: [UInt32: (received: [UInt8], reply: [UInt8], at: UInt64)] = [:]

    init(initiator: Bool, initiatorCookie: [UInt8], responderCookie: [UInt8], remote: Endpoint, localAddress: UInt32,
         peer: IKEPeer, now: UInt64) {
        self.initiator = initiator
        self.initiatorCookie = initiatorCookie
        self.responderCookie = responderCookie
        self.remote = remote
        self.localAddress = localAddress
        self.peer = peer
        // Proposed as configured; the negotiated lifetime (what is used) is capped.
        self.choice = Phase1Choice(encryption: peer.encryption, hash: peer.hash, group: peer.group,
                                   lifetime: peer.lifetime)
        self.choice.authentication = peer.signature == nil ? 1 : 3
        self.state = initiator ? .sentSA : .answeredSA
        self.createdAt = now
    }

    var cookies: [UInt8] { initiatorCookie + responderCookie }
}

/// Phase 2: one quick-mode exchange for one policy.
final class QuickExchange {
    enum State { case sentFirst, sentSecond }

    let messageID: UInt32
    let initiator: Bool
    var iv: [UInt8]
    var policy: IKEPolicy
    var state: State
    var initiatorNonce: [UInt8] = []
    var responderNonce: [UInt8] = []
    var dh: DiffieHellman?
    var peerKE: [UInt8] = []
    /// The SPI we chose (the peer sends to it) and the peer's.
    let inboundSPI: UInt32
    var outboundSPI: UInt32 = 0
    var offered: [Phase2Choice] = []
    var choice: Phase2Choice?
    /// ipsec-protocols=ah,esp: the AH half of the bundle (same proposal number as the ESP one).
    var bundle: Bundle?

    struct Bundle {
        let inboundSPI: UInt32
        var outboundSPI: UInt32 = 0
        var offered: [Phase2Choice] = []
        var choice: Phase2Choice?
    }
    var lifetime: Seconds
    var retransmit = Retransmission()
    var lastReceived: [UInt8] = []
    /// Responders: when message 2 went out (an unanswered one is forgotten after a while).
    var createdAt: UInt64 = 0

    init(messageID: UInt32, initiator: Bool, iv: [UInt8], policy: IKEPolicy, inboundSPI: UInt32, state: State) {
        self.messageID = messageID; self.initiator = initiator; self.iv = iv; self.policy = policy
        self.inboundSPI = inboundSPI; self.state = state
        self.lifetime = policy.lifetime.capped(at: .maximumLifetime)
    }
}

/// The last message we sent and when to send it again: 2 s, doubling, five tries (about a
/// minute), then the negotiation fails.
struct Retransmission {
    static let firstInterval: UInt64 = 2_000
    static let tries = 5

    var message: [UInt8]?
    var fromPort: UInt16 = 500
    /// Our address it leaves from (0: the kernel's choice).
    var source: UInt32 = 0
    var to: Endpoint?
    var nextAt: UInt64 = 0
    var interval: UInt64 = firstInterval
    var sent = 0
    /// Responders only answer: their last message goes out again when the peer repeats itself.
    var waiting = false

    mutating func arm(_ message: [UInt8], fromPort: UInt16, source: UInt32, to: Endpoint, now: UInt64, waiting: Bool) {
        self.message = message; self.fromPort = fromPort; self.source = source; self.to = to; self.waiting = waiting
        interval = Self.firstInterval
        nextAt = now.saturatingAdd(interval)
        sent = 1
    }

    mutating func stop() { waiting = false }
}

/// A child SA pair installed in the datapath, remembered for rekeying, deletion and printouts.
struct ChildSA {
    var policyID: Int
    var ikeKey: IKESAKey
    var inboundSPI: UInt32
    var outboundSPI: UInt32
    var proto: UInt8
    var local: UInt32
    var remote: UInt32
    var installedAt: UInt64
    var lifetime: Seconds
    var initiator: Bool
    /// The AH pair of an AH+ESP bundle: (inbound, outbound) SPIs.
    var ahSPIs: (inbound: UInt32, outbound: UInt32)?
    var rekeyStarted = false
}

struct IKESAKey: Hashable {
    var initiatorCookie: [UInt8]
    var remote: UInt32
}
