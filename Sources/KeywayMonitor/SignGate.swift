import KeywayConfig
import KeywayTrust
import KeywayVocabulary
import KeywayWire

/// What keyway-monitor signs for keyway-ike with a certificate's private key, for an exchange
/// announced first with a peer configured for that certificate and IKE version, once per exchange
/// and side, at a bounded rate:
///
/// - IKEv1: only a value of the negotiated PRF's length (a phase 1 hash, never a DigestInfo that
///   would make a standard signature over a message of the asker's choice).
/// - IKEv2: the octets an AUTH payload signs (RFC 7296 2.15), which the monitor joins itself from
///   their parts after checking each: an IKE_SA_INIT message of our side bearing the announced
///   SPIs, a nonce, and a MACed ID of the PRF's length. The scheme (and with it the hash) is the
///   monitor's choice, from its key, the auth method and the hashes the peer verifies.
///
/// A compromised keyway-ike can still have such values signed for configured peers (it holds the
/// keys that make them), but no others, and no faster.
public struct SignGate: Sendable {
    /// A peer entry that authenticates with a certificate of ours.
    public struct Signer: Equatable, Sendable {
        public var address: IPv4Prefix
        public var certificate: String
        /// 2 for an exchange-mode=ike2 peer, 1 otherwise: an announcement must be of that version.
        public var ikeVersion: UInt8
        public init(address: IPv4Prefix, certificate: String, ikeVersion: UInt8 = 1) {
            self.address = address; self.certificate = certificate; self.ikeVersion = ikeVersion
        }
    }

    public static let maximumAnnounced = 256
    /// Milliseconds an announced exchange may wait for its signature (phase 1 gives up sooner).
    public static let announcementLifetime: UInt64 = 120_000
    /// Signatures per second, and the burst allowed.
    public static let rate: UInt64 = 10, burst: UInt64 = 20

    struct Announcement {
        var certificate: String
        var at: UInt64
        var signed = false
    }

    private var announced: [SigningExchange: Announcement] = [:]
    private var tokens = SignGate.burst
    private var refilledAt: UInt64 = 0

    public init() {}

    /// The enabled rsa-signature peers of the configuration.
    public static func signers(_ config: Configuration) -> [Signer] {
        config.peers.filter {
            !$0.disabled && $0.value("auth-method", in: Schema.peer).text == "rsa-signature"
        }.compactMap { item in
            guard case .address(let a) = item.value("address", in: Schema.peer),
                  let name = item.value("certificate", in: Schema.peer).text, name != "none" else { return nil }
            let version: UInt8 = item.value("exchange-mode", in: Schema.peer).text == "ike2" ? 2 : 1
            return Signer(address: IPv4Prefix(a.address, length: a.prefixLength), certificate: name,
                          ikeVersion: version)
        }
    }

    /// An exchange keyway-ike says will need a signature. `now` in milliseconds.
    public mutating func announce(_ a: SignAnnounce, signers: [Signer], now: UInt64) throws(Refusal) {
        announced = announced.filter { now < $0.value.at.saturatingAdd(Self.announcementLifetime) }
        guard let signer = signers.filter({ $0.address.contains(a.exchange.peer) })
                                  .max(by: { $0.address.length < $1.address.length }),
              signer.certificate == a.certificate else {
            throw Refusal("no rsa-signature peer for \(a.exchange.peer) uses certificate \(a.certificate)")
        }
        guard signer.ikeVersion == a.exchange.version else {
            throw Refusal("an IKEv\(a.exchange.version) exchange announced for an IKEv\(signer.ikeVersion) peer")
        }
        guard announced[a.exchange] == nil else { throw Refusal("exchange with \(a.exchange.peer) announced twice") }
        if announced.count >= Self.maximumAnnounced, let oldest = announced.min(by: { $0.value.at < $1.value.at }) {
            announced[oldest.key] = nil
        }
        announced[a.exchange] = Announcement(certificate: a.certificate, at: now)
    }

    /// Nil when the monitor may sign the request; it is then marked signed.
    public mutating func authorize(_ r: SignRequest, now: UInt64) throws(Refusal) {
        guard r.exchange.version == 1 else { throw Refusal("an IKEv1 signing request for an IKEv2 exchange") }
        guard var entry = announced[r.exchange], now < entry.at.saturatingAdd(Self.announcementLifetime) else {
            throw Refusal("signature for an exchange that was not announced")
        }
        guard entry.certificate == r.certificate else {
            throw Refusal("certificate \(r.certificate) is not the one announced")
        }
        guard r.data.count == r.exchange.prf.outputLength else {
            throw Refusal("\(r.data.count) bytes to sign; "
                          + "a \(r.exchange.prf) phase 1 hash has \(r.exchange.prf.outputLength)")
        }
        guard !entry.signed else { throw Refusal("this exchange was signed already") }
        refill(now: now)
        guard tokens > 0 else { throw Refusal("more than \(Self.rate) signatures a second") }
        tokens -= 1
        entry.signed = true
        announced[r.exchange] = entry
    }

