import KeywayVocabulary
import KeywayCrypto

/// RFC 2409 section 5 and appendix B for pre-shared keys: SKEYID and its three children, the
/// phase 1 cipher key, IVs, HASH_I/HASH_R, the quick-mode hashes and KEYMAT.
struct Phase1Keys {
    let hash: HashAlgorithm
    let skeyid: Secret
    let skeyidD: Secret
    let skeyidA: Secret
    let skeyidE: Secret
    let cipher: MessageCipher

    /// `preSharedKey` nil: signature authentication, SKEYID = prf(Ni_b | Nr_b, g^xy).
    init(preSharedKey: Secret?, choice: Phase1Choice, initiatorNonce ni: [UInt8], responderNonce nr: [UInt8],
         sharedSecret gxy: Secret, initiatorCookie ckyI: [UInt8], responderCookie ckyR: [UInt8]) throws(CryptoError) {
        hash = choice.hash
        if let preSharedKey {
            skeyid = try Self.prf(hash, preSharedKey, [.bytes(ni), .bytes(nr)])
        } else {
            skeyid = try Self.prf(hash, Secret(ni + nr), [.secret(gxy)])
        }
        skeyidD = try Self.prf(hash, skeyid, [.secret(gxy), .bytes(ckyI), .bytes(ckyR), .bytes([0])])
        skeyidA = try Self.prf(hash, skeyid, [.secret(skeyidD), .secret(gxy), .bytes(ckyI), .bytes(ckyR), .bytes([1])])
        skeyidE = try Self.prf(hash, skeyid, [.secret(skeyidA), .secret(gxy), .bytes(ckyI), .bytes(ckyR), .bytes([2])])
        let key = try Self.expand(hash, skeyidE, to: choice.encryption.keyLength)
        cipher = try MessageCipher(choice.encryption, key: key)
    }

    enum Part {
        case bytes([UInt8])
        case secret(Secret)
    }

    /// prf over concatenated parts; the temporary holding secret parts is zeroed afterwards.
    static func prf(_ hash: HashAlgorithm, _ key: Secret, _ parts: [Part]) throws(CryptoError) -> Secret {
        var input: [UInt8] = []
        for p in parts {
            switch p {
            case .bytes(let b): input += b
            case .secret(let s): s.withUnsafeBytes { input += $0 }
            }
        }
        defer { for i in input.indices { input[i] = 0 } }
        return try hash.prf(key: key, input)
    }

    /// RFC 2409 appendix B: K1 = prf(SKEYID_e, 0), Kn = prf(SKEYID_e, Kn-1), when SKEYID_e is short.
    static func expand(_ hash: HashAlgorithm, _ skeyidE: Secret, to length: Int) throws(CryptoError) -> Secret {
        if skeyidE.count >= length { return skeyidE.slice(0..<length) }
        var k = try prf(hash, skeyidE, [.bytes([0])])
        var out = k
        while out.count < length {
            k = try prf(hash, skeyidE, [.secret(k)])
            out = out + k
        }
        return out.slice(0..<length)
    }

    func authenticationHash(initiator: Bool, gxi: [UInt8], gxr: [UInt8], ckyI: [UInt8], ckyR: [UInt8], saBody: [UInt8],
                            idBody: [UInt8]) throws(CryptoError) -> [UInt8] {
        let input = initiator ? gxi + gxr + ckyI + ckyR + saBody + idBody : gxr + gxi + ckyR + ckyI + saBody + idBody
        return try hash.hmac(key: skeyid, input)
    }

    /// The first IV of phase 1: hash(g^xi | g^xr), cut to the cipher's block.
    func phase1IV(gxi: [UInt8], gxr: [UInt8]) -> [UInt8] {
        Array(hash.digest(gxi + gxr).prefix(cipher.blockSize))
    }

    /// Quick mode and informational exchanges start from the last phase 1 block and the message ID.
    func exchangeIV(lastPhase1Block: [UInt8], messageID: UInt32) -> [UInt8] {
        Array(hash.digest(lastPhase1Block + messageID.bytes).prefix(cipher.blockSize))
    }

    func hmacA(_ data: [UInt8]) throws(CryptoError) -> [UInt8] { try hash.hmac(key: skeyidA, data) }

    /// KEYMAT for one direction (RFC 2409 5.5), long enough for `length` bytes.
    func keymat(length: Int, pfsSecret: Secret?, proto: UInt8, spi: UInt32, ni: [UInt8],
                nr: [UInt8]) throws(CryptoError) -> Secret {
        var tail: [Part] = []
        if let pfsSecret { tail.append(.secret(pfsSecret)) }
        tail += [.bytes([proto]), .bytes(spi.bytes), .bytes(ni), .bytes(nr)]
        var k = try Self.prf(hash, skeyidD, tail)
        var out = k
        while out.count < length {
            k = try Self.prf(hash, skeyidD, [.secret(k)] + tail)
            out = out + k
        }
        return out.slice(0..<length)
    }
}

extension UInt32 {
    var bytes: [UInt8] { [UInt8(self >> 24), UInt8(self >> 16 & 0xff), UInt8(self >> 8 & 0xff), UInt8(self & 0xff)] }
}

extension UInt16 {
    var bytes: [UInt8] { [UInt8(self >> 8), UInt8(self & 0xff)] }
}
