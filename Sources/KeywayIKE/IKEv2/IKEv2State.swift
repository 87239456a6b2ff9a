import KeywayCrypto
import KeywayVocabulary
import KeywayWire

/// One IKEv2 SA with a peer, from IKE_SA_INIT to its deletion (or its rekeying into another).
final class IKEv2SA {
    enum State: String {
        case initSent = "sa-init-sent", authSent = "auth-sent", initAnswered = "sa-init-answered"
        case established, deleting
    }

    /// Our SPI: the key of the engine's table (the initiator's SPI if we started the SA).
    let localSPI: UInt64
    var remoteSPI: UInt64 = 0
    /// We are the original initiator of this IKE SA (RFC 7296 2.2: it decides the I flag and which SPI is whose).
    let originalInitiator: Bool
    var remote: Endpoint
    var localPort: UInt16 = 500
    let localAddress: UInt32
    let peer: IKEPeer
    var state: State
    let createdAt: UInt64
    var establishedAt: UInt64?

    var suite: IKEv2Suite?
    var keys: IKEv2Keys?
    /// The initiator's DH key pair until the response arrives, and the group it uses.
    var dh: DiffieHellman?
    var group: DHGroup
    var initiatorNonce: [UInt8] = []
    var responderNonce: [UInt8] = []
    /// RealMessage1 and RealMessage2 (RFC 7296 2.15): the IKE_SA_INIT request and response as sent.
    var initRequest: [UInt8] = []
    var initResponse: [UInt8] = []
    /// Initiator: the responder's COOKIE to repeat, and how often we were asked for one or for another group.
    var cookie: [UInt8]?
    var cookieRetries = 0
    var groupRetries = 0

    /// NAT traversal allowed for this peer; a NAT was detected on either side (ESP goes in UDP 4500).
    var natTraversal: Bool
    var natDetected = false
    /// RFC 7383: the peer said it reassembles fragments.
    var peerFragmentation = false
    /// RFC 7427: the hashes the peer verifies (nil: it sent no SIGNATURE_HASH_ALGORITHMS).
    var peerSignatureHashes: [HashAlgorithm]?
    var peerSentInitialContact = false
    /// Signature peers: the exchange announced to the monitor (once).
    var signingExchange: SigningExchange?
    /// Responder: the peer returned our cookie (or none was needed because we were not loaded).
    var verified = false

    // Message IDs, window size 1 (RFC 7296 2.3).
    var nextRequestID: UInt32 = 0
    var outstanding: OutstandingRequest?
    var queue: [PendingRequest] = []
    var peerNextRequestID: UInt32 = 0
    /// Our answer to the peer's last request, as sent (every fragment), for its retransmissions.
    var lastResponse: [[UInt8]] = []
    /// A fragmented message being reassembled (RFC 7383).
    var fragments: FragmentBuffer?

    /// Liveness: the last authenticated message from the peer.
    var lastHeard: UInt64 = 0
    /// Policies waiting for this SA to be established.
    var pendingPolicies: [Int] = []
    /// IKE SA lifetime: when we rekey it (jittered 80%), and when it ends regardless.
    var rekeyAt: UInt64 = .max
    var expiresAt: UInt64 = .max
    /// This SA was rekeyed into another (our local SPI there): it only waits for its deletion.
    var rekeyedInto: UInt64?
    /// The peer rekeyed this SA while our own rekey of it was under way (RFC 7296 2.8.2).
    var collidingRekey: (newSPI: UInt64, nonces: [[UInt8]])?
    /// The last NAT keepalive we sent.
    var lastKeepalive: UInt64 = 0
    /// Half-open responder state lives in a bounded table until IKE_AUTH authenticates the peer.
    var admittedUnverified = false

    init(localSPI: UInt64, originalInitiator: Bool, remote: Endpoint, localAddress: UInt32, peer: IKEPeer,
         group: DHGroup,
         state: State, now: UInt64) {
        self.localSPI = localSPI
        self.originalInitiator = originalInitiator
        self.remote = remote
        self.localAddress = localAddress
        self.peer = peer
        self.group = group
        self.state = state
        self.createdAt = now
        self.natTraversal = peer.natTraversal
        self.lastHeard = now
    }

