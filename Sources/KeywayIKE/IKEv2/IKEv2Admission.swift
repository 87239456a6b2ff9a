import KeywayCrypto
import KeywayVocabulary

/// How the IKEv2 responder keeps spoofed IKE_SA_INIT floods from keeping real peers out
/// (RFC 7296 2.6), with the bounds IKEv1's ResponderAdmission uses:
///
/// - Below `cookieThreshold` half-open SAs whose peer has not proved it receives at its address,
///   an IKE_SA_INIT gets state at once. At the threshold, every IKE_SA_INIT without a valid COOKIE
///   is answered, statelessly, with one: a hash of its nonce, address and SPI under a secret
///   that changes every five minutes. A peer that returns it receives at its address.
/// - Such verified half-open SAs are bounded per address and in all; beyond, the request is
///   refused (busy), never displacing one under way.
/// - Diffie-Hellman for a peer nobody has authenticated yet is paid from a token bucket.
/// - Half-open SAs are forgotten after `halfOpenTimeout`.
struct IKEv2Admission {
    static let cookieThreshold = 10
    static let maximumVerifiedPerAddress = 8
    static let maximumVerified = 512
    static let halfOpenTimeout: UInt64 = 60_000
    static let secretLifetime: UInt64 = 300_000
    static let diffieHellmanRate: (burst: UInt64, perSecond: UInt64) = (64, 64)
    /// IKE_SA_INIT requests longer than this get no answer (a modp8192 KE with notifies fits).
    static let maximumInitMessage = 8_192

    private(set) var unverified = 0
    private(set) var verified = 0
    private var verifiedByAddress: [UInt32: Int] = [:]
    var diffieHellman = TokenBucket(capacity: diffieHellmanRate.burst, perSecond: diffieHellmanRate.perSecond)
    private var secret: [UInt8] = []
    private var previousSecret: [UInt8] = []
    private var version: UInt32 = 0
    private var rotatedAt: UInt64 = 0
    var cookiesSent: UInt64 = 0
    var refusedBusy: UInt64 = 0
    var diffieHellmanRefused: UInt64 = 0

    /// A new cookie secret every `secretLifetime` (the previous one stays valid until the next).
    mutating func rotate(now: UInt64, random: (Int) -> [UInt8]) {
        guard secret.isEmpty || now >= rotatedAt.saturatingAdd(Self.secretLifetime) else { return }
        previousSecret = secret
        secret = random(32)
        version &+= 1
        rotatedAt = now
    }

    var needsCookie: Bool { unverified >= Self.cookieThreshold }

    /// <VersionIDofSecret> | SHA-256(Ni | IPi | SPIi | <secret>).
    func cookie(nonce: [UInt8], address: UInt32, initiatorSPI: UInt64, version v: UInt32? = nil) -> [UInt8] {
        let which = v ?? version
        let key = which == version ? secret : previousSecret
        return which.bytes + HashAlgorithm.sha256.digest(nonce + address.bytes + initiatorSPI.bytes + key)
    }

    func valid(_ cookie: [UInt8], nonce: [UInt8], address: UInt32, initiatorSPI: UInt64) -> Bool {
        guard cookie.count == 36, !secret.isEmpty else { return false }
        let v = cookie.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard v == version || (v == version &- 1 && !previousSecret.isEmpty) else { return false }
        return IKEEngine.constantTimeEqual(self.cookie(nonce: nonce, address: address, initiatorSPI: initiatorSPI,
                                                       version: v), cookie)
    }

    /// Takes a half-open place for a new responder SA; false (counted) when the bounds are reached.
    mutating func admit(_ sa: IKEv2SA, verified isVerified: Bool) -> Bool {
        let address = sa.remote.address
        if isVerified {
            guard verified < Self.maximumVerified,
                  verifiedByAddress[address, default: 0] < Self.maximumVerifiedPerAddress
            else {
                refusedBusy += 1
                return false
            }
            verified += 1
            verifiedByAddress[address, default: 0] += 1
            sa.verified = true
        } else {
            guard unverified < Self.cookieThreshold else {
                refusedBusy += 1
                return false
            }
            unverified += 1
            sa.admittedUnverified = true
        }
        return true
    }

    /// Gives the SA's half-open place back (once: it was authenticated, or it went).
    mutating func release(_ sa: IKEv2SA) {
        if sa.admittedUnverified {
            unverified -= 1
            sa.admittedUnverified = false
        }
        if sa.verified {
            verified -= 1
            let n = verifiedByAddress[sa.remote.address, default: 1] - 1
            verifiedByAddress[sa.remote.address] = n > 0 ? n : nil
            sa.verified = false
        }
    }

    /// A token for Diffie-Hellman with an unauthenticated peer.
    mutating func spendDiffieHellman(now: UInt64) -> Bool {
        if diffieHellman.take(now: now) { return true }
        diffieHellmanRefused += 1
        refusedBusy += 1
        return false
    }

    func load(halfOpen: Int) -> ResponderLoad {
        var l = ResponderLoad()
        l.unverified = unverified
        l.verifiedHalfOpen = verified
        l.refusedBusy = refusedBusy
        l.diffieHellmanRefused = diffieHellmanRefused
        l.cookiesSent = cookiesSent
        return l
    }
}
