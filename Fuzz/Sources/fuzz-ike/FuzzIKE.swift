import KeywayCrypto
import KeywayIKE

/// The IKE engine as a responder (and a waiting initiator) fed arbitrary datagrams on both
/// ports, from a main mode peer and from an aggressive mode generate-policy peer: it may refuse
/// anything, but never crashes. The engine lives across inputs, so state built by one input
/// (half-open negotiations, evictions, token buckets) meets the next; now and then the clock
/// leaps far ahead, towards the end of time.
nonisolated(unsafe) let engine: IKEEngine = {
    let main = IKEPeer(address: 0xc000_0202, secret: Secret(Array("fuzz".utf8)), exchangeMode: .main,
                       natTraversal: true, hash: .sha1, encryption: .aes128, group: .modp1024)
    let aggressive = IKEPeer(address: 0xc000_0203, secret: Secret(Array("fuzz".utf8)), exchangeMode: .aggressive,
                             natTraversal: true, generatePolicy: true, proposalCheck: .obey,
                             hash: .sha1, encryption: .aes128, group: .modp1024)
    let policy = IKEPolicy(id: 1, source: 0x0a01_0000, sourceLength: 24, destination: 0x0a02_0000, destinationLength: 24,
                           saSource: 0xc000_0201, saDestination: 0xc000_0202, tunnel: true, authAlgorithms: [.sha1], encAlgorithms: [.aes128])
    let e = IKEEngine(configuration: IKEConfiguration(peers: [main, aggressive], policies: [policy]))
    e.setOwnAddresses([IPv4Address(0xc000_0201), IPv4Address(0x0a01_0001)])
    return e
}()
nonisolated(unsafe) var clock: UInt64 = 0

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIKE(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    clock = clock.saturatingAdd(size > 0 && bytes[size - 1] == 0xff && size % 7 == 0 ? UInt64.max / 4 : 1_000)
    let port: UInt16 = size % 2 == 0 ? 500 : 4500
    let source: UInt32 = size % 3 == 0 ? 0xc000_0203 : 0xc000_0202
    _ = engine.receive(bytes, from: Endpoint(address: source, port: port), localPort: port, localAddress: 0xc000_0201,
                       now: clock)
    if clock % 50_000 == 0 { _ = engine.acquire(policyID: 1, now: clock) }
    _ = engine.tick(now: clock)
    return 0
}
