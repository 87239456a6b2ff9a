/// Algorithm names as RouterOS spells them, with the facts every module needs (key and block
/// sizes, weakness). What OpenSSL does with them lives in KeywayCrypto.

/// ESP and IKE encryption, named as RouterOS spells them.
public enum EncryptionAlgorithm: String, Sendable, CaseIterable {
    case null = "null"
    case des = "des"
    case tripleDES = "3des"
    case aes128 = "aes-128"
    case aes192 = "aes-192"
    case aes256 = "aes-256"
    case aes128ctr = "aes-128-ctr"
    case aes192ctr = "aes-192-ctr"
    case aes256ctr = "aes-256-ctr"
    case aes128gcm = "aes-128-gcm"
    case aes256gcm = "aes-256-gcm"

    public enum Mode: Sendable { case none, cbc, ctr, gcm }

    public var mode: Mode {
        switch self {
        case .null: return .none
        case .des, .tripleDES, .aes128, .aes192, .aes256: return .cbc
        case .aes128ctr, .aes192ctr, .aes256ctr: return .ctr
        case .aes128gcm, .aes256gcm: return .gcm
        }
    }

    /// The cipher key proper.
    public var keyLength: Int {
        switch self {
        case .null: return 0
        case .des: return 8
        case .tripleDES: return 24
        case .aes128, .aes128ctr, .aes128gcm: return 16
        case .aes192, .aes192ctr: return 24
        case .aes256, .aes256ctr, .aes256gcm: return 32
        }
    }

    /// RFC 3686 and RFC 4106: a 4-byte nonce salt taken from the keying material after the key.
    public var saltLength: Int { mode == .ctr || mode == .gcm ? 4 : 0 }

    /// What a manual-sa key or KEYMAT must supply: key then salt.
    public var keyMaterialLength: Int { keyLength + saltLength }

    public var blockSize: Int {
        switch self {
        case .null: return 1
        case .des, .tripleDES: return 8
        case .aes128, .aes192, .aes256: return 16
        case .aes128ctr, .aes192ctr, .aes256ctr, .aes128gcm, .aes256gcm: return 1
        }
    }

    /// Bytes of IV carried in each ESP packet.
    public var ivLength: Int {
        switch mode {
        case .none: return 0
        case .cbc: return blockSize
        case .ctr, .gcm: return 8
        }
    }

    public var isAEAD: Bool { mode == .gcm }
    /// The IV is a counter (CTR, GCM): reusing one under a key breaks confidentiality, so these
    /// need a fresh key per SA and cannot be manual-keyed (RFC 8221).
    public var isCounterMode: Bool { mode == .ctr || mode == .gcm }
    /// The ICV an AEAD cipher appends (RFC 4106: 16 bytes).
    public var aeadICVLength: Int { isAEAD ? 16 : 0 }

    /// Weak or broken: allowed because the manual offers it, but flagged wherever it is chosen.
    public var isWeak: Bool { self == .des || self == .null }
}

/// ESP/AH integrity (HMAC truncated as RFC 2403/2404/4868 say) and IKE hashes.
public enum IntegrityAlgorithm: String, Sendable, CaseIterable {
    case null = "null"
    case md5 = "md5"
    case sha1 = "sha1"
    case sha256 = "sha256"
    case sha384 = "sha384"
    case sha512 = "sha512"

    public var keyLength: Int {
        switch self {
        case .null: return 0
        case .md5: return 16
        case .sha1: return 20
        case .sha256: return 32
        case .sha384: return 48
        case .sha512: return 64
        }
    }

    /// Truncated ICV: 96 bits for MD5 and SHA-1; half the hash for SHA-2 (RFC 4868: 128 for SHA-256).
    public var icvLength: Int {
        switch self {
        case .null: return 0
        case .md5, .sha1: return 12
        case .sha256: return 16
        case .sha384: return 24
        case .sha512: return 32
        }
    }

    public var hash: HashAlgorithm? {
        switch self {
        case .null: return nil
        case .md5: return .md5
        case .sha1: return .sha1
        case .sha256: return .sha256
        case .sha384: return .sha384
        case .sha512: return .sha512
        }
    }

    public var isWeak: Bool { self == .md5 || self == .null }
}

/// Full-length hashes: the IKEv1 PRF (HMAC) and HASH payloads.
public enum HashAlgorithm: String, Sendable, CaseIterable {
    case md5, sha1, sha256, sha384, sha512

    public var outputLength: Int {
        switch self {
        case .md5: return 16
        case .sha1: return 20
        case .sha256: return 32
        case .sha384: return 48
        case .sha512: return 64
        }
    }
}

