import KeywayVocabulary

/// Between keyway-ike and the other processes.

/// `/ip ipsec peer` as keyway-ike needs it (the pre-shared key included).
public struct IKEPeerRecord: Sendable, Equatable {
    public var address: IPv4Prefix, port: UInt16
    public var secret: [UInt8]
    public var exchangeMode: ExchangeMode
    public var natTraversal: Bool, generatePolicy: Bool, sendInitialContact: Bool
    public var proposalCheck: ProposalCheck
    public var hash: HashAlgorithm, encryption: EncryptionAlgorithm, dhGroup: DHGroup
    public var lifetime: UInt64, lifebytes: UInt64
    /// Seconds (0: off) and a count.
    public var dpdInterval: UInt64 = 120, dpdMaximumFailures: UInt8 = 5
    /// auth-method=rsa-signature: the certificate's name (the monitor signs with its key), our
    /// certificate and the peer's (DER). Empty: pre-shared key.
    public var certificateName = "", localCertificate: [UInt8] = [], remoteCertificate: [UInt8] = []
    /// force-udp-encapsulation (a Keyway extension): ESP in UDP even without a NAT between us.
    public var forceUDPEncapsulation = false

    public init(address: IPv4Prefix, port: UInt16, secret: [UInt8], exchangeMode: ExchangeMode, natTraversal: Bool,
                generatePolicy: Bool, sendInitialContact: Bool, proposalCheck: ProposalCheck, hash: HashAlgorithm,
                encryption: EncryptionAlgorithm, dhGroup: DHGroup, lifetime: UInt64, lifebytes: UInt64) {
        self.address = address; self.port = port; self.secret = secret
        self.exchangeMode = exchangeMode; self.natTraversal = natTraversal; self.generatePolicy = generatePolicy
        self.sendInitialContact = sendInitialContact; self.proposalCheck = proposalCheck; self.hash = hash
        self.encryption = encryption; self.dhGroup = dhGroup; self.lifetime = lifetime; self.lifebytes = lifebytes
    }

    func encode(to w: inout WireWriter) {
        w.prefix(address); w.u16(port); w.data(secret); w.choice(exchangeMode); w.bool(natTraversal)
        w.bool(generatePolicy); w.bool(sendInitialContact); w.choice(proposalCheck)
        w.choice(hash); w.choice(encryption); w.choice(dhGroup)
        w.u64(lifetime); w.u64(lifebytes); w.u64(dpdInterval); w.u8(dpdMaximumFailures)
        w.string(certificateName); w.data(localCertificate); w.data(remoteCertificate)
        w.bool(forceUDPEncapsulation)
    }

    init(from r: inout WireReader) throws(WireError) {
        address = try r.prefix("peer.address"); port = try r.u16(); secret = try r.data(limit: 1024)
        exchangeMode = try r.choice("peer.exchange-mode", ExchangeMode.self)
        natTraversal = try r.bool("peer.nat-traversal"); generatePolicy = try r.bool("peer.generate-policy")
        sendInitialContact = try r.bool("peer.send-initial-contact")
        proposalCheck = try r.choice("peer.proposal-check", ProposalCheck.self)
        hash = try r.choice("peer.hash", HashAlgorithm.self)
        encryption = try r.choice("peer.encryption", EncryptionAlgorithm.self)
        dhGroup = try r.choice("peer.dh-group", DHGroup.self)
        lifetime = try r.u64(); lifebytes = try r.u64(); dpdInterval = try r.u64(); dpdMaximumFailures = try r.u8()
        certificateName = try r.string("peer.certificate", limit: 64)
        localCertificate = try r.data(limit: 16_384); remoteCertificate = try r.data(limit: 16_384)
        forceUDPEncapsulation = try r.bool("peer.force-udp-encapsulation")
    }
}

/// An encrypt policy keyed by IKE, with its proposal.
public struct IKEPolicyRecord: Sendable, Equatable {
    public var policy: PolicyRecord
    public var authAlgorithms: [IntegrityAlgorithm], encAlgorithms: [EncryptionAlgorithm]
    public var lifetime: UInt64
    public var pfsGroup: DHGroup?

