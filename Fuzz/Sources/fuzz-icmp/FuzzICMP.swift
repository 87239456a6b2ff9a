import KeywayCrypto
import KeywayDatapath
import KeywayVocabulary

/// Path MTU discovery and what follows from it, as hostile bytes reach it: ICMP from anyone
/// (the raw ICMP socket), arbitrary quotes inside well-formed fragmentation-needed messages (some
/// naming our real SPI, so that the sequence, DF and length checks meet them), and packets from
/// the TUN device of any shape over a small path (MSS clamping, fragmentation, splitting, the
/// replies to senders). Nothing may crash; no path may fall below the floor.
let key16 = Array(repeating: UInt8(0x42), count: 16), key20 = Array(repeating: UInt8(0x24), count: 20)
let us: UInt32 = 0xc000_0201, peer: UInt32 = 0xc633_6402

func sa(_ spi: UInt32, encrypt: Bool, udp: Bool) -> SecurityAssociation? {
    guard let t = try? ESPTransform(encryption: .aes128, encryptionKey: Secret(key16), integrity: .sha1,
                                    integrityKey: Secret(key20), encrypt: encrypt) else { return nil }
    return SecurityAssociation(spi: spi, proto: .esp, source: encrypt ? us : peer, destination: encrypt ? peer : us,
                               tunnel: true, esp: t, replayWindow: 1024, udpEncapsulation: udp ? (4500, 4500) : nil, now: 0)
}

func engine(_ df: DontFragment, source: UInt32, destination: UInt32, outSPI: UInt32, inSPI: UInt32) -> Datapath {
    let ours = source == us
    let policy = SecurityPolicy(id: 1, selector: TrafficSelector(source: IPv4Prefix(ours ? 0x0a01_0000 : 0x0a02_0000, length: 16),
                                                                 destination: IPv4Prefix(ours ? 0x0a02_0000 : 0x0a01_0000,
                                                                                         length: 16)),
                                action: .encrypt, useESP: true, tunnel: true, saSource: source, saDestination: destination,
                                dontFragment: df)
    let d = Datapath(policies: [policy])
    if let o = sa(outSPI, encrypt: true, udp: false) {
        // The outbound SA must start where the policy says; these keys are the fuzz target's own.
        let out = SecurityAssociation(spi: outSPI, proto: .esp, source: source, destination: destination, tunnel: true,
                                      esp: o.esp, now: 0)
        d.installOutbound(out, policyID: 1)
    }
    if let i = sa(inSPI, encrypt: false, udp: false) {
        let inbound = SecurityAssociation(spi: inSPI, proto: .esp, source: destination, destination: source, tunnel: true,
                                          esp: i.esp, replayWindow: 1024, now: 0)
        d.installInbound(inbound, policyID: 1)
    }
    d.setLocalPaths(defaultMTU: 1500, paths: [(.v4(IPv4Address(destination)), 1280)])
    return d
}

nonisolated(unsafe) let engines: [Datapath] = [DontFragment.clear, .inherit, .set].map {
    engine($0, source: us, destination: peer, outSPI: 0x300, inSPI: 0x400)
}
/// The peer seals what we then open (inbound SYNs are clamped there).
nonisolated(unsafe) let far = engine(.clear, source: peer, destination: us, outSPI: 0x400, inSPI: 0x300)
nonisolated(unsafe) var clock: UInt64 = 0

func checksum(_ b: [UInt8], _ from: Int, _ count: Int) -> UInt16 { ~InternetChecksum.sum(b, start: from, count: count) }

/// A valid ICMP fragmentation-needed from a router around `quote`.
func report(_ quote: [UInt8], mtu: UInt16) -> [UInt8] {
    let total = min(65_535, 28 + quote.count)
    var p = [UInt8](repeating: 0, count: total)
    IPv4Header.write(into: &p, at: 0, tos: 0, totalLength: total, identification: 1, flagsAndOffset: 0, ttl: 64, proto: 1,
                     source: 0xc000_02fe, destination: us)
    p[20] = 3; p[21] = 4
    IPv4Header.put16(&p, 26, mtu)
    for (i, b) in quote.prefix(total - 28).enumerated() { p[28 + i] = b }
    IPv4Header.put16(&p, 22, checksum(p, 20, total - 20))
    return p
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzICMP(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 3 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let rest = Array(bytes.dropFirst(3))
    let dp = engines[Int(bytes[1]) % engines.count]
    clock += UInt64(bytes[2] & 0x0f)
    switch bytes[0] & 3 {
    case 0:
        _ = dp.processICMP(rest, start: 0, length: rest.count, now: clock)
    case 1:
        // A quote that starts like our own outer packet, so the SA, sequence, DF and length checks run.
        var quote = rest
        if quote.count >= 28 {
            quote[0] = 0x45; quote[9] = 50
            IPv4Header.put32(&quote, 12, us); IPv4Header.put32(&quote, 16, peer)
            if bytes[2] & 0x10 != 0 { IPv4Header.put32(&quote, 20, 0x300) }
        }
        _ = dp.processICMP(report(quote, mtu: UInt16(bytes[2]) << 4), start: 0, length: min(65_535, 28 + quote.count),
                           now: clock)
    case 2:
        // From the TUN device, over a 1280-byte path: sealed, fragmented, split, refused or clamped.
        _ = dp.processOutbound(rest, now: clock)
    default:
        // Sealed by the peer and opened here: an inbound SYN meets the clamp.
        if case .send(let outer, _) = far.processOutbound(rest, now: clock) { _ = dp.processInbound(outer, now: clock) }
    }
    for e in engines where e.paths.mtu(toward: .v4(IPv4Address(peer)), now: clock) < 576 {
        fatalError("a path below the floor")
    }
    if clock % 512 == 0 { for e in engines { e.agePaths(now: clock) } }
    return 0
}
