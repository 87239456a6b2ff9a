import KeywayCrypto
import KeywayDatapath
import KeywayVocabulary

/// The datapath's inbound path, as the network reaches it: raw IPv4 packets (ESP, AH, anything),
/// ESP in UDP, and ESP sealed with the right keys around arbitrary bytes, so that decryption, the
/// trailer, the inner header and the policy check all meet hostile input. It may drop anything,
/// but never crashes. The engine lives across inputs (replay windows, counters, lifetimes).
let key16 = Array(repeating: UInt8(0x42), count: 16), key20 = Array(repeating: UInt8(0x24), count: 20)
let us: UInt32 = 0xc000_0201, peer: UInt32 = 0xc000_0202

func transform(_ e: EncryptionAlgorithm, _ i: IntegrityAlgorithm, encrypt: Bool) -> ESPTransform? {
    try? ESPTransform(encryption: e, encryptionKey: Secret(e == .aes128gcm ? key20 : key16), integrity: i,
                      integrityKey: i == .null ? nil : Secret(key20), encrypt: encrypt)
}

/// Inbound SAs by SPI: 0x200 AES-CBC/SHA-1, 0x300 AES-GCM, 0x400 ESP in UDP, 0x100 AH.
nonisolated(unsafe) let engine: Datapath = {
    let policy = SecurityPolicy(id: 1, selector: TrafficSelector(source: IPv4Prefix(0x0a01_0000, length: 24),
                                                                 destination: IPv4Prefix(0x0a02_0000, length: 24)),
                                action: .encrypt, useESP: true, useAH: false, tunnel: true, saSource: us,
                                saDestination: peer)
    let d = Datapath(policies: [policy])
    for (spi, e, i, udp) in [(UInt32(0x200), EncryptionAlgorithm.aes128, IntegrityAlgorithm.sha1, false),
                             (0x300, .aes128gcm, .null, false), (0x400, .aes128, .sha1, true)] {
        guard let t = transform(e, i, encrypt: false) else { continue }
        d.installInbound(SecurityAssociation(spi: spi, proto: .esp, source: peer, destination: us, tunnel: true, esp: t,
                                             replayWindow: 64, udpEncapsulation: udp ? (4500, 4500) : nil, now: 0),
                         policyID: 1)
    }
    if let ah = try? AHTransform(integrity: .sha1, key: Secret(key20)) {
        d.installInbound(SecurityAssociation(spi: 0x100, proto: .ah, source: peer, destination: us, tunnel: true,
                                             ah: ah, now: 0), policyID: 1)
    }
    return d
}()
nonisolated(unsafe) let sealers: [UInt32: ESPTransform] = [0x200: transform(.aes128, .sha1, encrypt: true),
                                                            0x300: transform(.aes128gcm, .null, encrypt: true)]
    .compactMapValues { $0 }
nonisolated(unsafe) var sequence: UInt32 = 0
nonisolated(unsafe) var clock: UInt64 = 0

/// An outer IPv4 + ESP packet around `body` (which carries its own padding and trailer, as the
/// fuzzer chose them), sealed with the SA's keys so that the ICV verifies.
func sealed(_ body: [UInt8], spi: UInt32, seq: UInt32) -> [UInt8]? {
    guard let t = sealers[spi] else { return nil }
    var payload = body
    let alignment = max(t.alignment, 4)
    if payload.count % alignment != 0 { payload += [UInt8](repeating: 0, count: alignment - payload.count % alignment) }
    let espLength = 8 + t.ivLength + payload.count + t.icvLength
    let total = 20 + espLength
    guard total <= 65_535 else { return nil }
    var out = [UInt8](repeating: 0, count: total)
    IPv4Header.write(into: &out, at: 0, tos: 0, totalLength: total, identification: 1, flagsAndOffset: 0, ttl: 64,
                     proto: 50, source: peer, destination: us)
    out.replaceSubrange(20..<24, with: IPv4Address(spi).bytes)
    out.replaceSubrange(24..<28, with: IPv4Address(seq).bytes)
    out.replaceSubrange((28 + t.ivLength)..<(28 + t.ivLength + payload.count), with: payload)
    guard (try? t.seal(&out, offset: 20, length: espLength, sequence: UInt64(seq))) != nil else { return nil }
    return out
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDatapath(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 1 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let rest = Array(bytes.dropFirst())
    clock += 1
    // Sequence numbers mostly advance, sometimes jump or repeat: the replay window sees both.
    sequence = sequence &+ UInt32(bytes[0] >> 2 & 0x3f) &- 8
    switch bytes[0] & 3 {
    case 0: _ = engine.processInbound(rest, now: clock)
    case 1: _ = engine.processInboundUDP(rest[...], source: peer, now: clock)
    case 2: if let p = sealed(rest, spi: 0x200, seq: sequence) { _ = engine.processInbound(p, now: clock) }
    default: if let p = sealed(rest, spi: 0x300, seq: sequence) { _ = engine.processInbound(p, now: clock) }
    }
    if clock % 1000 == 0 { engine.tick(now: clock) }
    return 0
}
