import KeywayVocabulary
import KeywayCrypto

/// What keyway-ike is configured with: `/ip ipsec peer` and the policies (with their
/// proposals) that IKE keys. Secrets stay in `Secret`.
public struct IKEPeer: Sendable {
    public typealias ExchangeMode = KeywayVocabulary.ExchangeMode
    public typealias ProposalCheck = KeywayVocabulary.ProposalCheck

    public var address: UInt32
    public var prefixLength: Int
    public var port: UInt16
    public var secret: Secret
    public var exchangeMode: ExchangeMode
    public var natTraversal: Bool
    public var generatePolicy: Bool
    public var sendInitialContact: Bool
    public var proposalCheck: ProposalCheck
    public var hash: HashAlgorithm
    public var encryption: EncryptionAlgorithm
    /// IKEv1 proposes this group (the first of the list); IKEv2 offers all of `groups`.
    public var group: DHGroup
    public var groups: [DHGroup]
    /// IKEv2: the identity we send (auto: our address) and the one we accept (auto: any).
    public var myID: IKEIdentity = .auto
    public var remoteID: IKEIdentity = .auto
    /// Phase 1 lifetime as proposed; the engine never uses more than `Seconds.maximumLifetime`.
    public var lifetime: Seconds
    public var lifebytes: UInt64
    /// Dead peer detection: time without a sign of life before R-U-THERE (0: off), and how many
    /// unanswered ones declare the peer dead.
    public var dpdInterval = Seconds(120)
    public var dpdMaximumFailures: Int = 5
    /// RSA signatures instead of the pre-shared key: our certificate (DER, sent in CERT; its key
    /// stays in the monitor, which signs by `certificateName`) and the peer's, which its
    /// signature must verify with.
    public var signature: SignatureAuthentication?
    /// force-udp-encapsulation: our NAT discovery hash claims a NAT in front of us, so both ends
    /// float to port 4500 and put ESP in UDP (as strongSwan's encap=yes does).
    public var forceUDPEncapsulation = false

    public init(address: UInt32, prefixLength: Int = 32, port: UInt16 = 500, secret: Secret,
                exchangeMode: ExchangeMode = .main,
                natTraversal: Bool = false, generatePolicy: Bool = false, sendInitialContact: Bool = true,
                proposalCheck: ProposalCheck = .strict, hash: HashAlgorithm = .md5,
                encryption: EncryptionAlgorithm = .tripleDES,
                group: DHGroup = .modp1024, lifetime: Seconds = Seconds(86_400), lifebytes: UInt64 = 0) {
        self.address = address; self.prefixLength = max(0, min(32, prefixLength)); self.port = port
        self.secret = secret
        self.exchangeMode = exchangeMode; self.natTraversal = natTraversal; self.generatePolicy = generatePolicy
        self.sendInitialContact = sendInitialContact; self.proposalCheck = proposalCheck; self.hash = hash
        self.encryption = encryption; self.group = group; self.groups = [group]; self.lifetime = lifetime
        self.lifebytes = lifebytes
    }

    func contains(_ ip: UInt32) -> Bool { IPv4Prefix(address, length: prefixLength).contains(ip) }
}

public struct SignatureAuthentication: @unchecked Sendable {
    public var certificateName: String
    public var localCertificate: [UInt8]
    public var remoteCertificate: Certificate
    public init(certificateName: String, localCertificate: [UInt8], remoteCertificate: Certificate) {
        self.certificateName = certificateName; self.localCertificate = localCertificate
        self.remoteCertificate = remoteCertificate
    }
}

/// An encrypt policy keyed by IKE, with its proposal.
public struct IKEPolicy: Sendable, Equatable {
    public var id: Int
    public var source: UInt32, sourceLength: Int, sourcePort: UInt16
    public var destination: UInt32, destinationLength: Int, destinationPort: UInt16
    /// nil: any protocol.
    public var proto: UInt8?
    public var saSource: UInt32, saDestination: UInt32
    public var tunnel: Bool
    public var esp: Bool, ah: Bool
    public var authAlgorithms: [IntegrityAlgorithm]
    public var encAlgorithms: [EncryptionAlgorithm]
    /// Phase 2 lifetime as proposed; the engine never installs more than `Seconds.maximumLifetime`.
    public var lifetime: Seconds
    public var pfsGroup: DHGroup?
    /// Added by generate-policy: removed with its SAs.
    public var dynamic: Bool = false

