import KeywayConfig
import KeywayTrust
import KeywayVocabulary
import KeywayWire

/// What keyway-monitor signs for keyway-ike with a certificate's private key: only a value of the
/// negotiated PRF's length (a phase 1 hash, never a DigestInfo that would make a standard
/// signature over a message of the asker's choice), for an exchange announced first with a peer
/// configured for that certificate, once per exchange and side, at a bounded rate. A compromised
/// keyway-ike can still have hashes signed for configured peers (what is signed is the hash,
/// as OpenSSH's monitor also admits), but no more, and no faster.
public struct SignGate: Sendable {
    /// A peer entry that authenticates with a certificate of ours.
    public struct Signer: Equatable, Sendable {
        public var address: IPv4Prefix
        public var certificate: String
        public init(address: IPv4Prefix, certificate: String) { self.address = address; self.certificate = certificate }
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
            return Signer(address: IPv4Prefix(a.address, length: a.prefixLength), certificate: name)
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
        guard announced[a.exchange] == nil else { throw Refusal("exchange with \(a.exchange.peer) announced twice") }
        if announced.count >= Self.maximumAnnounced, let oldest = announced.min(by: { $0.value.at < $1.value.at }) {
            announced[oldest.key] = nil
        }
        announced[a.exchange] = Announcement(certificate: a.certificate, at: now)
    }

    /// Nil when the monitor may sign the request; it is then marked signed.
    public mutating func authorize(_ r: SignRequest, now: UInt64) throws(Refusal) {
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

    private mutating func refill(now: UInt64) {
        guard now > refilledAt else { return }
        let earned = (now - refilledAt) * Self.rate / 1000
        guard earned > 0 else { return }
        tokens = min(Self.burst, tokens.saturatingAdd(earned))
        refilledAt = now
    }
}