    public init(policy: PolicyRecord, authAlgorithms: [IntegrityAlgorithm], encAlgorithms: [EncryptionAlgorithm],
                lifetime: UInt64, pfsGroup: DHGroup?) {
        self.policy = policy; self.authAlgorithms = authAlgorithms; self.encAlgorithms = encAlgorithms
        self.lifetime = lifetime; self.pfsGroup = pfsGroup
    }

    func encode(to w: inout WireWriter) {
        policy.encode(to: &w)
        w.choices(authAlgorithms); w.choices(encAlgorithms)
        w.u64(lifetime); w.bool(pfsGroup != nil); if let g = pfsGroup { w.choice(g) }
    }

    init(from r: inout WireReader) throws(WireError) {
        policy = try PolicyRecord(from: &r)
        authAlgorithms = try r.choices("proposal.auth", IntegrityAlgorithm.self)
        encAlgorithms = try r.choices("proposal.enc", EncryptionAlgorithm.self)
        lifetime = try r.u64()
        pfsGroup = try r.bool("proposal.pfs") ? try r.choice("proposal.pfs-group", DHGroup.self) : nil
    }
}

/// The monitor's whole view for keyway-ike: replaces what was there before. `defaultProposal`
/// (its policy part unused) is what generated policies negotiate with.
public struct IKEConfig: WireMessage {
    public static let type = MessageType.ikeConfig
    public var generation: UInt64
    public var peers: [IKEPeerRecord]
    public var policies: [IKEPolicyRecord]
    public var defaultProposal: IKEPolicyRecord

    public init(generation: UInt64, peers: [IKEPeerRecord], policies: [IKEPolicyRecord], defaultProposal: IKEPolicyRecord) {
        self.generation = generation; self.peers = peers; self.policies = policies; self.defaultProposal = defaultProposal
    }

    public func encode(to w: inout WireWriter) {
        w.u64(generation)
        w.count(peers.count); for p in peers { p.encode(to: &w) }
        w.count(policies.count); for p in policies { p.encode(to: &w) }
        defaultProposal.encode(to: &w)
    }

    public init(from r: inout WireReader) throws(WireError) {
        generation = try r.u64()
        var ps: [IKEPeerRecord] = [], pols: [IKEPolicyRecord] = []
        for _ in 0..<(try r.count(limit: 1024)) { ps.append(try IKEPeerRecord(from: &r)) }
        for _ in 0..<(try r.count(limit: ConfigurationBounds.maximumPolicies)) {
            pols.append(try IKEPolicyRecord(from: &r))
        }
        peers = ps; policies = pols
        defaultProposal = try IKEPolicyRecord(from: &r)
    }
}

/// keyway-ike to the datapath: install these negotiated SAs (both directions of a pair), and
/// the policy generate-policy made for them, if any (it goes when its last SA goes).
public struct SAInstall: WireMessage {
    public static let type = MessageType.saInstall
    public var sas: [SARecord]
    public var generatedPolicies: [PolicyRecord]
    public init(sas: [SARecord], generatedPolicies: [PolicyRecord] = []) { self.sas = sas; self.generatedPolicies = generatedPolicies }
    public func encode(to w: inout WireWriter) {
        w.count(sas.count); for s in sas { s.encode(to: &w) }
        w.count(generatedPolicies.count); for p in generatedPolicies { p.encode(to: &w) }
    }
    public init(from r: inout WireReader) throws(WireError) {
        var out: [SARecord] = [], pols: [PolicyRecord] = []
        for _ in 0..<(try r.count(limit: 64)) { out.append(try SARecord(from: &r)) }
        for _ in 0..<(try r.count(limit: 4)) { pols.append(try PolicyRecord(from: &r)) }
        sas = out; generatedPolicies = pols
    }
}

