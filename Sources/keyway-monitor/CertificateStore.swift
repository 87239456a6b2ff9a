import KeywayCrypto
import KeywayMonitor
import KeywaySystem

/// Certificates and their private keys, as files the operator puts in the state directory:
/// `certificates/NAME.pem` (or .der) and, for our own, `certificates/NAME.key`. The monitor is
/// chrooted there, so the paths start at `/`. Private keys never leave this process: it signs.
struct CertificateStore {
    static let directory = "/certificates/"

    func certificate(_ name: String) throws -> Certificate {
        guard Self.isName(name) else {
            throw StoreError("certificate name '\(name)' has characters other than letters, digits, '-', '_' and '.'")
        }
        for ext in ["pem", "der", "crt"] where Files.exists(Self.directory + name + "." + ext) {
            return try Certificate(pemOrDER: try Files.readAll(Self.directory + name + "." + ext, limit: 65_536))
        }
        throw StoreError("certificate \(name) not found: put it in STATE/certificates/\(name).pem")
    }

    /// Signs with the key that belongs to the certificate; nil when there is none or they disagree.
    func sign(_ data: [UInt8], certificate name: String) -> [UInt8]? {
        guard Self.isName(name), let cert = try? certificate(name),
              let bytes = try? Files.readAll(Self.directory + name + ".key", limit: 65_536),
              let key = try? RSAPrivateKey(pemOrDER: bytes), cert.isCertificate(for: key) else { return nil }
        return try? key.sign(data)
    }

    /// IKEv2: signs `octets` with the key that belongs to the certificate, in the scheme SignGate
    /// chooses for the key, the method and the peer's hashes; nil when there is no key or scheme.
    func signIKEv2(_ octets: [UInt8], certificate name: String, method: UInt8,
                   peerHashes: [HashAlgorithm]) -> (SignatureScheme, [UInt8])? {
        guard Self.isName(name), let cert = try? certificate(name),
              let bytes = try? Files.readAll(Self.directory + name + ".key", limit: 65_536),
              let key = try? PrivateKey(pemOrDER: bytes), cert.isCertificate(for: key),
              let scheme = SignGate.scheme(method: method, key: key.kind, peerHashes: peerHashes),
              let signature = try? key.sign(octets, scheme: scheme) else { return nil }
        return (scheme, signature)
    }

    static func isName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name != "." && name != ".."
            && name.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) }
    }

    struct StoreError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }
}
