import CKeywayCrypto

/// One side of a Diffie-Hellman exchange, with public values in IKEv1's KE payload layout:
/// MODP g^x left-padded to the prime, ECP x||y (RFC 5903), EC2N the x coordinate (RFC 2409).
public final class DiffieHellman {
    public let group: DHGroup
    private let handle: OpaquePointer
    public let publicValue: [UInt8]

    /// A fresh key pair.
    public convenience init(group: DHGroup) throws(CryptoError) {
        try self.init(group: group, privateKey: nil)
    }

    /// A key pair from a given private value (known-answer tests), checked against the group
    /// (MODP 1 < x < p-1; EC 0 < x < order).
    public convenience init(group: DHGroup, privateKey: Secret?) throws(CryptoError) {
        try self.init(group: group, source: privateKey.map { .privateValue($0) } ?? .generated)
    }

    /// Bytes of uniformly random seed `init(group:seed:)` takes for `group`.
    public static func seedLength(group: DHGroup) -> Int { kw_dh_seed_size(Int32(group.rawValue)) }

    /// A key pair whose private value is derived from `seed` (`seedLength(group:)` uniformly
    /// random bytes): always in range, the same seed always giving the same keys. For callers that
    /// own their randomness (IKE draws it from its injected source, so exchanges can be replayed).
    public convenience init(group: DHGroup, seed: Secret) throws(CryptoError) {
        guard seed.count == Self.seedLength(group: group) else {
            throw .badLength("a \(group.name) seed is \(Self.seedLength(group: group)) bytes, got \(seed.count)")
        }
        try self.init(group: group, source: .seed(seed))
    }

    private enum Source { case generated, privateValue(Secret), seed(Secret) }

    private init(group: DHGroup, source: Source) throws(CryptoError) {
        self.group = group
        var status: Int32 = 0
        let id = Int32(group.rawValue)
        let h: OpaquePointer?
        switch source {
        case .generated:
            h = kw_dh_new(id, nil, 0, &status)
        case .privateValue(let x):
            h = x.withUnsafeBytes { p in
                kw_dh_new(id, p.baseAddress?.assumingMemoryBound(to: UInt8.self), p.count, &status)
            }
        case .seed(let seed):
            h = seed.withUnsafeBytes { p in
                kw_dh_new_from_seed(id, p.baseAddress?.assumingMemoryBound(to: UInt8.self), p.count, &status)
            }
        }
        guard let h else {
            if status == KW_DH_BAD_PRIVATE { throw .badPrivateValue(group: group.name) }
            throw .libcrypto("cannot create a \(group.name) key pair")
        }
        handle = h
        var pub = [UInt8](repeating: 0, count: kw_dh_public_size(h))
        let ok = pub.withUnsafeMutableBufferPointer { kw_dh_public(h, $0.baseAddress) == 1 }
        guard ok else {
            kw_dh_free(h)
            throw .libcrypto("cannot serialise the \(group.name) public value")
        }
        publicValue = pub
    }

    deinit { kw_dh_free(handle) }

    public var sharedSecretLength: Int { kw_dh_secret_size(handle) }

    /// Validates the peer's value (length, range, on the curve, in the prime-order subgroup)
    /// and derives g^xy, left-padded to the group's size as IKE needs it.
    public func sharedSecret(with peer: [UInt8]) throws(CryptoError) -> Secret {
        guard peer.count == publicValue.count else {
            throw .badPublicLength(group: group.name, expected: publicValue.count, got: peer.count)
        }
        var out = [UInt8](repeating: 0, count: sharedSecretLength)
        let status = peer.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in kw_dh_derive(handle, p.baseAddress, p.count, o.baseAddress) }
        }
        guard status == KW_DH_OK else {
            out.removeAll()
            if status == KW_DH_BAD_PUBLIC { throw .badPublicValue(group: group.name) }
            throw .libcrypto("\(group.name) derivation failed")
        }
        return Secret(consuming: &out)
    }
}

/// Checks of the group definitions themselves (used by the tests).
public enum DHGroupCheck {
    /// EC2N: generator on the curve with order small·q (q prime) exactly,
    /// and order·cofactor = RFC 2409's group order.
    public static func ec2nParametersHold(_ group: DHGroup) -> Bool { kw_ec2n_check(Int32(group.rawValue)) == 1 }
    /// MODP: the prime and (p-1)/2 are prime.
    public static func modpIsSafePrime(_ group: DHGroup) -> Bool { kw_modp_check(Int32(group.rawValue)) == 1 }

    public static func modpPrime(_ group: DHGroup) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: 1024)
        let n = buf.withUnsafeMutableBufferPointer { kw_modp_prime(Int32(group.rawValue), $0.baseAddress, $0.count) }
        return Array(buf.prefix(n))
    }

    /// 2^N - 2^(N-64) - 1 + 2^64 * ([2^(N-130) pi] + k), the definition RFC 2409 and 3526 give.
    public static func modpFromDefinition(bits: Int, k: UInt) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: 1024)
        let n = buf.withUnsafeMutableBufferPointer { kw_modp_from_formula(Int32(bits), k, $0.baseAddress, $0.count) }
        return Array(buf.prefix(n))
    }
}
