import KeywayVocabulary

/// Between keyway-ike and the other processes.

/// `/ip ipsec peer` as keyway-ike needs it (the pre-shared key included).
public struct IKEPeerRecord: Sendable, Equatable {
    public var address: IPv4Prefix, port: UInt16
    public var secret: [UInt8]
    public var exchangeMode: ExchangeMode
    public var natTraversal: Bool, generatePolicy: Bool, sendInitialContact: Bool
    public var proposalCheck: ProposalCheck
    public var hash: HashAlgorithm, encryption: EncryptionAlgorithm
    /// The peer's dh-group list (RouterOS: a multiple choice); IKEv1 proposes the first.
    public var dhGroups: [DHGroup]
    public var dhGroup: DHGroup { dhGroups.first ?? .modp1024 }
    public var lifetime: UInt64, lifebytes: UInt64
    /// Seconds (0: off) and a count.
    public var dpdInterval: UInt64 = 120, dpdMaximumFailures: UInt8 = 5
    /// auth-method=rsa-signature: the certificate's name (the monitor signs with its key), our
    /// certificate and the peer's (DER). Empty: pre-shared key.
    public var certificateName = "", localCertificate: [UInt8] = [], remoteCertificate: [UInt8] = []
    /// force-udp-encapsulation (a Keyway extension): ESP in UDP even without a NAT between us.
    public var forceUDPEncapsulation = false
    /// IKEv2 identities (`my-id`, `remote-id`) as configured text (IKEIdentity's syntax).
    public var myID = "auto", remoteID = "auto"

    public init(address: IPv4Prefix, port: UInt16, secret: [UInt8], exchangeMode: ExchangeMode, natTraversal: Bool,
                generatePolicy: Bool, sendInitialContact: Bool, proposalCheck: ProposalCheck, hash: HashAlgorithm,
                encryption: EncryptionAlgorithm, dhGroup: DHGroup, lifetime: UInt64, lifebytes: UInt64) {
        self.address = address; self.port = port; self.secret = secret
        self.exchangeMode = exchangeMode; self.natTraversal = natTraversal; self.generatePolicy = generatePolicy
        self.sendInitialContact = sendInitialContact; self.proposalCheck = proposalCheck; self.hash = hash
        self.encryption = encryption; self.dhGroups = [dhGroup]; self.lifetime = lifetime; self.lifebytes = lifebytes
    }

    func encode(to w: inout WireWriter) {
        w.prefix(address); w.u16(port); w.data(secret); w.choice(exchangeMode); w.bool(natTraversal)
        w.bool(generatePolicy); w.bool(sendInitialContact); w.choice(proposalCheck)
        w.choice(hash); w.choice(encryption); w.choices(dhGroups)
        w.u64(lifetime); w.u64(lifebytes); w.u64(dpdInterval); w.u8(dpdMaximumFailures)
        w.string(certificateName); w.data(localCertificate); w.data(remoteCertificate)
        w.bool(forceUDPEncapsulation)
        w.string(myID); w.string(remoteID)
    }

