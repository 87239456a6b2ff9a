import KeywayCrypto
import KeywayVocabulary

/// The IKE SA's algorithms: one of each transform type (RFC 7296 3.3.2). With an AEAD cipher
/// (RFC 5282) there is no integrity transform (`integrity` is null).
public struct IKEv2Suite: Equatable, Sendable, CustomStringConvertible {
    public var encryption: EncryptionAlgorithm
    public var prf: HashAlgorithm
    public var integrity: IntegrityAlgorithm
    public var group: DHGroup

    public init(encryption: EncryptionAlgorithm, prf: HashAlgorithm, integrity: IntegrityAlgorithm, group: DHGroup) {
        self.encryption = encryption; self.prf = prf; self.integrity = integrity; self.group = group
    }

    public var description: String {
        encryption.isAEAD ? "\(encryption.rawValue)/prf-\(prf.rawValue)/\(group.name)"
            : "\(encryption.rawValue)/\(integrity.rawValue)/\(group.name)"
    }
}

/// prf+ (RFC 7296 2.13): T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n), as many bytes as asked
/// (at most 255 blocks).
func prfPlus(_ prf: HashAlgorithm, key: Secret, _ seed: [UInt8], length: Int) throws -> Secret {
    guard length <= 255 * prf.outputLength else { throw NegotiationError.malformed("prf+ asked for \(length) bytes") }
    var out: [UInt8] = []
    var t: [UInt8] = []
    var n: UInt8 = 1
    defer { for i in t.indices { t[i] = 0 } }
    while out.count < length {
        var input = t + seed + [n]
        let block = try prf.prf(key: key, input)
        for i in input.indices { input[i] = 0 }
        t = block.withUnsafeBytes { Array($0) }
        out += t
        n &+= 1
    }
    let result = Secret(Array(out.prefix(length)))
    for i in out.indices { out[i] = 0 }
    return result
}

/// Protects and unprotects messages in one direction: the SK payload (RFC 7296 3.14) with a CBC
/// cipher and a truncated HMAC, or AES-GCM (RFC 5282) whose key material ends with a 4-byte salt.
final class SKProtection {
    let encryption: EncryptionAlgorithm
    let integrity: IntegrityAlgorithm
    private let cipher: MessageCipher?
    private let aead: MessageAEAD?
    private let salt: [UInt8]
    private let mac: MACContext?

    init(encryption: EncryptionAlgorithm, integrity: IntegrityAlgorithm, encryptionKey: Secret,
         integrityKey: Secret) throws {
        self.encryption = encryption
        self.integrity = integrity
        if encryption.isAEAD {
            aead = try MessageAEAD(encryption, key: encryptionKey.slice(0..<encryption.keyLength))
            salt = encryptionKey.withUnsafeBytes { Array($0[encryption.keyLength...]) }
            cipher = nil
            mac = nil
        } else {
            guard let hash = integrity.hash else {
                throw NegotiationError.noProposal("a CBC cipher needs an integrity algorithm")
            }
            cipher = try MessageCipher(encryption, key: encryptionKey)
            mac = try MACContext(hash, key: integrityKey)
            aead = nil
            salt = []
        }
    }

    var ivLength: Int { encryption.isAEAD ? 8 : encryption.blockSize }
    var icvLength: Int { encryption.isAEAD ? MessageAEAD.tagLength : integrity.icvLength }
    var blockSize: Int { encryption.isAEAD ? 1 : encryption.blockSize }

    /// Bytes an SK payload adds around `plaintext` bytes of inner payloads (IV, padding, pad
    /// length, ICV), at most.
    func overhead() -> Int { ivLength + blockSize + icvLength }

    /// A whole message: `prefix` (header and any plaintext payloads, with lengths still to fix)
    /// followed by the SK (or SKF) payload holding `inner`. `iv` is `ivLength` fresh bytes.
    func seal(header: IKEv2Header, plaintextPayloads: [UInt8], firstInner: UInt8,
              fragment: (number: UInt16, total: UInt16)?, inner: [UInt8], iv: [UInt8]) throws -> [UInt8] {
        var plain = inner
        let padding = (blockSize - (plain.count + 1) % blockSize) % blockSize
        plain += [UInt8](repeating: 0, count: padding) + [UInt8(padding)]
        let skHeaderLength = fragment == nil ? 4 : 8
        let skLength = skHeaderLength + iv.count + plain.count + icvLength
        var h = header
        h.nextPayload = plaintextPayloads.isEmpty
            ? (fragment == nil ? IKEv2PayloadType.encrypted : IKEv2PayloadType.encryptedFragment) : header.nextPayload
        let total = IKEv2Header.size + plaintextPayloads.count + skLength
        var message = h.encoded(totalLength: total) + plaintextPayloads
        message += [firstInner, 0]
        message.put16(UInt16(truncatingIfNeeded: skLength))
        if let fragment { message.put16(fragment.number); message.put16(fragment.total) }
        // RFC 5282 5.1: the associated data runs to the end of the SK header, before the IV.
        let aad = message
        message += iv
        if let aead {
            let tag = try aead.seal(&plain, nonce: salt + iv, aad: aad)
            message += plain + tag
        } else if let cipher, let mac {
            try cipher.run(&plain, iv: iv, encrypt: true)
            message += plain
            message += Array(mac.authenticate(message).prefix(icvLength))
        }
        for i in plain.indices { plain[i] = 0 }
        return message
    }

