import KeywayCrypto
import KeywayMonitor
import KeywayVocabulary
import KeywayWire
@testable import KeywayIKE
import XCTest

/// Two keyway-ike services (IKEv1 and IKEv2 engines behind the router the process uses), wired
/// back to back with an injected clock; the monitor's part (signing) played as the monitor does.
final class IKEv2Net {
    static let a: UInt32 = 0xc000_0201, b: UInt32 = 0xc000_0202  // 192.0.2.1, 192.0.2.2
    let left: IKEService, right: IKEService
    var now: UInt64 = 1_000
    var installed: [UInt32: [[NegotiatedSA]]] = [:]
    var removed: [UInt32: [(spi: UInt32, proto: UInt8, destination: UInt32)]] = [:]
    var audits: [UInt32: [IKEAudit]] = [:]
    var sent: [(from: UInt32, bytes: [UInt8], port: UInt16)] = []
    var announced: [UInt32: [SigningExchange]] = [:]
    var signRequests: [UInt32: [IKEv2SignRequest]] = [:]
    /// Datagrams in flight, in order; tests may drop, duplicate or reorder them.
    var queue: [(origin: UInt32, action: IKEAction)] = []
    /// Drop datagrams for which this returns true (e.g. a dead peer).
    var drop: ((UInt32, [UInt8]) -> Bool)?
    /// Keys the "monitor" signs with, by certificate name.
    var keys: [String: String] = ["a": Credentials.keyA, "b": Credentials.keyB, "ec": Credentials.keyEC]
    /// Each side's monitor gate, fed with its configuration's signature peers.
    var gates: [UInt32: SignGate] = [:]
    var refusedByGate: [UInt32: [String]] = [:]

    init(left: IKEConfiguration, right: IKEConfiguration, seed: UInt64? = nil) {
        if let seed {
            let l = SeededRandom(seed), r = SeededRandom(seed &+ 1)
            self.left = IKEService(configuration: left, random: { l.bytes($0) })
            self.right = IKEService(configuration: right, random: { r.bytes($0) })
        } else {
            self.left = IKEService(configuration: left)
            self.right = IKEService(configuration: right)
        }
    }

    func service(_ address: UInt32) -> IKEService { address == Self.a ? left : right }

    func add(_ origin: UInt32, _ actions: [IKEAction]) { queue += actions.map { (origin, $0) } }

    /// Delivers everything in flight (and what it causes) until quiet, at most `steps` deliveries.
    func run(steps: Int = 200) {
        var n = 0
        while !queue.isEmpty, n < steps {
            n += 1
            let (origin, action) = queue.removeFirst()
            handle(origin, action)
        }
    }

    func handle(_ origin: UInt32, _ action: IKEAction) {
        switch action {
        case .send(let bytes, let port, let to, _):
            sent.append((origin, bytes, port))
            if drop?(origin, bytes) == true { return }
            let target = service(to.address)
            add(to.address, target.receive(bytes, from: Endpoint(address: origin, port: port), localPort: to.port,
                                           localAddress: to.address, now: now))
        case .install(let sas): installed[origin, default: []].append(sas)
        case .remove(let list): removed[origin, default: []] += list
        case .audit(let note): audits[origin, default: []].append(note)
        case .announceSigning(let exchange, let certificate):
            announced[origin, default: []].append(exchange)
            var gate = gates[origin] ?? SignGate()
            do {
                try gate.announce(SignAnnounce(exchange: exchange, certificate: certificate), signers: signers(origin),
                                  now: now)
            } catch {
                refusedByGate[origin, default: []].append(error.reason)
            }
            gates[origin] = gate
        case .sign: break
        case .signIKEv2(let r):
            signRequests[origin, default: []].append(r)
            let (scheme, signature) = sign(r, origin)
            add(origin, service(origin).signedIKEv2(id: r.id, scheme: scheme, signature: signature, now: now))
        }
    }

    /// What the monitor would derive from each side's configuration.
    func signers(_ origin: UInt32) -> [SignGate.Signer] {
        service(origin).configuration.peers.compactMap { p in
            p.signature.map { SignGate.Signer(address: IPv4Prefix(p.address, length: p.prefixLength),
                                              certificate: $0.certificateName,
                                              ikeVersion: p.exchangeMode == .ike2 ? 2 : 1) }
        }
    }

    /// The monitor's part, as keyway-monitor does it: the gate joins the octets from the checked
    /// parts, the scheme comes from the key, the method and the peer's hashes.
    func sign(_ r: IKEv2SignRequest, _ origin: UInt32) -> (SignatureScheme?, [UInt8]) {
        var gate = gates[origin] ?? SignGate()
        defer { gates[origin] = gate }
        let octets: [UInt8]
        do { octets = try gate.authorize(r, now: now) } catch {
            refusedByGate[origin, default: []].append(error.reason)
            return (nil, [])
        }
        guard let pem = keys[r.certificate], let key = try? PrivateKey(pemOrDER: Array(pem.utf8)),
              let scheme = SignGate.scheme(method: r.method, key: key.kind, peerHashes: r.peerHashes),
              let sig = try? key.sign(octets, scheme: scheme) else { return (nil, []) }
        return (scheme, sig)
    }

    /// Advances the clock in steps, ticking both sides and delivering what they send.
    func advance(to t: UInt64, step: UInt64 = 500) {
        while now < t {
            now = min(t, now + step)
            add(Self.a, left.tick(now: now))
            add(Self.b, right.tick(now: now))
            run()
        }
    }

    func audit(_ side: UInt32, _ msgID: String) -> [IKEAudit] { (audits[side] ?? []).filter { $0.msgID == msgID } }

    /// The last pair each side installed, as (ours outbound, theirs inbound) for comparison.
    var lastPairs: (left: [NegotiatedSA], right: [NegotiatedSA])? {
        guard let l = installed[Self.a]?.last, let r = installed[Self.b]?.last else { return nil }
        return (l, r)
    }
}

enum V2 {
    static let a = IKEv2Net.a, b = IKEv2Net.b
    static let netA: UInt32 = 0x0a01_0000, netB: UInt32 = 0x0a02_0000

    /// One side's configuration: an ike2 peer for the other and a tunnel policy between the /24s.
    static func config(local: UInt32, secret: String = "ikev2-test", peer: (inout IKEPeer) -> Void = { _ in },
                       policy: (inout IKEPolicy) -> Void = { _ in }, more: [IKEPolicy] = []) -> IKEConfiguration {
        let remote = local == a ? b : a
        var p = IKEPeer(address: remote, secret: Secret(Array(secret.utf8)), exchangeMode: .ike2, hash: .sha256,
                        encryption: .aes128, group: .modp2048)
        peer(&p)
        let (mine, theirs) = local == a ? (netA, netB) : (netB, netA)
        var pol = IKEPolicy(id: 1, source: mine, sourceLength: 24, destination: theirs, destinationLength: 24,
                            saSource: local, saDestination: remote, tunnel: true, authAlgorithms: [.sha1],
                            encAlgorithms: [.aes128], pfsGroup: nil)
        policy(&pol)
        return IKEConfiguration(peers: [p], policies: [pol] + more)
    }
}