    var spiI: UInt64 { originalInitiator ? localSPI : remoteSPI }
    var spiR: UInt64 { originalInitiator ? remoteSPI : localSPI }
    /// Protection of what we send and of what the peer sends.
    var outgoing: SKProtection? { originalInitiator ? keys?.initiatorOut : keys?.responderOut }
    var incoming: SKProtection? { originalInitiator ? keys?.responderOut : keys?.initiatorOut }
    var isEstablished: Bool { state == .established }
}

/// Our request awaiting its response, retransmitted until then (RFC 7296 2.1).
struct OutstandingRequest {
    let messageID: UInt32
    let exchange: IKEv2Exchange
    let kind: RequestKind
    var datagrams: [[UInt8]]
    var nextAt: UInt64
    var interval: UInt64
    var sent = 1
    let maximumTries: Int
}

/// What a request of ours was for: its response is handled accordingly.
enum RequestKind {
    case ikeSAInit
    case ikeAuth(ChildNegotiation?)
    case createChild(ChildNegotiation)
    case rekeyIKE(IKERekey)
    case deleteChildren
    case deleteIKE
    case liveness
    case authenticationFailed
}

/// Work waiting for the window (one request at a time).
enum PendingRequest {
    case createChild(policyID: Int, rekeying: UInt32?)
    case rekeyIKE
    case deleteChildren(proto: UInt8, spis: [UInt32])
    case deleteIKE
    case liveness
}

/// Our side of a child SA negotiation (IKE_AUTH's first child or CREATE_CHILD_SA).
final class ChildNegotiation {
    var policy: IKEPolicy
    let inboundSPI: UInt32
    var nonce: [UInt8] = []
    var dh: DiffieHellman?
    var group: DHGroup?
    /// Rekeying: the inbound SPI of the child being replaced.
    let rekeying: UInt32?
    var groupRetries = 0

    init(policy: IKEPolicy, inboundSPI: UInt32, rekeying: UInt32?) {
        self.policy = policy; self.inboundSPI = inboundSPI; self.rekeying = rekeying
    }
}

/// Our side of an IKE SA rekey (CREATE_CHILD_SA with an IKE proposal).
final class IKERekey {
    let newSPI: UInt64
    let nonce: [UInt8]
    var dh: DiffieHellman
    var groupRetries = 0
    init(newSPI: UInt64, nonce: [UInt8], dh: DiffieHellman) { self.newSPI = newSPI; self.nonce = nonce; self.dh = dh }
}

/// A child SA pair installed in the datapath.
struct IKEv2Child {
    var policyID: Int
    /// The owning IKE SA (our SPI there); children move to the new SA when it is rekeyed.
    var ikeSPI: UInt64
    var inboundSPI: UInt32
    var outboundSPI: UInt32
    var proto: UInt8
    var local: UInt32
    var remote: UInt32
    var installedAt: UInt64
    var lifetime: Seconds
    /// When we rekey it (about 80% of its lifetime, jittered so both sides rarely start together).
    var rekeyAt: UInt64
    var rekeying = false
    /// Replaced by a rekey; waits for its deletion (by whoever started the surviving rekey).
    var replaced = false
    /// The peer rekeyed this child while our own rekey of it was under way: the SA it made and
    /// the nonces of its exchange (RFC 7296 2.8.1).
    var collision: (newInbound: UInt32, nonces: [[UInt8]])?
}

/// An incoming message split into fragments (RFC 7383), each authenticated before it is kept.
struct FragmentBuffer {
    static let maximumBytes = 65_536
    let messageID: UInt32
    let isResponse: Bool
    let total: UInt16
    var firstInner: UInt8 = 0
    var parts: [UInt16: [UInt8]] = [:]
    var bytes = 0
}