    init(from r: inout WireReader) throws(WireError) {
        address = try r.prefix("peer.address"); port = try r.u16(); secret = try r.data(limit: 1024)
        exchangeMode = try r.choice("peer.exchange-mode", ExchangeMode.self)
        natTraversal = try r.bool("peer.nat-traversal"); generatePolicy = try r.bool("peer.generate-policy")
        sendInitialContact = try r.bool("peer.send-initial-contact")
        proposalCheck = try r.choice("peer.proposal-check", ProposalCheck.self)
        hash = try r.choice("peer.hash", HashAlgorithm.self)
        encryption = try r.choice("peer.encryption", EncryptionAlgorithm.self)
        dhGroups = try r.choices("peer.dh-group", DHGroup.self)
        guard !dhGroups.isEmpty else { throw .invalidEnum(field: "peer.dh-group.count", value: 0) }
        lifetime = try r.u64(); lifebytes = try r.u64(); dpdInterval = try r.u64(); dpdMaximumFailures = try r.u8()
        certificateName = try r.string("peer.certificate", limit: 64)
        localCertificate = try r.data(limit: 16_384); remoteCertificate = try r.data(limit: 16_384)
        forceUDPEncapsulation = try r.bool("peer.force-udp-encapsulation")
        myID = try r.string("peer.my-id", limit: 16 + IKEIdentity.maximumLength)
        remoteID = try r.string("peer.remote-id", limit: 16 + IKEIdentity.maximumLength)
        guard IKEIdentity(myID) != nil else { throw .invalidEnum(field: "peer.my-id", value: 0) }
        guard IKEIdentity(remoteID) != nil else { throw .invalidEnum(field: "peer.remote-id", value: 0) }
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

    public init(generation: UInt64, peers: [IKEPeerRecord], policies: [IKEPolicyRecord],
                defaultProposal: IKEPolicyRecord) {
        self.generation = generation; self.peers = peers; self.policies = policies
        self.defaultProposal = defaultProposal
    }

    public func encode(to w: inout WireWriter) {
        w.u64(generation)
        w.count32(peers.count); for p in peers { p.encode(to: &w) }
        w.count32(policies.count); for p in policies { p.encode(to: &w) }
        defaultProposal.encode(to: &w)
    }

    public init(from r: inout WireReader) throws(WireError) {
        generation = try r.u64()
        var ps: [IKEPeerRecord] = [], pols: [IKEPolicyRecord] = []
        for _ in 0..<(try r.count32(limit: ScaleLimits.peers)) { ps.append(try IKEPeerRecord(from: &r)) }
        let n = try r.count32(limit: ScaleLimits.policies)
        pols.reserveCapacity(n)
        for _ in 0..<n { pols.append(try IKEPolicyRecord(from: &r)) }
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
    public init(sas: [SARecord], generatedPolicies: [PolicyRecord] = []) {
        self.sas = sas; self.generatedPolicies = generatedPolicies
    }
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
        /// The IKE version of this SA (1 or 2).
        public var version: UInt8 = 1
        public init(local: UInt32, remote: UInt32, remotePort: UInt16, state: String, side: String,
                    establishedSeconds: UInt64,
                    natTraversal: Bool, version: UInt8 = 1) {
            self.local = local; self.remote = remote; self.remotePort = remotePort; self.state = state; self.side = side
            self.establishedSeconds = establishedSeconds; self.natTraversal = natTraversal; self.version = version
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
        w.count32(peers.count)
        for p in peers {
            w.u32(p.local); w.u32(p.remote); w.u16(p.remotePort); w.string(p.state); w.string(p.side)
            w.u64(p.establishedSeconds); w.bool(p.natTraversal); w.u8(p.version)
        }
        w.count32(establishedPolicies.count); for id in establishedPolicies { w.u32(id) }
        w.count32(generatedPolicies.count); for p in generatedPolicies { p.encode(to: &w) }
    }

    public init(from r: inout WireReader) throws(WireError) {
        var ps: [Peer] = []
        for _ in 0..<(try r.count32(limit: ScaleLimits.phase1SAs)) {
            var p = Peer(local: try r.u32(), remote: try r.u32(), remotePort: try r.u16(),
                         state: try r.string("peer.state", limit: 32), side: try r.string("peer.side", limit: 16),
                         establishedSeconds: try r.u64(), natTraversal: try r.bool("peer.nat-t"))
            p.version = try r.u8()
            guard p.version == 1 || p.version == 2 else {
                throw .invalidEnum(field: "peer.version", value: UInt32(p.version))
            }
            ps.append(p)
        }
        var ids: [UInt32] = []
        for _ in 0..<(try r.count32(limit: ScaleLimits.policies + ScaleLimits.generatedPolicies)) {
            ids.append(try r.u32())
        }
        var generated: [PolicyRecord] = []
        for _ in 0..<(try r.count32(limit: ScaleLimits.generatedPolicies)) {
            generated.append(try PolicyRecord(from: &r))
        }
        peers = ps; establishedPolicies = ids; generatedPolicies = generated
    }
}

/// An exchange that authenticates with a signature: IKEv1's phase 1 (the initiator's cookie and the
/// peer's address name it; the PRF fixes the length of what may be signed) or IKEv2's IKE_SA_INIT/
/// IKE_AUTH (both SPIs name it; the PRF fixes the length of the MACed ID in the signed octets).
public struct SigningExchange: Sendable, Hashable {
    /// IKEv1: the initiator cookie; IKEv2: the initiator's SPI.
    public var initiatorCookie: [UInt8]
    public var peer: IPv4Address
    public var prf: HashAlgorithm
    /// Our side of the exchange (each side signs once).
    public var initiator: Bool
    /// 1 or 2: an IKEv1 announcement never authorises an IKEv2 signature, nor the reverse.
    public var version: UInt8 = 1
    /// IKEv2: the responder's SPI (all zeros for IKEv1).
    public var responderSPI: [UInt8] = [UInt8](repeating: 0, count: 8)

    public init(initiatorCookie: [UInt8], peer: IPv4Address, prf: HashAlgorithm, initiator: Bool) {
        self.initiatorCookie = initiatorCookie; self.peer = peer; self.prf = prf; self.initiator = initiator
    }

    /// An IKEv2 exchange, named by both SPIs.
    public init(initiatorSPI: [UInt8], responderSPI: [UInt8], peer: IPv4Address, prf: HashAlgorithm, initiator: Bool) {
        self.init(initiatorCookie: initiatorSPI, peer: peer, prf: prf, initiator: initiator)
        self.responderSPI = responderSPI
        version = 2
    }

    func encode(to w: inout WireWriter) {
        w.data(initiatorCookie); w.address(peer); w.choice(prf); w.bool(initiator); w.u8(version); w.data(responderSPI)
    }

    init(from r: inout WireReader) throws(WireError) {
        initiatorCookie = try r.data(limit: 8)
        guard initiatorCookie.count == 8 else {
            throw .invalidEnum(field: "exchange.cookie-length", value: UInt32(initiatorCookie.count))
        }
        peer = try r.address(); prf = try r.choice("exchange.prf", HashAlgorithm.self)
        initiator = try r.bool("exchange.initiator")
        version = try r.u8()
        guard version == 1 || version == 2 else {
            throw .invalidEnum(field: "exchange.version", value: UInt32(version))
        }
        responderSPI = try r.data(limit: 8)
        guard responderSPI.count == 8 else {
            throw .invalidEnum(field: "exchange.responder-spi-length", value: UInt32(responderSPI.count))
        }
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

/// keyway-ike to the monitor, for an announced IKEv2 exchange: the parts of the octets an AUTH
/// payload signs (RFC 7296 2.15), never the octets themselves. The monitor checks each part (our
/// IKE_SA_INIT message with the announced SPIs, a nonce, a MACed ID of the PRF's length), joins
/// them, and chooses the signature scheme from its key, the auth method and the peer's hashes.
public struct IKEv2SignRequest: WireMessage {
    public static let type = MessageType.ikev2SignRequest
    /// Our IKE_SA_INIT message as sent is at most this long (a modp8192 KE, cookies, notifies).
    public static let maximumMessage = 16_384
    public var id: UInt64
    public var exchange: SigningExchange
    public var certificate: String
    /// 1 (RSA Digital Signature) or 14 (Digital Signature, RFC 7427).
    public var method: UInt8
    /// What the peer said it verifies (SIGNATURE_HASH_ALGORITHMS); empty when it said nothing.
    public var peerHashes: [HashAlgorithm]
    public var message: [UInt8]
    public var nonce: [UInt8]
    public var macedID: [UInt8]

    public init(id: UInt64, exchange: SigningExchange, certificate: String, method: UInt8, peerHashes: [HashAlgorithm],
                message: [UInt8], nonce: [UInt8], macedID: [UInt8]) {
        self.id = id; self.exchange = exchange; self.certificate = certificate; self.method = method
        self.peerHashes = peerHashes; self.message = message; self.nonce = nonce; self.macedID = macedID
    }

    public func encode(to w: inout WireWriter) {
        w.u64(id); exchange.encode(to: &w); w.string(certificate); w.u8(method); w.choices(peerHashes)
        w.data(message); w.data(nonce); w.data(macedID)
    }

    public init(from r: inout WireReader) throws(WireError) {
        id = try r.u64(); exchange = try SigningExchange(from: &r)
        certificate = try r.string("sign.certificate", limit: 64)
        method = try r.u8()
        guard method == 1 || method == 14 else { throw .invalidEnum(field: "sign.method", value: UInt32(method)) }
        peerHashes = try r.choices("sign.peer-hashes", HashAlgorithm.self)
        message = try r.data(limit: Self.maximumMessage); nonce = try r.data(limit: 256)
        macedID = try r.data(limit: 64)
    }
}

/// The monitor's answer to an IKEv2SignRequest: the scheme it chose and the signature, or no
/// scheme and no signature when it refused.
public struct IKEv2SignReply: WireMessage {
    public static let type = MessageType.ikev2SignReply
    public var id: UInt64
    public var scheme: SignatureScheme?
    public var signature: [UInt8]
    public init(id: UInt64, scheme: SignatureScheme?, signature: [UInt8]) {
        self.id = id; self.scheme = scheme; self.signature = signature
    }
    public func encode(to w: inout WireWriter) {
        w.u64(id); w.bool(scheme != nil); if let scheme { w.choice(scheme) }; w.data(signature)
    }
    public init(from r: inout WireReader) throws(WireError) {
        id = try r.u64()
        scheme = try r.bool("sign.scheme") ? try r.choice("sign.scheme", SignatureScheme.self) : nil
        signature = try r.data(limit: 1024)
    }
}
