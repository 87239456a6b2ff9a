import CKeywayCrypto

/// One direction of an ESP SA's cryptography, keyed once. A packet is handled in place:
///
///     offset: | SPI (4) | sequence (4) | IV | payload (padded, with trailer) | ICV |
///
/// `seal` writes the IV and the ICV and encrypts the payload; `open` checks the ICV before
/// anything is decrypted. No allocation per packet.
public final class ESPTransform {
    public let encryption: EncryptionAlgorithm
    public let integrity: IntegrityAlgorithm
    public let ivLength: Int
    public let icvLength: Int
    /// The payload must be a multiple of this (RFC 4303: at least 4).
    public let alignment: Int
    public static let headerLength = 8

    private let cipher: CipherContext?
    private let mac: MACContext?
    private var salt: [UInt8]
    /// The counter block of CTR and GCM (salt, IV, counter); CBC and null need none.
    private var nonce: [UInt8]
    /// CBC IVs come from a pool refilled from the CSPRNG: one RAND_bytes call per 16 packets.
    /// Made on the first seal: an inbound SA never needs it. 256 bytes, not more: the call costs
    /// well under a microsecond, against some 15 per packet sealed, while every outbound SA of
    /// thousands holds its pool (1 KiB was a quarter of an SA's memory; README, Performance).
    private var ivPool: [UInt8] = []
    private var ivPoolUsed = 0
    static let ivPoolSize = 256

    /// `encryptionKey` is the keying material: cipher key, then salt for CTR and GCM.
    public init(encryption: EncryptionAlgorithm, encryptionKey: Secret, integrity: IntegrityAlgorithm,
                integrityKey: Secret?, encrypt: Bool) throws(CryptoError) {
        guard encryptionKey.count == encryption.keyMaterialLength else {
            throw .wrongKeyLength(algorithm: encryption.rawValue, expected: encryption.keyMaterialLength,
                                  got: encryptionKey.count)
        }
        let effectiveIntegrity = encryption.isAEAD ? IntegrityAlgorithm.null : integrity
        if encryption == .null && effectiveIntegrity == .null {
            throw .badKey("ESP with neither encryption nor integrity protects nothing")
        }
        self.encryption = encryption
        self.integrity = effectiveIntegrity
        ivLength = encryption.ivLength
        icvLength = encryption.isAEAD ? encryption.aeadICVLength : effectiveIntegrity.icvLength
        alignment = max(4, encryption.blockSize)
        salt = encryptionKey.withUnsafeBytes { Array($0[encryption.keyLength...]) }
        nonce = encryption.mode == .ctr || encryption.mode == .gcm ? [UInt8](repeating: 0, count: 16) : []
        if encryption == .null {
            cipher = nil
        } else {
            // CTR runs the same keystream both ways; GCM decides the direction per call.
            let forward = encrypt || encryption.mode != .cbc
            cipher = try CipherContext(encryption, key: encryptionKey.slice(0..<encryption.keyLength), encrypt: forward)
        }
        if let hash = effectiveIntegrity.hash {
            guard let key = integrityKey, key.count > 0 else {
                throw .wrongKeyLength(algorithm: effectiveIntegrity.rawValue, expected: effectiveIntegrity.keyLength,
                                      got: integrityKey?.count ?? 0)
            }
            mac = try MACContext(hash, key: key)
        } else {
            mac = nil
        }
    }

    deinit { salt.withUnsafeMutableBytes { p in if let b = p.baseAddress { kw_cleanse(b, p.count) } } }

    /// Bytes of ESP around the payload: header, IV, ICV.
    public var overhead: Int { Self.headerLength + ivLength + icvLength }