/// keyway-ike to the datapath: remove these SAs.
public struct SARemove: WireMessage {
    public static let type = MessageType.saRemove
    public struct Entry: Sendable, Equatable {
        public var spi: UInt32, proto: IPsecProtocol, destination: IPv4Address
        public init(spi: UInt32, proto: IPsecProtocol, destination: IPv4Address) {
            self.spi = spi; self.proto = proto; self.destination = destination
        }
    }
    public var entries: [Entry]
    public init(entries: [Entry]) { self.entries = entries }
    public func encode(to w: inout WireWriter) {
        w.count(entries.count); for e in entries { w.u32(e.spi); w.u8(e.proto.rawValue); w.address(e.destination) }
    }
    public init(from r: inout WireReader) throws(WireError) {
        var out: [Entry] = []
        for _ in 0..<(try r.count(limit: 1024)) {
            out.append(Entry(spi: try r.u32(), proto: try r.enumeration("remove.proto", IPsecProtocol.self),
                             destination: try r.address()))
        }
        entries = out
    }
}

/// The datapath to keyway-ike: traffic for a `require` policy found no SA.
public struct Acquire: WireMessage {
    public static let type = MessageType.acquire
    public var policyID: UInt32
    public init(policyID: UInt32) { self.policyID = policyID }
    public func encode(to w: inout WireWriter) { w.u32(policyID) }
    public init(from r: inout WireReader) throws(WireError) { policyID = try r.u32() }
}

/// The datapath to keyway-ike: an IKE message that arrived on UDP 4500 (non-ESP marker kept).
public struct IKEDatagram: WireMessage {
    public static let type = MessageType.ikeDatagram
    public var source: IPv4Address, sourcePort: UInt16
    /// Our address it was sent to (0.0.0.0: unknown).
    public var destination: IPv4Address
    public var payload: [UInt8]
    public init(source: IPv4Address, sourcePort: UInt16, destination: IPv4Address, payload: [UInt8]) {
        self.source = source; self.sourcePort = sourcePort; self.destination = destination; self.payload = payload
    }
    public func encode(to w: inout WireWriter) {
        w.address(source); w.u16(sourcePort); w.address(destination); w.data(payload)
    }
    public init(from r: inout WireReader) throws(WireError) {
        source = try r.address(); sourcePort = try r.u16()
        destination = try r.address(); payload = try r.data(limit: 65_535)
    }
}

/// keyway-ike to the monitor, once a second: `remote-peers print` and each policy's ph2-state.
public struct IKEState: WireMessage {
    public static let type = MessageType.ikeState
    public struct Peer: Sendable, Equatable {
        public var local: UInt32, remote: UInt32, remotePort: UInt16
        public var state: String, side: String
        public var establishedSeconds: UInt64
        public var natTraversal: Bool
        public init(local: UInt32, remote: UInt32, remotePort: UInt16, state: String, side: String, establishedSeconds: UInt64, natTraversal: Bool) {
            self.local = local; self.remote = remote; self.remotePort = remotePort; self.state = state; self.side = side
            self.establishedSeconds = establishedSeconds; self.natTraversal = natTraversal
        }
    }
    public var peers: [Peer]
    /// Policies with an established phase 2.
    public var establishedPolicies: [UInt32]
    /// Dynamic policies (generate-policy), for `policy print` (flag D).
    public var generatedPolicies: [PolicyRecord] = []

    public init(peers: [Peer], establishedPolicies: [UInt32], generatedPolicies: [PolicyRecord] = []) {
        self.peers = peers; self.establishedPolicies = establishedPolicies; self.generatedPolicies = generatedPolicies
    }

    public func encode(to w: inout WireWriter) {
        w.count(peers.count)
        for p in peers {
            w.u32(p.local); w.u32(p.remote); w.u16(p.remotePort); w.string(p.state); w.string(p.side); w.u64(p.establishedSeconds); w.bool(p.natTraversal)
        }
        w.count(establishedPolicies.count); for id in establishedPolicies { w.u32(id) }
        w.count(generatedPolicies.count); for p in generatedPolicies { p.encode(to: &w) }
    }

