import KeywayCrypto
import KeywayIKE

/// The IKE engine as a responder (and a waiting initiator) fed arbitrary datagrams on both
/// ports: it may refuse anything, but never crashes. The engine lives across inputs, so state
/// built by one input meets the next.
nonisolated(unsafe) let engine: IKEEngine = {
    let peer = IKEPeer(address: 0xc000_0202, secret: Secret(Array("fuzz".utf8)), exchangeMode: .main, natTraversal: true,
                       hash: .sha1, encryption: .aes128, group: .modp1024)
    let policy = IKEPolicy(id: 1, source: 0x0a01_0000, sourceLength: 24, destination: 0x0a02_0000, destinationLength: 24,
                           saSource: 0xc000_0201, saDestination: 0xc000_0202, tunnel: true, authAlgorithms: [.sha1], encAlgorithms: [.aes128])
    return IKEEngine(configuration: IKEConfiguration(peers: [peer], policies: [policy]))
}()
nonisolated(unsafe) var clock: UInt64 = 0

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIKE(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    clock += 1_000
    let port: UInt16 = size % 2 == 0 ? 500 : 4500
    _ = engine.receive(bytes, from: Endpoint(address: 0xc000_0202, port: port), localPort: port, now: clock)
    if clock % 50_000 == 0 { _ = engine.acquire(policyID: 1, now: clock) }
    _ = engine.tick(now: clock)
    return 0
}
