import KeywayVocabulary
import KeywayCrypto
import KeywayWire

/// An address and UDP port.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: UInt32
    public var port: UInt16
    public init(address: UInt32, port: UInt16) { self.address = address; self.port = port }
    public var description: String { "\(IPv4Address.text(address)):\(port)" }
}

/// What the engine asks its process to do.
public enum IKEAction: Sendable {
    /// Send this UDP payload from our port (500 or 4500) to `to`. On 4500 the non-ESP marker is
    /// already in front. `source`: our address the exchange uses (the one the peer sent to), which
    /// the datagram must leave from on a multihomed host; 0 leaves the choice to the kernel.
    case send([UInt8], fromPort: UInt16, to: Endpoint, source: UInt32 = 0)
    /// Install both directions of a new child SA.
    case install([NegotiatedSA])
    /// Remove child SAs (by SPI and the address the SA's packets go to).
    case remove([(spi: UInt32, proto: UInt8, destination: UInt32)])
    /// A phase 1 with a signature peer has settled its proposal (initiator: message 2 accepted;
    /// responder: message 1 chosen): once per exchange, before any `.sign` for it. The monitor
    /// signs only for exchanges announced first, once each.
    case announceSigning(SigningExchange, certificate: String)
    /// Ask the monitor to sign `data` (exactly `exchange.prf.outputLength` bytes: HASH_I or HASH_R)
    /// with the private key of `certificate`; the answer goes to `IKEEngine.signed(id:signature:now:)`.
    case sign(id: UInt64, certificate: String, data: [UInt8], exchange: SigningExchange)
    /// IKEv2: ask the monitor to sign the octets these parts make (RFC 7296 2.15) for an announced
    /// exchange; the answer goes to `IKEv2Engine.signed(id:scheme:signature:now:)`.
    case signIKEv2(IKEv2SignRequest)
    case audit(IKEAudit)
}

/// The engine's audit lines are the shared `AuditNote`: lines a datagram can cause carry a fixed
/// rate-limit key (the msgID or a constant), never text built from what a peer sent.
public typealias IKEAudit = AuditNote

/// One row of `/ip ipsec remote-peers print`.
public struct RemotePeerState: Sendable, Equatable {
    public var local: UInt32
    public var remote: Endpoint
    public var state: String
    public var side: String
    public var establishedSeconds: UInt64
    public var natTraversal: Bool
    /// The IKE version of this SA (1 or 2).
    public var version: Int = 1
}

/// The live state of a policy's phase 2.
public enum PolicyPhase2: String, Sendable { case noPhase2 = "no-phase2", established, expired }