    /// Checks the ICV (or tag) of a received message and returns the inner payloads' bytes
    /// without padding. Throws `.authentication` on a bad ICV: the message is not from the peer.
    func open(_ datagram: [UInt8], _ encrypted: IKEv2Encrypted) throws -> [UInt8] {
        let start = encrypted.ivOffset
        guard start >= IKEv2Header.size, datagram.count - start >= ivLength + icvLength + 1 else {
            throw NegotiationError.malformed("encrypted payload too short")
        }
        let iv = Array(datagram[start..<(start + ivLength)])
        var body = Array(datagram[(start + ivLength)..<(datagram.count - icvLength)])
        let icv = Array(datagram[(datagram.count - icvLength)...])
        if let aead {
            do { try aead.open(&body, nonce: salt + iv, aad: Array(datagram[..<start]), tag: icv) } catch {
                throw NegotiationError.authentication("integrity check failed")
            }
        } else if let cipher, let mac {
            let expected = Array(mac.authenticate(Array(datagram[..<(datagram.count - icvLength)])).prefix(icvLength))
            guard IKEEngine.constantTimeEqual(expected, icv) else {
                throw NegotiationError.authentication("integrity check failed")
            }
            guard body.count % blockSize == 0 else {
                throw NegotiationError.malformed("encrypted data is not whole blocks")
            }
            try cipher.run(&body, iv: iv, encrypt: false)
        }
        guard let padLength = body.last, Int(padLength) + 1 <= body.count else {
            throw NegotiationError.malformed("bad padding in the encrypted payload")
        }
        let inner = Array(body[..<(body.count - Int(padLength) - 1)])
        for i in body.indices { body[i] = 0 }
        return inner
    }
}

/// RFC 7296 2.14: SKEYSEED and the seven keys of an IKE SA, in both directions.
final class IKEv2Keys {
    let suite: IKEv2Suite
    let skD: Secret
    let skPi: Secret, skPr: Secret
    /// What the original initiator sends with (SK_ai, SK_ei), and what the responder sends with.
    let initiatorOut: SKProtection
    let responderOut: SKProtection

    /// `skeyseedKey`/`skeyseedData`: prf(Ni | Nr, g^ir) for a new IKE SA, prf(SK_d old, g^ir | Ni | Nr)
    /// for a rekeyed one (RFC 7296 2.18, with the old SA's PRF).
    init(suite: IKEv2Suite, skeyseed: Secret, ni: [UInt8], nr: [UInt8], spiI: UInt64, spiR: UInt64) throws {
        self.suite = suite
        let prfLength = suite.prf.outputLength
        let integ = suite.encryption.isAEAD ? 0 : suite.integrity.keyLength
        let enc = suite.encryption.keyMaterialLength
        let total = 3 * prfLength + 2 * integ + 2 * enc
        let all = try prfPlus(suite.prf, key: skeyseed, ni + nr + spiI.bytes + spiR.bytes, length: total)
        var at = 0
        func take(_ n: Int) -> Secret { defer { at += n }; return all.slice(at..<(at + n)) }
        skD = take(prfLength)
        let ai = take(integ), ar = take(integ), ei = take(enc), er = take(enc)
        skPi = take(prfLength)
        skPr = take(prfLength)
        initiatorOut = try SKProtection(encryption: suite.encryption, integrity: suite.integrity, encryptionKey: ei,
                                        integrityKey: ai)
        responderOut = try SKProtection(encryption: suite.encryption, integrity: suite.integrity, encryptionKey: er,
                                        integrityKey: ar)
    }

    static func initialSKEYSEED(_ prf: HashAlgorithm, ni: [UInt8], nr: [UInt8], sharedSecret: Secret) throws -> Secret {
        try sharedSecret.withUnsafeBytes { try prf.prf(key: Secret(ni + nr), Array($0)) }
    }

    static func rekeySKEYSEED(_ prf: HashAlgorithm, oldSKd: Secret, sharedSecret: Secret, ni: [UInt8],
                              nr: [UInt8]) throws -> Secret {
        try sharedSecret.withUnsafeBytes { try prf.prf(key: oldSKd, Array($0) + ni + nr) }
    }

    /// KEYMAT for a child SA (RFC 7296 2.17): prf+(SK_d, [g^ir (new) |] Ni | Nr).
    func keymat(length: Int, pfs: Secret?, ni: [UInt8], nr: [UInt8]) throws -> Secret {
        var seed: [UInt8] = pfs.map { s in s.withUnsafeBytes { Array($0) } } ?? []
        seed += ni + nr
        defer { for i in seed.indices { seed[i] = 0 } }
        return try prfPlus(suite.prf, key: skD, seed, length: length)
    }

    /// The signed octets' last part: prf(SK_px, RestOfIDPayload).
    func macedID(initiator: Bool, idBody: [UInt8]) throws -> [UInt8] {
        try suite.prf.hmac(key: initiator ? skPi : skPr, idBody)
    }

    /// AUTH for a pre-shared key: prf(prf(Shared Secret, "Key Pad for IKEv2"), SignedOctets).
    static func sharedKeyAuth(_ prf: HashAlgorithm, secret: Secret, octets: [UInt8]) throws -> [UInt8] {
        let pad = try prf.prf(key: secret, Array("Key Pad for IKEv2".utf8))
        return try prf.hmac(key: pad, octets)
    }
}