    /// Encrypts and authenticates the packet at `packet[offset..<offset+length]` in place.
    /// `sequence` (the ESP sequence number, or any counter unique per SA) seeds CTR/GCM IVs.
    /// `explicitIV` replaces the random CBC IV or the sequence-derived CTR/GCM IV; only
    /// known-answer tests use it.
    public func seal(_ packet: inout [UInt8], offset: Int, length: Int, sequence: UInt64,
                     explicitIV: [UInt8]? = nil) throws(CryptoError) {
        let payloadLength = length - overhead
        guard offset >= 0, payloadLength >= 0, offset + length <= packet.count, payloadLength % alignment == 0 else {
            throw .badLength("ESP payload of \(payloadLength) bytes is not a multiple of \(alignment) or does not fit")
        }
        let ok = packet.withUnsafeMutableBytes { raw -> Bool in
            guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return false }
            let (header, iv, payload, icv) = layout(base + offset, payloadLength: payloadLength)
            switch encryption.mode {
            case .none:
                break
            case .cbc:
                if !copy(explicitIV, into: iv) {
                    guard takeRandomIV(into: iv) else { return false }
                }
                guard let cipher else { return false }
                guard cipher.run(iv: iv, payload, payloadLength) else { return false }
            case .ctr, .gcm:
                if !copy(explicitIV, into: iv) { writeBigEndian(sequence, to: iv) }
                guard let cipher else { return false }
                return nonce.withUnsafeMutableBufferPointer { n in
                    guard let nb = n.baseAddress else { return false }
                    fillNonce(nb, iv: iv)
                    if encryption.mode == .gcm {
                        return cipher.gcmSeal(nonce: nb, aad: header, aadLength: Self.headerLength, payload,
                                              payloadLength, tag: icv)
                    }
                    return cipher.run(iv: nb, payload, payloadLength)
                        && authenticate(header, length - icvLength, icv: icv)
                }
            }
            return authenticate(header, length - icvLength, icv: icv)
        }
        if !ok { throw .libcrypto("ESP seal failed") }
    }

    /// Verifies the ICV, then decrypts in place. Returns the payload's range (padding and
    /// trailer included: the caller checks those).
    public func open(_ packet: inout [UInt8], offset: Int, length: Int) throws(CryptoError) -> Range<Int> {
        let payloadLength = length - overhead
        guard offset >= 0, payloadLength >= 0, offset + length <= packet.count else {
            throw .badLength("ESP packet too short")
        }
        guard payloadLength % encryption.blockSize == 0 else {
            throw .badLength("ESP payload not a multiple of the cipher block")
        }
        var authentic = true
        let ok = packet.withUnsafeMutableBytes { raw -> Bool in
            guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return false }
            let (header, iv, payload, icv) = layout(base + offset, payloadLength: payloadLength)
            if encryption.mode == .gcm {
                guard let cipher else { return false }
                return nonce.withUnsafeMutableBufferPointer { n in
                    guard let nb = n.baseAddress else { return false }
                    fillNonce(nb, iv: iv)
                    authentic = cipher.gcmOpen(nonce: nb, aad: header, aadLength: Self.headerLength, payload,
                                               payloadLength, tag: icv)
                    return true
                }
            }
            if let mac {
                guard mac.compute(UnsafeRawBufferPointer(start: header, count: length - icvLength)) else {
                    return false
                }
                authentic = mac.matchesTruncated(UnsafeRawBufferPointer(start: icv, count: icvLength))
                guard authentic else { return true }
            }
            switch encryption.mode {
            case .none, .gcm: return true
            case .cbc: return cipher?.run(iv: iv, payload, payloadLength) ?? false
            case .ctr:
                guard let cipher else { return false }
                return nonce.withUnsafeMutableBufferPointer { n in
                    guard let nb = n.baseAddress else { return false }
                    fillNonce(nb, iv: iv)
                    return cipher.run(iv: nb, payload, payloadLength)
                }
            }
        }
        if !authentic { throw .authenticationFailed }
        if !ok { throw .libcrypto("ESP open failed") }
        let start = offset + Self.headerLength + ivLength
        return start..<(start + payloadLength)
    }

    /// Where the parts of an ESP packet starting at `header` lie.
    private func layout(_ header: UnsafeMutablePointer<UInt8>, payloadLength: Int)
        -> (header: UnsafeMutablePointer<UInt8>, iv: UnsafeMutablePointer<UInt8>, payload: UnsafeMutablePointer<UInt8>,
            icv: UnsafeMutablePointer<UInt8>) {
        let iv = header + Self.headerLength
        let payload = iv + ivLength
        return (header, iv, payload, payload + payloadLength)
    }

    /// Known-answer tests give the IV; returns false when there is none to copy.
    private func copy(_ explicitIV: [UInt8]?, into iv: UnsafeMutablePointer<UInt8>) -> Bool {
        guard let explicitIV, explicitIV.count == ivLength else { return false }
        for i in 0..<ivLength { iv[i] = explicitIV[i] }
        return true
    }

    private func takeRandomIV(into iv: UnsafeMutablePointer<UInt8>) -> Bool {
        if ivPool.isEmpty {
            ivPool = [UInt8](repeating: 0, count: Self.ivPoolSize)
            ivPoolUsed = ivPool.count
        }
        if ivPoolUsed + ivLength > ivPool.count {
            let ok = ivPool.withUnsafeMutableBufferPointer { kw_random($0.baseAddress, $0.count) == 1 }
            guard ok else { return false }
            ivPoolUsed = 0
        }
        ivPool.withUnsafeBufferPointer { p in
            guard let base = p.baseAddress else { return }
            iv.update(from: base + ivPoolUsed, count: ivLength)
        }
        ivPoolUsed += ivLength
        return true
    }

    private func authenticate(_ start: UnsafeMutablePointer<UInt8>, _ count: Int,
                              icv: UnsafeMutablePointer<UInt8>) -> Bool {
        guard let mac else { return true }
        guard mac.compute(UnsafeRawBufferPointer(start: start, count: count)) else { return false }
        mac.copyTruncated(to: UnsafeMutableRawBufferPointer(start: icv, count: icvLength))
        return true
    }

    /// GCM: salt || IV (12 bytes). CTR (RFC 3686): salt || IV || 00 00 00 01.
    private func fillNonce(_ n: UnsafeMutablePointer<UInt8>, iv: UnsafePointer<UInt8>) {
        for i in 0..<4 { n[i] = salt[i] }
        for i in 0..<8 { n[4 + i] = iv[i] }
        n[12] = 0; n[13] = 0; n[14] = 0; n[15] = 1
    }

    private func writeBigEndian(_ v: UInt64, to p: UnsafeMutablePointer<UInt8>) {
        for i in 0..<8 { p[i] = UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64(i))) }
    }
}

