import CKeywayCrypto
@_exported import KeywayVocabulary

/// What OpenSSL calls each algorithm, and whether this build can use it.
extension EncryptionAlgorithm {
    var openSSLName: String? {
        switch self {
        case .null: return nil
        case .des: return "DES-CBC"
        case .tripleDES: return "DES-EDE3-CBC"
        case .aes128: return "AES-128-CBC"
        case .aes192: return "AES-192-CBC"
        case .aes256: return "AES-256-CBC"
        case .aes128ctr: return "AES-128-CTR"
        case .aes192ctr: return "AES-192-CTR"
        case .aes256ctr: return "AES-256-CTR"
        case .aes128gcm: return "AES-128-GCM"
        case .aes256gcm: return "AES-256-GCM"
        }
    }

    /// Configuration-time check: DES needs OpenSSL's legacy provider; say so before any packet flows.
    public func checkAvailable() throws(CryptoError) {
        if self == .des && kw_crypto_init() != 1 {
            throw .unavailable(algorithm: rawValue,
                               reason: "OpenSSL's legacy provider (ossl-modules/legacy.so) could not be loaded")
        }
    }
}

extension HashAlgorithm {
    var openSSLName: String {
        switch self {
        case .md5: return "MD5"
        case .sha1: return "SHA1"
        case .sha256: return "SHA256"
        case .sha384: return "SHA384"
        case .sha512: return "SHA512"
        }
    }
}
