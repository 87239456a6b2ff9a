import CKeywayCrypto

/// A keyed cipher context, created once per SA and reused for every packet.
final class CipherContext {
    let algorithm: EncryptionAlgorithm
    private let handle: OpaquePointer

    init(_ algorithm: EncryptionAlgorithm, key: Secret, encrypt: Bool) throws(CryptoError) {
        try algorithm.checkAvailable()
        guard let name = algorithm.openSSLName else { throw .libcrypto("no cipher for \(algorithm.rawValue)") }
        guard key.count == algorithm.keyLength else {
            throw .wrongKeyLength(algorithm: algorithm.rawValue, expected: algorithm.keyLength, got: key.count)
        }
        let h = key.withUnsafeBytes { k in
            kw_cipher_new(name, k.baseAddress?.assumingMemoryBound(to: UInt8.self), k.count, encrypt ? 1 : 0)
        }
        guard let h else { throw .libcrypto("cannot set up \(name)") }
        handle = h
        self.algorithm = algorithm
    }

    deinit { kw_cipher_free(handle) }

    func run(iv: UnsafePointer<UInt8>, _ buffer: UnsafeMutablePointer<UInt8>, _ length: Int) -> Bool {
        kw_cipher_run(handle, iv, buffer, length) == 1
    }

    func gcmSeal(nonce: UnsafePointer<UInt8>, aad: UnsafePointer<UInt8>, aadLength: Int,
                 _ buffer: UnsafeMutablePointer<UInt8>, _ length: Int, tag: UnsafeMutablePointer<UInt8>) -> Bool {
        kw_gcm_seal(handle, nonce, aad, aadLength, buffer, length, tag) == 1
    }

    func gcmOpen(nonce: UnsafePointer<UInt8>, aad: UnsafePointer<UInt8>, aadLength: Int,
                 _ buffer: UnsafeMutablePointer<UInt8>, _ length: Int, tag: UnsafePointer<UInt8>) -> Bool {
        kw_gcm_open(handle, nonce, aad, aadLength, buffer, length, tag) == 1
    }
}

/// A keyed HMAC, reset per message without a new key schedule.
public final class MACContext {
    public let hash: HashAlgorithm
    private let handle: OpaquePointer
    private var scratch: [UInt8]

    public init(_ hash: HashAlgorithm, key: Secret) throws(CryptoError) {
        let h = key.withUnsafeBytes { k -> OpaquePointer? in
            // HMAC keys may be empty (a NULL pointer is fine for OpenSSL with length 0).
            kw_mac_new(hash.openSSLName, k.baseAddress?.assumingMemoryBound(to: UInt8.self), k.count)
        }
        guard let h else { throw .libcrypto("cannot set up HMAC-\(hash.openSSLName)") }
        handle = h
        self.hash = hash
        scratch = [UInt8](repeating: 0, count: hash.outputLength)
    }

    deinit { kw_mac_free(handle) }

    /// The full HMAC of the concatenation of `parts`.
    public func authenticate(_ parts: [UInt8]...) -> [UInt8] {
        kw_mac_begin(handle)
        for p in parts { p.withUnsafeBufferPointer { b in _ = kw_mac_update(handle, b.baseAddress, b.count) } }
        scratch.withUnsafeMutableBufferPointer { o in _ = kw_mac_final(handle, o.baseAddress) }
        return scratch
    }

    /// HMAC over a byte range of a raw buffer, into the context's scratch; returns its first `length` bytes' location.
    func compute(_ data: UnsafeRawBufferPointer) -> Bool {
        guard kw_mac_begin(handle) == 1 else { return false }
        if let base = data.baseAddress,
           kw_mac_update(handle, base.assumingMemoryBound(to: UInt8.self), data.count) != 1 {
            return false
        }
        return scratch.withUnsafeMutableBufferPointer { o in kw_mac_final(handle, o.baseAddress) == 1 }
    }

    /// Writes the first `length` bytes of the last MAC to `out`.
    func copyTruncated(to out: UnsafeMutableRawBufferPointer) {
        scratch.withUnsafeBytes { s in out.copyMemory(from: UnsafeRawBufferPointer(rebasing: s[0..<out.count])) }
    }

    /// Constant-time comparison of the last MAC's first `icv.count` bytes with `icv`.
    func matchesTruncated(_ icv: UnsafeRawBufferPointer) -> Bool {
        scratch.withUnsafeBytes { s in
            guard let a = s.baseAddress, let b = icv.baseAddress, icv.count <= s.count else { return false }
            return kw_memcmp(a, b, icv.count) == 0
        }
    }
}

extension HashAlgorithm {
    /// The IKEv1 pseudo-random function: HMAC with this hash. Its output is key material.
    public func prf(key: Secret, _ parts: [UInt8]...) throws(CryptoError) -> Secret {
        let ctx = try MACContext(self, key: key)
        var out = parts.count == 1 ? ctx.authenticate(parts[0]) : ctx.authenticate(parts.reduce([], +))
        return Secret(consuming: &out)
    }

    /// HMAC whose output is not secret (HASH_I, HASH_R, quick-mode HASHes).
    public func hmac(key: Secret, _ data: [UInt8]) throws(CryptoError) -> [UInt8] {
        try MACContext(self, key: key).authenticate(data)
    }
}