    public init(from r: inout WireReader) throws(WireError) {
        var ps: [Peer] = []
        for _ in 0..<(try r.count(limit: 4096)) {
            ps.append(Peer(local: try r.u32(), remote: try r.u32(), remotePort: try r.u16(), state: try r.string("peer.state", limit: 32),
                           side: try r.string("peer.side", limit: 16), establishedSeconds: try r.u64(), natTraversal: try r.bool("peer.nat-t")))
        }
        var ids: [UInt32] = []
        for _ in 0..<(try r.count(limit: ConfigurationBounds.maximumPolicies)) { ids.append(try r.u32()) }
        var generated: [PolicyRecord] = []
        for _ in 0..<(try r.count(limit: ConfigurationBounds.maximumPolicies)) {
            generated.append(try PolicyRecord(from: &r))
        }
        peers = ps; establishedPolicies = ids; generatedPolicies = generated
    }
}

/// A phase 1 exchange that authenticates with an RSA signature: the initiator's cookie and the
/// peer's address name it; the PRF fixes the length of what may be signed for it.
public struct SigningExchange: Sendable, Hashable {
    public var initiatorCookie: [UInt8]
    public var peer: IPv4Address
    public var prf: HashAlgorithm
    /// Our side of the exchange (each side signs once).
    public var initiator: Bool

    public init(initiatorCookie: [UInt8], peer: IPv4Address, prf: HashAlgorithm, initiator: Bool) {
        self.initiatorCookie = initiatorCookie; self.peer = peer; self.prf = prf; self.initiator = initiator
    }

    func encode(to w: inout WireWriter) { w.data(initiatorCookie); w.address(peer); w.choice(prf); w.bool(initiator) }

    init(from r: inout WireReader) throws(WireError) {
        initiatorCookie = try r.data(limit: 8)
        guard initiatorCookie.count == 8 else {
            throw .invalidEnum(field: "exchange.cookie-length", value: UInt32(initiatorCookie.count))
        }
        peer = try r.address(); prf = try r.choice("exchange.prf", HashAlgorithm.self)
        initiator = try r.bool("exchange.initiator")
    }
}

/// keyway-ike to the monitor, once the phase 1 proposal is settled: this exchange will need a
/// signature with the named certificate's key. The monitor signs for announced exchanges only.
public struct SignAnnounce: WireMessage {
    public static let type = MessageType.signAnnounce
    public var exchange: SigningExchange
    public var certificate: String
    public init(exchange: SigningExchange, certificate: String) {
        self.exchange = exchange; self.certificate = certificate
    }
    public func encode(to w: inout WireWriter) { exchange.encode(to: &w); w.string(certificate) }
    public init(from r: inout WireReader) throws(WireError) {
        exchange = try SigningExchange(from: &r); certificate = try r.string("sign.certificate", limit: 64)
    }
}

/// keyway-ike to the monitor: sign these bytes (a phase 1 HASH, exactly the PRF's length) for an
/// announced exchange, with the private key of the named certificate. IKE never holds private keys.
public struct SignRequest: WireMessage {
    public static let type = MessageType.signRequest
    public var id: UInt64
    public var exchange: SigningExchange
    public var certificate: String
    public var data: [UInt8]
    public init(id: UInt64, exchange: SigningExchange, certificate: String, data: [UInt8]) {
        self.id = id; self.exchange = exchange; self.certificate = certificate; self.data = data
    }
    public func encode(to w: inout WireWriter) {
        w.u64(id); exchange.encode(to: &w); w.string(certificate); w.data(data)
    }
    public init(from r: inout WireReader) throws(WireError) {
        id = try r.u64(); exchange = try SigningExchange(from: &r)
        certificate = try r.string("sign.certificate", limit: 64); data = try r.data(limit: 64)
    }
}

/// The monitor's answer: the signature, or none (unknown certificate, no key, key and certificate disagree).
public struct SignReply: WireMessage {
    public static let type = MessageType.signReply
    public var id: UInt64
    public var signature: [UInt8]
    public init(id: UInt64, signature: [UInt8]) { self.id = id; self.signature = signature }
    public func encode(to w: inout WireWriter) { w.u64(id); w.data(signature) }
    public init(from r: inout WireReader) throws(WireError) { id = try r.u64(); signature = try r.data(limit: 1024) }
}
