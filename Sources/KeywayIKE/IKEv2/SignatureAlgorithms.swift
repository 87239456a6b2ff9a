import KeywayVocabulary

/// RFC 7427 section 3: the AUTH data of a Digital Signature is a one-byte length, the DER of an
/// AlgorithmIdentifier, and the signature. Keyway writes the identifiers of the schemes it signs
/// with and reads those it verifies (RSA PKCS#1 v1.5 and RSA-PSS with SHA-2, ECDSA with SHA-2;
/// ECDSA signatures are DER, as RFC 7427 says).
enum SignatureAlgorithms {
    static let rsaPKCS1: [HashAlgorithm: [UInt8]] = [
        .sha1: [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05],
        .sha256: [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b],
        .sha384: [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c],
        .sha512: [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d],
    ]
    static let ecdsa: [HashAlgorithm: [UInt8]] = [
        .sha256: [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],
        .sha384: [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],
        .sha512: [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04],
    ]
    static let digests: [HashAlgorithm: [UInt8]] = [
        .sha1: [0x2b, 0x0e, 0x03, 0x02, 0x1a],
        .sha256: [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01],
        .sha384: [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02],
        .sha512: [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03],
    ]
    static let rsaPSS: [UInt8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a]
    static let mgf1: [UInt8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08]

    /// The DER AlgorithmIdentifier for a scheme (PSS: MGF1 with the same hash, salt = hash length).
    static func identifier(_ scheme: SignatureScheme) -> [UInt8] {
        let h = scheme.hash
        switch scheme.family {
        case .rsaPKCS1: return DER.sequence(DER.oid(rsaPKCS1[h] ?? []) + DER.null)
        case .ecdsa: return DER.sequence(DER.oid(ecdsa[h] ?? []))
        case .rsaPSS:
            let hashID = DER.sequence(DER.oid(digests[h] ?? []) + DER.null)
            let params = DER.tagged(0xa0, hashID) + DER.tagged(0xa1, DER.sequence(DER.oid(mgf1) + hashID))
                + DER.tagged(0xa2, DER.integer(h.outputLength))
            return DER.sequence(DER.oid(rsaPSS) + DER.sequence(params))
        }
    }

    /// AUTH data for method 14: length, identifier, signature.
    static func authData(_ scheme: SignatureScheme, signature: [UInt8]) -> [UInt8] {
        let id = identifier(scheme)
        return [UInt8(truncatingIfNeeded: id.count)] + id + signature
    }

    /// Reads method 14's AUTH data: the scheme, the PSS salt length it declares, and the signature.
    static func parse(_ data: [UInt8]) -> (scheme: SignatureScheme, pssSalt: Int?, signature: [UInt8])? {
        guard let length = data.first, data.count > 1 + Int(length) else { return nil }
        let id = Array(data[1...Int(length)]), signature = Array(data[(1 + Int(length))...])
        var top = DER.Reader(id)
        guard var outer = top.element(tag: 0x30), let oid = outer.element(tag: 0x06) else { return nil }
        let oidBytes = Array(oid.bytes[oid.at..<oid.end])
        if let (h, _) = rsaPKCS1.first(where: { $0.value == oidBytes }),
           let scheme = SignatureScheme(family: .rsaPKCS1, hash: h) {
            return (scheme, nil, signature)
        }
        if let (h, _) = ecdsa.first(where: { $0.value == oidBytes }),
           let scheme = SignatureScheme(family: .ecdsa, hash: h) {
            return (scheme, nil, signature)
        }
        guard oidBytes == rsaPSS, var params = outer.element(tag: 0x30) else { return nil }
        // RSASSA-PSS-params: [0] hash (default SHA-1), [1] MGF1 with a hash, [2] salt (default 20), [3] trailer 1.
        var hash = HashAlgorithm.sha1, mgfHash = HashAlgorithm.sha1, salt = 20
        if var h = params.element(tag: 0xa0) {
            guard var seq = h.element(tag: 0x30), let d = seq.element(tag: 0x06),
                  let found = digests.first(
                      where: { $0.value == Array(d.bytes[d.at..<d.end]) })?.key else { return nil }
            hash = found
        }
        if var m = params.element(tag: 0xa1) {
            guard var seq = m.element(tag: 0x30), let o = seq.element(tag: 0x06), Array(o.bytes[o.at..<o.end]) == mgf1,
                  var inner = seq.element(tag: 0x30), let d = inner.element(tag: 0x06),
                  let found = digests.first(
                      where: { $0.value == Array(d.bytes[d.at..<d.end]) })?.key else { return nil }
            mgfHash = found
        }
        if var s = params.element(tag: 0xa2) {
            guard let i = s.element(tag: 0x02), let value = i.smallInteger else { return nil }
            salt = value
        }
        if var t = params.element(tag: 0xa3) {
            guard let i = t.element(tag: 0x02), i.smallInteger == 1 else { return nil }
        }
        guard hash == mgfHash, let scheme = SignatureScheme(family: .rsaPSS, hash: hash) else { return nil }
        return (scheme, salt, signature)
    }
}

/// Just enough DER to write and read AlgorithmIdentifiers: definite lengths, bounds checked.
enum DER {
    static let null: [UInt8] = [0x05, 0x00]

    static func length(_ n: Int) -> [UInt8] {
        if n < 0x80 { return [UInt8(n)] }
        if n < 0x100 { return [0x81, UInt8(n)] }
        return [0x82, UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
    }
    static func tagged(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] { [tag] + length(content.count) + content }
    static func sequence(_ content: [UInt8]) -> [UInt8] { tagged(0x30, content) }
    static func oid(_ content: [UInt8]) -> [UInt8] { tagged(0x06, content) }
    static func integer(_ v: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        var x = v
        repeat { bytes.insert(UInt8(x & 0xff), at: 0); x >>= 8 } while x > 0
        if let f = bytes.first, f & 0x80 != 0 { bytes.insert(0, at: 0) }
        return tagged(0x02, bytes)
    }

    /// A cursor over one level of DER content.
    struct Reader {
        let bytes: [UInt8]
        var at: Int
        let end: Int

        init(_ bytes: [UInt8]) { self.bytes = bytes; at = 0; end = bytes.count }
        init(_ bytes: [UInt8], at: Int, end: Int) { self.bytes = bytes; self.at = at; self.end = end }

        /// The next element if it has `tag` (consumed), as a reader over its content.
        mutating func element(tag: UInt8) -> Reader? {
            guard at + 2 <= end, bytes[at] == tag else { return nil }
            var i = at + 1
            var n = Int(bytes[i]); i += 1
            if n & 0x80 != 0 {
                let count = n & 0x7f
                guard (1...2).contains(count), i + count <= end else { return nil }
                n = 0
                for _ in 0..<count { n = n << 8 | Int(bytes[i]); i += 1 }
            }
            guard n <= end - i else { return nil }
            defer { at = i + n }
            return Reader(bytes, at: i, end: i + n)
        }

        /// A non-negative INTEGER of at most four bytes.
        var smallInteger: Int? {
            guard end > at, end - at <= 4, bytes[at] & 0x80 == 0 else { return nil }
            return bytes[at..<end].reduce(0) { $0 << 8 | Int($1) }
        }
    }
}
