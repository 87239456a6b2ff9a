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
            sig.withUnsafeMutableBufferPointer { s in kw_rsa_sign_raw(handle, d.baseAddress, d.count, s.baseAddress, s.count) }
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
            signature.withUnsafeBufferPointer { s in kw_rsa_verify_raw(handle, d.baseAddress, d.count, s.baseAddress, s.count) == 1 }
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
}