/// AH's integrity check (RFC 4302): an HMAC over the packet with mutable fields zeroed by the caller.
public final class AHTransform {
    public let integrity: IntegrityAlgorithm
    private let mac: MACContext

    public init(integrity: IntegrityAlgorithm, key: Secret) throws(CryptoError) {
        guard let hash = integrity.hash else { throw .badKey("AH needs an integrity algorithm") }
        // HMAC takes keys of any length; manual keys may be short (the manual's own AH example
        // uses three bytes), which configuration warns about. An empty key is refused.
        guard key.count > 0 else {
            throw .wrongKeyLength(algorithm: integrity.rawValue, expected: integrity.keyLength, got: key.count)
        }
        self.integrity = integrity
        mac = try MACContext(hash, key: key)
    }

    public var icvLength: Int { integrity.icvLength }

    /// Computes the ICV over `packet[range]` and writes it at `icvOffset`.
    public func sign(_ packet: inout [UInt8], range: Range<Int>, icvOffset: Int) throws(CryptoError) {
        guard range.lowerBound >= 0, range.upperBound <= packet.count, icvOffset >= 0,
              icvOffset + icvLength <= packet.count else {
            throw .badLength("AH range outside the packet")
        }
        let ok = packet.withUnsafeMutableBytes { raw -> Bool in
            guard mac.compute(UnsafeRawBufferPointer(rebasing: raw[range])) else { return false }
            mac.copyTruncated(to: UnsafeMutableRawBufferPointer(rebasing: raw[icvOffset..<(icvOffset + icvLength)]))
            return true
        }
        if !ok { throw .libcrypto("AH ICV failed") }
    }

    /// Constant-time check of `icv` against the ICV over `packet[range]`.
    public func verify(_ packet: [UInt8], range: Range<Int>, icv: ArraySlice<UInt8>) -> Bool {
        guard icv.count == icvLength, range.lowerBound >= 0, range.upperBound <= packet.count else { return false }
        return packet.withUnsafeBytes { raw in
            guard mac.compute(UnsafeRawBufferPointer(rebasing: raw[range])) else { return false }
            return icv.withUnsafeBytes { mac.matchesTruncated($0) }
        }
    }
}