/// Diffie-Hellman groups by IKE number, named as RouterOS spells them.
public enum DHGroup: Int, Sendable, CaseIterable {
    case modp768 = 1
    case modp1024 = 2
    case ec2n155 = 3
    case ec2n185 = 4
    case modp1536 = 5
    case modp2048 = 14
    case modp3072 = 15
    case modp4096 = 16
    case modp6144 = 17
    case modp8192 = 18
    case ecp256 = 19
    case ecp384 = 20
    case ecp521 = 21
    /// RFC 8031 (IKEv2): X25519.
    case curve25519 = 31

    public var name: String {
        switch self {
        case .modp768: return "modp768"
        case .modp1024: return "modp1024"
        case .ec2n155: return "ec2n155"
        case .ec2n185: return "ec2n185"
        case .modp1536: return "modp1536"
        case .modp2048: return "modp2048"
        case .modp3072: return "modp3072"
        case .modp4096: return "modp4096"
        case .modp6144: return "modp6144"
        case .modp8192: return "modp8192"
        case .ecp256: return "ecp256"
        case .ecp384: return "ecp384"
        case .ecp521: return "ecp521"
        case .curve25519: return "curve25519"
        }
    }

    public init?(name: String) {
        guard let g = DHGroup.allCases.first(where: { $0.name == name }) else { return nil }
        self = g
    }

    public enum Kind: Sendable { case modp, ecp, ec2n, montgomery }

    public var kind: Kind {
        switch self {
        case .ec2n155, .ec2n185: return .ec2n
        case .ecp256, .ecp384, .ecp521: return .ecp
        case .curve25519: return .montgomery
        default: return .modp
        }
    }

    /// Breakable today (under 2048-bit MODP, or the binary-field EC2N groups): flagged wherever chosen.
    public var isWeak: Bool {
        switch self {
        case .modp768, .modp1024, .modp1536, .ec2n155, .ec2n185: return true
        default: return false
        }
    }

    /// Bits of the prime, or of the field.
    public var bits: Int {
        switch self {
        case .modp768: return 768
        case .modp1024: return 1024
        case .ec2n155: return 155
        case .ec2n185: return 185
        case .modp1536: return 1536
        case .modp2048: return 2048
        case .modp3072: return 3072
        case .modp4096: return 4096
        case .modp6144: return 6144
        case .modp8192: return 8192
        case .ecp256: return 256
        case .ecp384: return 384
        case .ecp521: return 521
        case .curve25519: return 255
        }
    }
}

/// How a signature is made over a whole octet string: RFC 7296's auth method 1 (RSASSA-PKCS1-v1_5
/// with SHA-1) or one RFC 7427 names. The hash is applied to the data by the signer.
public enum SignatureScheme: String, Sendable, CaseIterable {
    case rsaPKCS1SHA1 = "rsa-pkcs1-sha1"
    case rsaPKCS1SHA256 = "rsa-pkcs1-sha256"
    case rsaPKCS1SHA384 = "rsa-pkcs1-sha384"
    case rsaPKCS1SHA512 = "rsa-pkcs1-sha512"
    case rsaPSSSHA256 = "rsa-pss-sha256"
    case rsaPSSSHA384 = "rsa-pss-sha384"
    case rsaPSSSHA512 = "rsa-pss-sha512"
    case ecdsaSHA256 = "ecdsa-sha256"
    case ecdsaSHA384 = "ecdsa-sha384"
    case ecdsaSHA512 = "ecdsa-sha512"

    public enum Family: Sendable { case rsaPKCS1, rsaPSS, ecdsa }

    public var family: Family {
        switch self {
        case .rsaPKCS1SHA1, .rsaPKCS1SHA256, .rsaPKCS1SHA384, .rsaPKCS1SHA512: return .rsaPKCS1
        case .rsaPSSSHA256, .rsaPSSSHA384, .rsaPSSSHA512: return .rsaPSS
        case .ecdsaSHA256, .ecdsaSHA384, .ecdsaSHA512: return .ecdsa
        }
    }

    public var hash: HashAlgorithm {
        switch self {
        case .rsaPKCS1SHA1: return .sha1
        case .rsaPKCS1SHA256, .rsaPSSSHA256, .ecdsaSHA256: return .sha256
        case .rsaPKCS1SHA384, .rsaPSSSHA384, .ecdsaSHA384: return .sha384
        case .rsaPKCS1SHA512, .rsaPSSSHA512, .ecdsaSHA512: return .sha512
        }
    }

    public init?(family: Family, hash: HashAlgorithm) {
        guard let s = Self.allCases.first(where: { $0.family == family && $0.hash == hash }) else { return nil }
        self = s
    }
}

/// What a certificate's or private key's public key is.
public enum KeyKind: Equatable, Sendable, CustomStringConvertible {
    case rsa(bits: Int)
    case ec(bits: Int)

    public var description: String {
        switch self {
        case .rsa(let b): return "RSA \(b)"
        case .ec(let b): return "EC P-\(b)"
        }
    }
}
