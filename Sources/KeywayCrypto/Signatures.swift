import CKeywayCrypto

/// An RSA private key (PEM or DER). In Keyway it lives only in keyway-monitor, which signs on request.
public final class RSAPrivateKey: CustomStringConvertible {
    private let handle: OpaquePointer

    public init(pemOrDER data: [UInt8]) throws(CryptoError) {
        guard let h = data.withUnsafeBufferPointer({ kw_pkey_load_private($0.baseAddress, $0.count) }) else {
            throw .badKey("not an RSA private key in PEM or DER")
        }
        handle = h
    }

    deinit { kw_pkey_free(handle) }

    /// PKCS#1 v1.5 over the raw bytes, as IKEv1 signs HASH_I/HASH_R (no DigestInfo).
    public func sign(_ data: [UInt8]) throws(CryptoError) -> [UInt8] {
        var sig = [UInt8](repeating: 0, count: kw_pkey_size(handle))
        let n = data.withUnsafeBufferPointer { d in
            sig.withUnsafeMutableBufferPointer { s in
                kw_rsa_sign_raw(handle, d.baseAddress, d.count, s.baseAddress, s.count)
            }
        }
        guard n > 0 else { throw .libcrypto("RSA signature failed") }
        return Array(sig.prefix(n))
    }

    public var description: String { "<RSA private key>" }

    fileprivate var raw: OpaquePointer { handle }
}

/// An X.509 certificate (PEM or DER).
public final class Certificate {
    private let handle: OpaquePointer
    /// The DER encoding: what CERT payloads carry and what `matches` compares.
    public let der: [UInt8]

    public init(pemOrDER data: [UInt8]) throws(CryptoError) {
        guard let h = data.withUnsafeBufferPointer({ kw_cert_load($0.baseAddress, $0.count) }) else {
            throw .badCertificate("not an X.509 certificate in PEM or DER")
        }
        handle = h
        var buf = [UInt8](repeating: 0, count: 65536)
        let n = buf.withUnsafeMutableBufferPointer { kw_cert_der(h, $0.baseAddress, $0.count) }
        guard n > 0 else {
            kw_cert_free(h)
            throw .badCertificate("cannot encode as DER")
        }
        der = Array(buf.prefix(n))
    }

    deinit { kw_cert_free(handle) }

    public func verify(signature: [UInt8], over data: [UInt8]) -> Bool {
        data.withUnsafeBufferPointer { d in
            signature.withUnsafeBufferPointer { s in
                kw_rsa_verify_raw(handle, d.baseAddress, d.count, s.baseAddress, s.count) == 1
            }
        }
    }

    /// The peer presented exactly the configured remote-certificate.
    public func matches(_ other: Certificate) -> Bool {
        der.count == other.der.count && der.withUnsafeBufferPointer { a in
            other.der.withUnsafeBufferPointer { b in
                guard let x = a.baseAddress, let y = b.baseAddress else { return a.count == b.count }
                return kw_memcmp(x, y, a.count) == 0
            }
        }
    }

    public func isCertificate(for key: RSAPrivateKey) -> Bool { kw_cert_matches_key(handle, key.raw) == 1 }

    func withHandle<R>(_ body: (OpaquePointer) -> R) -> R { body(handle) }
}

extension SignatureScheme {
    var openSSLScheme: Int32 {
        switch family {
        case .rsaPKCS1: return Int32(KW_SIG_PKCS1)
        case .rsaPSS: return Int32(KW_SIG_PSS)
        case .ecdsa: return Int32(KW_SIG_ECDSA)
        }
    }

    /// Whether a key of this kind can make (or verify) such signatures.
    public func fits(_ kind: KeyKind) -> Bool {
        switch (family, kind) {
        case (.rsaPKCS1, .rsa), (.rsaPSS, .rsa), (.ecdsa, .ec): return true
        default: return false
        }
    }
}

private func keyKind(_ kind: Int32, bits: Int32) -> KeyKind? {
    switch kind {
    case Int32(KW_KEY_RSA): return .rsa(bits: Int(bits))
    case Int32(KW_KEY_EC): return .ec(bits: Int(bits))
    default: return nil
    }
}

/// An RSA or EC private key (PEM or DER) for IKEv2's signatures. In Keyway it lives only in
/// keyway-monitor, which signs the octets an IKE_AUTH needs, never anything else.
public final class PrivateKey: CustomStringConvertible {
    private let handle: OpaquePointer
    public let kind: KeyKind

    public init(pemOrDER data: [UInt8]) throws(CryptoError) {
        guard let h = data.withUnsafeBufferPointer({ kw_pkey_load_private_any($0.baseAddress, $0.count) }) else {
            throw .badKey("not an RSA or EC private key in PEM or DER")
        }
        guard let kind = keyKind(kw_pkey_kind(h), bits: kw_pkey_bits(h)) else {
            kw_pkey_free(h)
            throw .badKey("unsupported key type")
        }
        handle = h
        self.kind = kind
    }

    deinit { kw_pkey_free(handle) }

    /// A signature over `data` (hashed as the scheme says).
    public func sign(_ data: [UInt8], scheme: SignatureScheme) throws(CryptoError) -> [UInt8] {
        guard scheme.fits(kind) else { throw .badKey("a \(kind) key cannot make \(scheme.rawValue) signatures") }
        var sig = [UInt8](repeating: 0, count: max(kw_pkey_size(handle), 1))
        let n = data.withUnsafeBufferPointer { d in
            sig.withUnsafeMutableBufferPointer { s in
                kw_sign(handle, scheme.openSSLScheme, scheme.hash.openSSLName, d.baseAddress, d.count,
                        s.baseAddress, s.count)
            }
        }
        guard n > 0 else { throw .libcrypto("\(scheme.rawValue) signature failed") }
        return Array(sig.prefix(n))
    }

    public var description: String { "<\(kind) private key>" }

    fileprivate var raw: OpaquePointer { handle }
}

extension Certificate {
    /// The public key's kind (nil for keys Keyway cannot use).
    public var keyKind: KeyKind? { withHandle { KeywayCrypto.keyKindOf(certificate: $0) } }

    /// Verifies `signature` over `data` with the certificate's key. `pssSalt`: the salt length an
    /// RSA-PSS signature declares (nil: the digest's length).
    public func verify(signature: [UInt8], over data: [UInt8], scheme: SignatureScheme, pssSalt: Int? = nil) -> Bool {
        guard let kind = keyKind, scheme.fits(kind), (pssSalt ?? 0) >= 0, (pssSalt ?? 0) <= 512 else { return false }
        return withHandle { h in
            data.withUnsafeBufferPointer { d in
                signature.withUnsafeBufferPointer { s in
                    kw_cert_verify(h, scheme.openSSLScheme, scheme.hash.openSSLName, Int32(pssSalt ?? -1),
                                   d.baseAddress, d.count, s.baseAddress, s.count) == 1
                }
            }
        }
    }

    public func isCertificate(for key: PrivateKey) -> Bool { withHandle { kw_cert_matches_key($0, key.raw) == 1 } }
}

func keyKindOf(certificate h: OpaquePointer) -> KeyKind? {
    keyKind(kw_cert_key_kind(h), bits: kw_cert_key_bits(h))
}
