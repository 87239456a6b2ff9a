import KeywayCrypto
import KeywayIKE
import KeywayVocabulary

/// The IKEv2 engine under arbitrary input, two ways (the first byte chooses):
/// - datagrams: a long-lived responder takes arbitrary datagrams on ports 500 and 4500 from its
///   peers' addresses, with a clock moving across inputs (half-open state, cookies and token
///   buckets built by one input meet the next);
/// - schedules: two fresh engines negotiate (randomness seeded from the input), and the rest of the
///   input decides the fate of each datagram in flight: delivered, dropped, repeated, reordered,
///   corrupted, or the clock advanced (retransmissions, rekeys, liveness checks, deletes).
/// Nothing may crash, and whatever is installed must be a pair with SPIs of at least 256 and a
/// bounded lifetime.
let psk = Secret(Array("fuzz".utf8))
func peer(_ address: UInt32, prefix: Int = 32, generate: Bool = false) -> IKEPeer {
    var p = IKEPeer(address: address, prefixLength: prefix, secret: psk, exchangeMode: .ike2, natTraversal: true,
                    generatePolicy: generate, hash: .sha256, encryption: .aes128, group: .ecp256, lifetime: Seconds(60))
    p.groups = [.ecp256, .curve25519]
    p.dpdInterval = Seconds(10)
    p.dpdMaximumFailures = 2
    return p
}
func policy(_ local: UInt32, _ remote: UInt32, id: Int = 1) -> IKEPolicy {
    let (mine, theirs): (UInt32, UInt32) = local < remote ? (0x0a01_0000, 0x0a02_0000) : (0x0a02_0000, 0x0a01_0000)
    return IKEPolicy(id: id, source: mine, sourceLength: 24, destination: theirs, destinationLength: 24, saSource: local,
                     saDestination: remote, tunnel: true, authAlgorithms: [.sha1, .sha256], encAlgorithms: [.aes128, .aes128gcm],
                     lifetime: Seconds(30), pfsGroup: .ecp256)
}
let a: UInt32 = 0xc000_0201, b: UInt32 = 0xc000_0202, c: UInt32 = 0xc000_0203

nonisolated(unsafe) let responder: IKEService = {
    let s = IKEService(configuration: IKEConfiguration(peers: [peer(b), peer(0xc633_6400, prefix: 24, generate: true)],
                                                       policies: [policy(a, b)]))
    s.setOwnAddresses([IPv4Address(a)])
    return s
}()
nonisolated(unsafe) var clock: UInt64 = 0

func check(_ actions: [IKEAction]) {
    for case .install(let sas) in actions {
        guard sas.count == 2, sas.allSatisfy({ $0.spi >= 256 && $0.lifetime <= .maximumLifetime && $0.lifetime.value > 0 }),
              sas.filter(\.inbound).count == 1 else {
            fatalError("an install that is not one bounded pair")
        }
    }
}

final class Bytes {
    var data: [UInt8], at = 0
    init(_ d: [UInt8]) { data = d }
    func next() -> UInt8? { defer { at += 1 }; return at < data.count ? data[at] : nil }
}

func datagrams(_ bytes: [UInt8]) {
    clock = clock.saturatingAdd(bytes.count % 5 == 0 ? 30_000 : 700)
    let port: UInt16 = bytes.count % 2 == 0 ? 500 : 4500
    let from: UInt32 = bytes.count % 3 == 0 ? 0xc633_6405 : b
    let payload = port == 4500 ? [0, 0, 0, 0] + bytes : bytes
    check(responder.receive(payload, from: Endpoint(address: from, port: 500), localPort: port, localAddress: a, now: clock))
    check(responder.tick(now: clock))
}

func schedule(_ input: Bytes) {
    let seed = (0..<8).reduce(UInt64(0)) { r, _ in r << 8 | UInt64(input.next() ?? 0) }
    var state = seed
    func random(_ n: Int) -> [UInt8] {
        var out: [UInt8] = []
        while out.count < n {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            withUnsafeBytes(of: z ^ (z >> 31)) { out += $0 }
        }
        return Array(out.prefix(n))
    }
    let left = IKEService(configuration: IKEConfiguration(peers: [peer(b)], policies: [policy(a, b), policy(a, b, id: 2)]),
                          random: random)
    let right = IKEService(configuration: IKEConfiguration(peers: [peer(a)], policies: [policy(b, a), policy(b, a, id: 2)]),
                           random: random)
    var now: UInt64 = 1_000
    var flight: [(to: UInt32, from: UInt32, port: UInt16, bytes: [UInt8])] = []
    func take(_ origin: UInt32, _ actions: [IKEAction]) {
        check(actions)
        for case .send(let bytes, let port, let to, _) in actions where flight.count < 64 {
            flight.append((to.address, origin, port, bytes))
        }
    }
    take(a, left.acquire(policyID: 1, now: now))
    for _ in 0..<200 {
        guard let op = input.next() else { break }
        switch op % 8 {
        case 0, 1, 2:
            guard !flight.isEmpty else { continue }
            let d = flight.removeFirst()
            let target = d.to == a ? left : right
            take(d.to, target.receive(d.bytes, from: Endpoint(address: d.from, port: d.port), localPort: d.port,
                                      localAddress: d.to, now: now))
        case 3:
            if !flight.isEmpty { flight.removeFirst() }
        case 4:
            if let d = flight.first, flight.count < 64 { flight.append(d) }
        case 5:
            if flight.count > 1 { flight.swapAt(0, Int(input.next() ?? 0) % flight.count) }
        case 6:
            guard !flight.isEmpty, let at = input.next(), let bit = input.next() else { continue }
            var d = flight[0]
            if !d.bytes.isEmpty { d.bytes[Int(at) % d.bytes.count] ^= 1 << (bit % 8) }
            flight[0] = d
        default:
            now = now.saturatingAdd(UInt64(input.next() ?? 1) * 500)
            take(a, left.tick(now: now))
            take(b, right.tick(now: now))
            if op & 0x80 != 0 { take(a, left.acquire(policyID: 2, now: now)) }
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIKE2(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if bytes[0] & 1 == 0 {
        datagrams(Array(bytes.dropFirst()))
    } else {
        schedule(Bytes(Array(bytes.dropFirst())))
    }
    return 0
}
