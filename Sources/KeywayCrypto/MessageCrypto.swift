import CKeywayCrypto

extension HashAlgorithm {
    /// A plain digest (not keyed): IKEv1 derives IVs and NAT-D values with it.
    public func digest(_ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 64)
        let n = data.withUnsafeBufferPointer { d in
            out.withUnsafeMutableBufferPointer { o in kw_digest(openSSLName, d.baseAddress, d.count, o.baseAddress, o.count) }
        }
        return Array(out.prefix(n))
    }
}

/// CBC over whole messages with an explicit IV: ISAKMP bodies after the key exchange
/// (RFC 2409 appendix B). The caller pads to the block size and chains the IVs.
public final class MessageCipher {
    public let algorithm: EncryptionAlgorithm
    private let encryptor: CipherContext
    private let decryptor: CipherContext

    public init(_ algorithm: EncryptionAlgorithm, key: Secret) throws(CryptoError) {
        guard algorithm.mode == .cbc else { throw .libcrypto("\(algorithm.rawValue) is not a CBC cipher for IKE") }
        self.algorithm = algorithm
        encryptor = try CipherContext(algorithm, key: key, encrypt: true)
        decryptor = try CipherContext(algorithm, key: key, encrypt: false)
    }

    public var blockSize: Int { algorithm.blockSize }

    /// Encrypts or decrypts in place; `data` must be a whole number of blocks and `iv` one block.
    public func run(_ data: inout [UInt8], iv: [UInt8], encrypt: Bool) throws(CryptoError) {
        guard iv.count == blockSize, data.count % blockSize == 0 else {
            throw .libcrypto("IKE message of \(data.count) bytes is not whole \(blockSize)-byte blocks")
        }
        if data.isEmpty { return }
        let context = encrypt ? encryptor : decryptor
        let ok = iv.withUnsafeBufferPointer { v in
            data.withUnsafeMutableBufferPointer { d in
                guard let ivBase = v.baseAddress, let base = d.baseAddress else { return false }
                return context.run(iv: ivBase, base, d.count)
            }
        }
        guard ok else { throw .libcrypto("CBC \(encrypt ? "encryption" : "decryption") failed") }
    }
}
