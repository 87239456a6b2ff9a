import CKeywayCrypto

public enum CryptoProviders {
    /// Loads OpenSSL's providers (legacy.so for DES) and configuration. Sandboxed children call
    /// this before their chroot: afterwards those files are out of reach.
    @discardableResult
    public static func preload() -> Bool { kw_crypto_init() == 1 }
}
