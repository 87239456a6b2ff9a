import CKeywayCrypto

extension HashAlgorithm {
    /// A plain digest (not keyed): IKEv1 derives IVs and NAT-D values with it.
    public func digest(_ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 64)
        let n = data.withUnsafeBufferPointer { d in
            out.withUnsafeMutableBufferPointer { o in
                kw_digest(openSSLName, d.baseAddress, d.count, o.baseAddress, o.count)
            }
        }
        return Array(out.prefix(n))
    }
}

/// CBC over whole messages with an explicit IV: ISAKMP bodies after the key exchange
/// (RFC 2409 appendix B). The caller pads to the block size and chains the IVs.
///
/// The OpenSSL contexts are made per message, not held: an IKE SA exchanges a message a minute
/// or so, and two keyed contexts held for each (about 1.5 KiB) were most of what an idle tunnel
/// cost keyway-ike (README, Performance). A key schedule per message is nothing beside its HMACs.
public final class MessageCipher {
    public let algorithm: EncryptionAlgorithm
    private let key: Secret

    public init(_ algorithm: EncryptionAlgorithm, key: Secret) throws(CryptoError) {
        guard algorithm.mode == .cbc else { throw .libcrypto("\(algorithm.rawValue) is not a CBC cipher for IKE") }
        // Keyed once here so that a key OpenSSL refuses fails now, not at the first message.
        _ = try CipherContext(algorithm, key: key, encrypt: true)
        self.algorithm = algorithm
        self.key = key
    }

    public var blockSize: Int { algorithm.blockSize }

    /// Encrypts or decrypts in place; `data` must be a whole number of blocks and `iv` one block.
    public func run(_ data: inout [UInt8], iv: [UInt8], encrypt: Bool) throws(CryptoError) {
        guard iv.count == blockSize, data.count % blockSize == 0 else {
            throw .libcrypto("IKE message of \(data.count) bytes is not whole \(blockSize)-byte blocks")
        }
        if data.isEmpty { return }
        let context = try CipherContext(algorithm, key: key, encrypt: encrypt)
        let ok = iv.withUnsafeBufferPointer { v in
            data.withUnsafeMutableBufferPointer { d in
                guard let ivBase = v.baseAddress, let base = d.baseAddress else { return false }
                return context.run(iv: ivBase, base, d.count)
            }
        }
        guard ok else { throw .libcrypto("CBC \(encrypt ? "encryption" : "decryption") failed") }
    }
}

/// AES-GCM over whole messages with a 16-byte tag: IKEv2's SK payload under RFC 5282. The key is
/// the cipher key without the salt; the caller builds each 12-byte nonce (salt then explicit IV).
public final class MessageAEAD {
    public let algorithm: EncryptionAlgorithm
    public static let tagLength = 16
    public static let nonceLength = 12
    /// Contexts per message, as for MessageCipher.
    private let key: Secret

    public init(_ algorithm: EncryptionAlgorithm, key: Secret) throws(CryptoError) {
        guard algorithm.isAEAD else { throw .libcrypto("\(algorithm.rawValue) is not an AEAD cipher") }
        _ = try CipherContext(algorithm, key: key, encrypt: true)
        self.algorithm = algorithm
        self.key = key
    }

    /// Encrypts `data` in place; returns the tag.
    public func seal(_ data: inout [UInt8], nonce: [UInt8], aad: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard nonce.count == Self.nonceLength else { throw .badLength("a GCM nonce is 12 bytes") }
        var tag = [UInt8](repeating: 0, count: Self.tagLength)
        let sealer = try CipherContext(algorithm, key: key, encrypt: true)
        let ok = Self.withBuffers(&data, nonce, aad) { buf, len, n, a, alen in
            tag.withUnsafeMutableBufferPointer { t in
                guard let tb = t.baseAddress else { return false }
                return sealer.gcmSeal(nonce: n, aad: a, aadLength: alen, buf, len, tag: tb)
            }
        }
        guard ok else { throw .libcrypto("GCM encryption failed") }
        return tag
    }

    /// Checks the tag and decrypts `data` in place; `.authenticationFailed` when the tag is wrong.
    public func open(_ data: inout [UInt8], nonce: [UInt8], aad: [UInt8], tag: [UInt8]) throws(CryptoError) {
        guard nonce.count == Self.nonceLength, tag.count == Self.tagLength else {
            throw .badLength("a GCM nonce is 12 bytes and its tag 16")
        }
        let opener = try CipherContext(algorithm, key: key, encrypt: false)
        let ok = Self.withBuffers(&data, nonce, aad) { buf, len, n, a, alen in
            tag.withUnsafeBufferPointer { t in
                guard let tb = t.baseAddress else { return false }
                return opener.gcmOpen(nonce: n, aad: a, aadLength: alen, buf, len, tag: tb)
            }
        }
        guard ok else { throw .authenticationFailed }
    }

    private static func withBuffers(_ data: inout [UInt8], _ nonce: [UInt8], _ aad: [UInt8],
                                    _ body: (UnsafeMutablePointer<UInt8>, Int, UnsafePointer<UInt8>,
                                             UnsafePointer<UInt8>, Int) -> Bool) -> Bool {
        // An empty buffer still needs a valid pointer for OpenSSL.
        var scratch: UInt8 = 0
        let aadBytes = aad.isEmpty ? [0] : aad
        return nonce.withUnsafeBufferPointer { n in
            aadBytes.withUnsafeBufferPointer { a in
                guard let nb = n.baseAddress, let ab = a.baseAddress else { return false }
                if data.isEmpty {
                    return withUnsafeMutablePointer(to: &scratch) { body($0, 0, nb, ab, aad.count) }
                }
                return data.withUnsafeMutableBufferPointer { d in
                    guard let db = d.baseAddress else { return false }
                    return body(db, d.count, nb, ab, aad.count)
                }
            }
        }
    }
}
