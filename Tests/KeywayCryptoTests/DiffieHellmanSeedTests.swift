import XCTest
@testable import KeywayCrypto

/// Key pairs from a caller's seed (how IKE draws DH keys from its own random source).
final class DiffieHellmanSeedTests: XCTestCase {
    func testEveryGroupBuildsFromASeedDeterministicallyAndAgrees() throws {
        for group in DHGroup.allCases {
            let n = DiffieHellman.seedLength(group: group)
            XCTAssertGreaterThan(n, 0, group.name)
            let seed = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ group.rawValue) }
            let one = try DiffieHellman(group: group, seed: Secret(seed)),
                again = try DiffieHellman(group: group, seed: Secret(seed))
            XCTAssertEqual(one.publicValue, again.publicValue, "\(group.name): the same seed, the same keys")
            var other = seed; other[n - 1] ^= 1
            XCTAssertNotEqual(try DiffieHellman(group: group, seed: Secret(other)).publicValue, one.publicValue,
                              group.name)
            let peer = try DiffieHellman(group: group)
            XCTAssertEqual(try one.sharedSecret(with: peer.publicValue), try peer.sharedSecret(with: one.publicValue),
                           group.name)
        }
    }

    /// Extreme seeds still give private values in range, and the mapping is the documented one:
    /// a zero seed is the exponent 2^(bits-1) for MODP and the private value 1 for EC groups.
    func testExtremeSeedsMapIntoRange() throws {
        for group in DHGroup.allCases {
            let n = DiffieHellman.seedLength(group: group)
            let zero = try DiffieHellman(group: group, seed: Secret([UInt8](repeating: 0, count: n)))
            let expected: [UInt8]
            if group.kind == .modp {
                // The private exponent lengths (twice each group's strength, at least 256 bits).
                let bits = [DHGroup.modp2048: 320, .modp3072: 420, .modp4096: 480, .modp6144: 540,
                            .modp8192: 620][group, default: 256]
                XCTAssertEqual(n, (bits + 7) / 8, group.name)
                var x = [UInt8](repeating: 0, count: (bits + 7) / 8)
                x[0] = 1 << UInt8((bits - 1) % 8)
                expected = try DiffieHellman(group: group, privateKey: Secret(x)).publicValue
            } else if group.kind == .montgomery {
                // X25519 takes the seed as its private value (the function clamps it).
                expected = try DiffieHellman(group: group,
                                             privateKey: Secret([UInt8](repeating: 0, count: n))).publicValue
            } else {
                expected = try DiffieHellman(group: group, privateKey: Secret([1])).publicValue
            }
            XCTAssertEqual(zero.publicValue, expected, group.name)
            let ones = try DiffieHellman(group: group, seed: Secret([UInt8](repeating: 0xff, count: n)))
            let peer = try DiffieHellman(group: group)
            XCTAssertEqual(try ones.sharedSecret(with: peer.publicValue), try peer.sharedSecret(with: ones.publicValue),
                           group.name)
        }
    }

    func testASeedOfTheWrongLengthIsRefused() {
        let n = DiffieHellman.seedLength(group: .modp2048)
        for length in [0, n - 1, n + 1] {
            XCTAssertThrowsError(try DiffieHellman(group: .modp2048,
                                                   seed: Secret([UInt8](repeating: 7, count: length)))) { error in
                guard case CryptoError.badLength = error else { return XCTFail("\(error)") }
            }
        }
    }
}
