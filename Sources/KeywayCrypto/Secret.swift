import CKeywayCrypto

/// Key material: stored outside Swift's copy-on-write arrays, zeroed when released, never
/// printed, compared in constant time.
public final class Secret: CustomStringConvertible, CustomDebugStringConvertible, Equatable, @unchecked Sendable {
    // Immutable after init, so sharing across threads is safe.
    private let storage: UnsafeMutableRawBufferPointer

    public var count: Int { storageCount }

    /// Copies `bytes`; the caller's array is not cleared (use `init(consuming:)` for that).
    public init(_ bytes: [UInt8]) {
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        storage.copyBytes(from: bytes)
        if bytes.isEmpty { storage[0] = 0 }
        storageCount = bytes.count
    }

    /// Copies `bytes` and zeroes the source.
    public convenience init(consuming bytes: inout [UInt8]) {
        self.init(bytes)
        bytes.withUnsafeMutableBytes { p in if let b = p.baseAddress { kw_cleanse(b, p.count) } }
        bytes.removeAll()
    }

    private let storageCount: Int

    deinit {
        if let base = storage.baseAddress { kw_cleanse(base, storage.count) }
        storage.deallocate()
    }

    /// Parses hexadecimal key text (an optional "0x" prefix); nil for anything else.
    public convenience init?(hex: String) {
        guard var bytes = Hex.decode(hex) else { return nil }
        self.init(consuming: &bytes)
    }

    public static func random(count: Int) -> Secret {
        var bytes = SecureRandom.bytes(count)
        return Secret(consuming: &bytes)
    }

    /// Read access for the crypto bindings.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<storageCount]))
    }

    /// A new secret from a byte range of this one (e.g. splitting KEYMAT into key and salt).
    public func slice(_ range: Range<Int>) -> Secret {
        precondition(range.lowerBound >= 0 && range.upperBound <= storageCount, "Secret.slice out of range")
        var copy = withUnsafeBytes { Array($0[range]) }
        return Secret(consuming: &copy)
    }

    /// Concatenation, for KEYMAT expansion.
    public static func + (a: Secret, b: Secret) -> Secret {
        var bytes = a.withUnsafeBytes { Array($0) } + b.withUnsafeBytes { Array($0) }
        return Secret(consuming: &bytes)
    }

    /// Only for `show-sensitive` printouts and for handing keys to a test peer.
    public var sensitiveHex: String { withUnsafeBytes { Hex.encode(Array($0)) } }

    public var description: String { "<secret \(storageCount) bytes>" }
    public var debugDescription: String { description }

    public static func == (a: Secret, b: Secret) -> Bool {
        guard a.storageCount == b.storageCount else { return false }
        return a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in
            guard let x = pa.baseAddress, let y = pb.baseAddress else { return pa.count == pb.count }
            return kw_memcmp(x, y, pa.count) == 0
        } }
    }
}

public enum SecureRandom {
    /// OpenSSL's CSPRNG (seeded from getrandom): nonces, SPIs, IVs, cookies.
    public static func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let ok = out.withUnsafeMutableBytes { p in
            guard let b = p.baseAddress else { return true }
            return kw_random(b.assumingMemoryBound(to: UInt8.self), p.count) == 1
        }
        // A CSPRNG that cannot produce bytes leaves no safe way on; never fall back to weaker ones.
        precondition(ok, "RAND_bytes failed")
        return out
    }
}