    /// IKEv2: the octets to sign for the request, joined from its checked parts; it is then
    /// marked signed. Throws the reason when any part is not what an IKE_AUTH of this exchange needs.
    public mutating func authorize(_ r: IKEv2SignRequest, now: UInt64) throws(Refusal) -> [UInt8] {
        guard r.exchange.version == 2 else { throw Refusal("an IKEv2 signing request for an IKEv1 exchange") }
        guard var entry = announced[r.exchange], now < entry.at.saturatingAdd(Self.announcementLifetime) else {
            throw Refusal("signature for an exchange that was not announced")
        }
        guard entry.certificate == r.certificate else {
            throw Refusal("certificate \(r.certificate) is not the one announced")
        }
        guard r.method == 1 || r.method == 14 else { throw Refusal("auth method \(r.method) is not a signature") }
        guard (16...256).contains(r.nonce.count) else { throw Refusal("a nonce of \(r.nonce.count) bytes") }
        guard r.macedID.count == r.exchange.prf.outputLength else {
            throw Refusal(
                "a MACed ID of \(r.macedID.count) bytes; \(r.exchange.prf) gives \(r.exchange.prf.outputLength)")
        }
        if let why = IKEv2InitMessageRule.refusal(r.message, exchange: r.exchange) { throw Refusal(why) }
        guard !entry.signed else { throw Refusal("this exchange was signed already") }
        refill(now: now)
        guard tokens > 0 else { throw Refusal("more than \(Self.rate) signatures a second") }
        tokens -= 1
        entry.signed = true
        announced[r.exchange] = entry
        return r.message + r.nonce + r.macedID
    }

    /// The scheme the monitor signs with: method 1 is RSA PKCS#1 v1.5 with SHA-1 (RFC 7296); for
    /// method 14 (RFC 7427) RSA-PSS or ECDSA, with the first of SHA-256, -384, -512 the peer verifies
    /// (for ECDSA, the hash that matches the curve first). Nil when the key cannot serve the method.
    public static func scheme(method: UInt8, key: KeyKind, peerHashes: [HashAlgorithm]) -> SignatureScheme? {
        switch (method, key) {
        case (1, .rsa): return .rsaPKCS1SHA1
        case (14, .rsa(_)):
            guard let h = [HashAlgorithm.sha256, .sha384, .sha512].first(where: peerHashes.contains) else { return nil }
            return SignatureScheme(family: .rsaPSS, hash: h)
        case (14, .ec(let bits)):
            let natural: HashAlgorithm = bits > 384 ? .sha512 : bits > 256 ? .sha384 : .sha256
            guard let h = ([natural] + [.sha256, .sha384, .sha512]).first(where: peerHashes.contains) else {
                return nil
            }
            return SignatureScheme(family: .ecdsa, hash: h)
        default:
            return nil
        }
    }

    private mutating func refill(now: UInt64) {
        guard now > refilledAt else { return }
        let earned = (now - refilledAt) * Self.rate / 1000
        guard earned > 0 else { return }
        tokens = min(Self.burst, tokens.saturatingAdd(earned))
        refilledAt = now
    }
}

/// What keyway-monitor accepts as the first part of IKEv2's signed octets: an IKE_SA_INIT message
/// of our side of the announced exchange (RFC 7296 3.1): version 2, message ID 0, the announced SPIs
/// and the flags of our role, its length that of the bytes, and a chain of whole payloads of the
/// kinds an IKE_SA_INIT carries (SA, KE and a nonce among them; nothing encrypted or authenticating).
public enum IKEv2InitMessageRule {
    static let allowedPayloads: Set<UInt8> = [33, 34, 38, 40, 41, 43]

    public static func refusal(_ m: [UInt8], exchange: SigningExchange) -> String? {
        guard m.count >= 28, m.count <= IKEv2SignRequest.maximumMessage else { return "a message of \(m.count) bytes" }
        func u32(_ at: Int) -> Int { Int(m[at]) << 24 | Int(m[at + 1]) << 16 | Int(m[at + 2]) << 8 | Int(m[at + 3]) }
        guard Array(m[0..<8]) == exchange.initiatorCookie else { return "the message names another initiator SPI" }
        guard m[17] >> 4 == 2, m[18] == 34, u32(20) == 0 else { return "not an IKE_SA_INIT message" }
        guard u32(24) == m.count else { return "the message's length field says \(u32(24)), it has \(m.count) bytes" }
        let flags = m[19], responderSPI = Array(m[8..<16])
        if exchange.initiator {
            guard flags & 0x08 != 0, flags & 0x20 == 0, responderSPI.allSatisfy({ $0 == 0 }) else {
                return "not the initiator's IKE_SA_INIT request"
            }
        } else {
            guard flags & 0x08 == 0, flags & 0x20 != 0, responderSPI == exchange.responderSPI,
                  !responderSPI.allSatisfy({ $0 == 0 }) else {
                return "not the responder's IKE_SA_INIT response of this exchange"
            }
        }
        var next = m[16], at = 28, seen: Set<UInt8> = [], count = 0
        while next != 0 {
            guard allowedPayloads.contains(next) else { return "payload \(next) has no place in IKE_SA_INIT" }
            guard at + 4 <= m.count, count < 64 else { return "a broken payload chain" }
            let length = Int(m[at + 2]) << 8 | Int(m[at + 3])
            guard length >= 4, at + length <= m.count else { return "a payload of impossible length \(length)" }
            seen.insert(next)
            count += 1
            next = m[at]
            at += length
        }
        guard at == m.count else { return "\(m.count - at) bytes after the last payload" }
        guard seen.isSuperset(of: [33, 34, 40]) else { return "an IKE_SA_INIT without SA, KE and a nonce" }
        return nil
    }
}