    public init(id: Int, source: UInt32, sourceLength: Int, sourcePort: UInt16 = 0, destination: UInt32,
                destinationLength: Int,
                destinationPort: UInt16 = 0, proto: UInt8? = nil, saSource: UInt32, saDestination: UInt32, tunnel: Bool,
                esp: Bool = true, ah: Bool = false, authAlgorithms: [IntegrityAlgorithm] = [.sha1],
                encAlgorithms: [EncryptionAlgorithm] = [.tripleDES],
                lifetime: Seconds = Seconds(1_800), pfsGroup: DHGroup? = .modp1024) {
        self.id = id; self.source = source; self.sourceLength = sourceLength; self.sourcePort = sourcePort
        self.destination = destination; self.destinationLength = destinationLength
        self.destinationPort = destinationPort
        self.proto = proto; self.saSource = saSource; self.saDestination = saDestination; self.tunnel = tunnel
        self.esp = esp; self.ah = ah; self.authAlgorithms = authAlgorithms; self.encAlgorithms = encAlgorithms
        self.lifetime = lifetime; self.pfsGroup = pfsGroup
    }
}

/// What a generated policy (peer generate-policy=yes) negotiates with: the `default` proposal.
public struct ProposalTemplate: Sendable, Equatable {
    public var authAlgorithms: [IntegrityAlgorithm]
    public var encAlgorithms: [EncryptionAlgorithm]
    public var lifetime: Seconds
    public var pfsGroup: DHGroup?
    public init(authAlgorithms: [IntegrityAlgorithm] = [.sha1], encAlgorithms: [EncryptionAlgorithm] = [.tripleDES],
                lifetime: Seconds = Seconds(1_800), pfsGroup: DHGroup? = .modp1024) {
        self.authAlgorithms = authAlgorithms; self.encAlgorithms = encAlgorithms; self.lifetime = lifetime
        self.pfsGroup = pfsGroup
    }
}

public struct IKEConfiguration: Sendable {
    public var peers: [IKEPeer]
    public var policies: [IKEPolicy] { didSet { index = Self.index(policies) } }
    public var defaultProposal: ProposalTemplate
    /// Position of each policy by id: the engine looks policies up per SA and per second, and a
    /// search through 100,000 of them each time would not do.
    private var index: [Int: Int] = [:]

    public init(peers: [IKEPeer] = [], policies: [IKEPolicy] = [],
                defaultProposal: ProposalTemplate = ProposalTemplate()) {
        self.peers = peers; self.policies = policies; self.defaultProposal = defaultProposal
        index = Self.index(policies)
    }

    private static func index(_ policies: [IKEPolicy]) -> [Int: Int] {
        var out: [Int: Int] = [:]
        out.reserveCapacity(policies.count)
        for (i, p) in policies.enumerated() where out[p.id] == nil { out[p.id] = i }
        return out
    }

    /// The configured policy with this id.
    public func policy(id: Int) -> IKEPolicy? { index[id].map { policies[$0] } }

    /// The most specific peer whose address contains `ip` (the manual's peer matching).
    func peer(for ip: UInt32) -> IKEPeer? {
        peers.filter { $0.contains(ip) }.max { $0.prefixLength < $1.prefixLength }
    }
}

/// One direction of an SA keyed by quick mode, for the datapath.
public struct NegotiatedSA: Sendable {
    public var policyID: Int
    public var inbound: Bool
    public var proto: UInt8
    public var spi: UInt32
    public var source: UInt32, destination: UInt32
    public var tunnel: Bool
    public var encryption: EncryptionAlgorithm
    public var integrity: IntegrityAlgorithm
    public var encryptionKey: Secret
    public var integrityKey: Secret
    /// At most `Seconds.maximumLifetime`, whatever the peer proposed.
    public var lifetime: Seconds
    public var lifetimeBytes: UInt64
    /// The dynamic policy this SA was negotiated for (generate-policy), to be added with it.
    public var generatedPolicy: IKEPolicy?
    /// ESP in UDP (RFC 3948): our port and the peer's; nil for plain ESP/AH.
    public var udpLocalPort: UInt16?
    public var udpRemotePort: UInt16?
    public var pfs: Bool
}
