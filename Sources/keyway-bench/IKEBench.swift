import Foundation
import KeywayCrypto
import KeywayIKE
import KeywayVocabulary

/// What one main mode + quick mode (no PFS) needs of modp2048: on each side a key pair (private
/// value from the injected random source, public value) and one shared secret. The bound is the
/// setups per second those four operations alone would allow, measured here and now.
func diffieHellmanBound(group: DHGroup, window: Double) -> Double {
    var pairs = 0, derives = 0
    var pairTime = 0.0, deriveTime = 0.0
    do {
        let peer = try DiffieHellman(group: group).publicValue
        var start = now()
        repeat {
            let seed = Secret(SecureRandom.bytes(DiffieHellman.seedLength(group: group)))
            _ = try DiffieHellman(group: group, seed: seed)
            pairs += 1
        } while now() - start < window / 2
        pairTime = now() - start
        let mine = try DiffieHellman(group: group)
        start = now()
        repeat {
            _ = try mine.sharedSecret(with: peer)
            derives += 1
        } while now() - start < window / 2
        deriveTime = now() - start
    } catch {
        emit("# diffie-hellman error: \(error)")
        return 0
    }
    let perSetup = 2 * pairTime / Double(pairs) + 2 * deriveTime / Double(derives)
    return 1 / perSetup
}

struct IKEBenchError: Error, CustomStringConvertible { let description: String }

/// Setups per second: `setups` main modes (PSK, aes-128/sha1/modp2048) each with a quick mode
/// (ESP aes-128/sha1 tunnel, no PFS), one after another between two engines, every datagram
/// delivered in this process. Each setup has its own responder address (198.18.0.0/15), as a
/// multihomed responder sees them; the engines keep every SA, so later setups pay for the state
/// earlier ones left.
func ikeSetupRate(setups: Int) -> Result<Double, IKEBenchError> {
    let initiator: UInt32 = 0xc000_0201                 // 192.0.2.1
    func responder(_ i: Int) -> UInt32 { 0xc612_0000 + UInt32(i) + 1 }   // 198.18.0.1 ...
    func network(_ base: UInt32, _ i: Int) -> UInt32 { base | UInt32(i) << 8 }
    let secret = Secret(Array("keyway-bench-ike".utf8))
    var leftPeers: [IKEPeer] = [], leftPolicies: [IKEPolicy] = [], rightPolicies: [IKEPolicy] = []
    for i in 0..<setups {
        leftPeers.append(IKEPeer(address: responder(i), secret: secret, hash: .sha1, encryption: .aes128,
                                 group: .modp2048))
        leftPolicies.append(IKEPolicy(id: i + 1, source: network(0x0a00_0000, i), sourceLength: 24,
                                      destination: network(0x0b00_0000, i), destinationLength: 24,
                                      saSource: initiator, saDestination: responder(i), tunnel: true,
                                      authAlgorithms: [.sha1], encAlgorithms: [.aes128]))
        rightPolicies.append(IKEPolicy(id: i + 1, source: network(0x0b00_0000, i), sourceLength: 24,
                                       destination: network(0x0a00_0000, i), destinationLength: 24,
                                       saSource: responder(i), saDestination: initiator, tunnel: true,
                                       authAlgorithms: [.sha1], encAlgorithms: [.aes128]))
    }
    let left = IKEEngine(configuration: IKEConfiguration(peers: leftPeers, policies: leftPolicies))
    let right = IKEEngine(configuration: IKEConfiguration(
        peers: [IKEPeer(address: initiator, secret: secret, hash: .sha1, encryption: .aes128, group: .modp2048)],
        policies: rightPolicies))
    // The responder pays Diffie-Hellman for unauthenticated peers from a bucket (64/s): the
    // injected clock moves 50 ms per setup, as if they arrived at 20/s.
    var clock: UInt64 = 1_000
    var installed = 0
    let start = now()
    for i in 0..<setups {
        clock += 50
        var queue: [(UInt32, IKEAction)] = left.acquire(policyID: i + 1, now: clock).map { (initiator, $0) }
        var steps = 0
        while !queue.isEmpty {
            steps += 1
            guard steps < 64 else { return .failure(IKEBenchError(description: "setup \(i) did not settle")) }
            let (origin, action) = queue.removeFirst()
            switch action {
            case .send(let bytes, let port, let to, let source):
                let target = to.address == initiator ? left : right
                let from = Endpoint(address: source == 0 ? origin : source, port: port)
                queue += target.receive(bytes, from: from, localPort: to.port, localAddress: to.address, now: clock)
                    .map { (to.address, $0) }
            case .install(let sas): installed += sas.count
            default: break
            }
        }
    }
    let elapsed = now() - start
    guard installed == 4 * setups else {
        return .failure(IKEBenchError(description: "\(installed) SAs installed, expected \(4 * setups)"))
    }
    return .success(Double(setups) / elapsed)
}
