import KeywayVocabulary
import Foundation
import KeywayCrypto
import KeywayDatapath
import KeywayIKE

// keyway-bench crypto [--seconds S] [--runs N]
// One line per figure: NAME SIZE KEYWAY_MB/s OPENSSL_MB/s RATIO DIRECTION (DH: ops/s instead of MB/s).
// The OpenSSL reference is `openssl speed` measured in the same run; for cipher+HMAC transforms it is
// the cipher and HMAC figures combined over the same bytes, 1/(1/a + 1/b).


let arguments = Array(CommandLine.arguments.dropFirst())
guard ["crypto", "datapath", "ike"].contains(arguments.first ?? "") else {
    FileHandle.standardError.write(Data("usage: keyway-bench crypto|datapath|ike [--seconds S] [--runs N]\n".utf8))
    exit(2)
}
@MainActor func option(_ name: String, _ fallback: Double) -> Double {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count, let v = Double(arguments[i + 1]) else {
        return fallback
    }
    return v
}
let window = option("--seconds", 0.25)
let runs = max(1, Int(option("--runs", 3)))

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Calls `body` in batches until `window` seconds pass; returns calls per second.
@MainActor func rate(_ body: () throws -> Void) rethrows -> Double {
    var count = 0
    let start = now()
    var elapsed = 0.0
    repeat {
        for _ in 0..<64 { try body() }
        count += 64
        elapsed = now() - start
    } while elapsed < window
    return Double(count) / elapsed
}

func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }

/// `openssl speed` figures, cached per argument list.
var speedCache: [String: Double] = [:]
@MainActor func opensslSpeed(_ args: [String]) -> Double? {
    let key = args.joined(separator: " ")
    if let v = speedCache[key] { return v }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    p.arguments = ["speed", "-seconds", "1"] + args
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { return nil }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard let last = String(data: data, encoding: .utf8)?.split(separator: "\n").last,
          let field = last.split(separator: " ").last else { return nil }
    var value: Double?
    if field.hasSuffix("k") { value = Double(field.dropLast()).map { $0 * 1000 / 1e6 } }   // 1000s of bytes/s -> MB/s
    else { value = Double(field) }                                                          // op/s
    speedCache[key] = value
    return value
}

/// Line-buffered output even into a pipe (emit() to a pipe is fully buffered).
func emit(_ line: String) { FileHandle.standardOutput.write((line + "\n").data(using: .utf8) ?? Data()) }

func fmt(_ v: Double?) -> String { v.map { String(format: "%.1f", $0) } ?? "-" }
func ratio(_ a: Double, _ b: Double?) -> String { b.map { String(format: "%.2f", a / $0) } ?? "-" }

struct Transform {
    let name: String
    let enc: EncryptionAlgorithm
    let integ: IntegrityAlgorithm
    let opensslCipher: String
    let opensslHMAC: String?
}

let transforms = [
    Transform(name: "aes-128-gcm", enc: .aes128gcm, integ: .null, opensslCipher: "aes-128-gcm", opensslHMAC: nil),
    Transform(name: "aes-256-gcm", enc: .aes256gcm, integ: .null, opensslCipher: "aes-256-gcm", opensslHMAC: nil),
    Transform(name: "aes-128/sha1", enc: .aes128, integ: .sha1, opensslCipher: "aes-128-cbc", opensslHMAC: "sha1"),
    Transform(name: "aes-256/sha1", enc: .aes256, integ: .sha1, opensslCipher: "aes-256-cbc", opensslHMAC: "sha1"),
    Transform(name: "aes-128/sha256", enc: .aes128, integ: .sha256, opensslCipher: "aes-128-cbc",
              opensslHMAC: "sha256"),
    Transform(name: "aes-128-ctr/sha1", enc: .aes128ctr, integ: .sha1, opensslCipher: "aes-128-ctr",
              opensslHMAC: "sha1"),
    Transform(name: "3des/sha1", enc: .tripleDES, integ: .sha1, opensslCipher: "des-ede3-cbc", opensslHMAC: "sha1"),
    Transform(name: "3des/md5", enc: .tripleDES, integ: .md5, opensslCipher: "des-ede3-cbc", opensslHMAC: "md5"),
    Transform(name: "des/md5", enc: .des, integ: .md5, opensslCipher: "des-cbc", opensslHMAC: "md5"),
]

if arguments.first == "crypto" {
emit("# keyway-bench crypto \(Date()) window=\(window)s runs=\(runs) (median)")
emit("# NAME SIZE KEYWAY_MB/s OPENSSL_MB/s RATIO DIRECTION")
for t in transforms {
    for size in [64, 512, 1400] {
        do {
            let ek = Secret.random(count: t.enc.keyMaterialLength)
            let ik = t.integ == .null ? nil : Secret.random(count: t.integ.keyLength)
            let sealer = try ESPTransform(encryption: t.enc, encryptionKey: ek, integrity: t.integ, integrityKey: ik,
                                          encrypt: true)
            let opener = try ESPTransform(encryption: t.enc, encryptionKey: ek, integrity: t.integ, integrityKey: ik,
                                          encrypt: false)
            // The payload rounded up to the cipher's alignment, as ESP padding does.
            let payload = (size + sealer.alignment - 1) / sealer.alignment * sealer.alignment
            var packet = [UInt8](repeating: 0x5a, count: payload + sealer.overhead)
            var seq: UInt64 = 0
            let sealRate = median(try (0..<runs).map { _ in
                try rate { seq &+= 1; try sealer.seal(&packet, offset: 0, length: packet.count, sequence: seq) }
            })
            let sealed = packet
            let openRate = median(try (0..<runs).map { _ in
                try rate {
                    packet.withUnsafeMutableBytes { dst in sealed.withUnsafeBytes { dst.copyMemory(from: $0) } }
                    _ = try opener.open(&packet, offset: 0, length: packet.count)
                }
            })
            var reference: Double?
            let providers = t.enc == .des ? ["-provider", "legacy", "-provider", "default"] : []
            if let c = opensslSpeed(providers + ["-evp", t.opensslCipher, "-bytes", String(size)]) {
                if let h = t.opensslHMAC {
                    reference = opensslSpeed(["-hmac", h, "-bytes", String(size)]).map { 1 / (1 / c + 1 / $0) }
                } else {
                    reference = c
                }
            }
            for (dir, r) in [("seal", sealRate), ("open", openRate)] {
                let mbps = r * Double(size) / 1e6
                emit("\(t.name) \(size) \(fmt(mbps)) \(fmt(reference)) \(ratio(mbps, reference)) \(dir)")
            }
        } catch {
            emit("\(t.name) \(size) - - - error: \(error)")
        }
    }
}

emit("# NAME - KEYWAY_OPS/s OPENSSL_OPS/s RATIO derive")
let dhReference: [DHGroup: String] = [.modp2048: "ffdh2048", .modp3072: "ffdh3072", .modp4096: "ffdh4096",
                                      .modp6144: "ffdh6144",
                                      .modp8192: "ffdh8192", .ecp256: "ecdhp256", .ecp384: "ecdhp384",
                                      .ecp521: "ecdhp521"]
for group in DHGroup.allCases {
    do {
        let a = try DiffieHellman(group: group), b = try DiffieHellman(group: group)
        let peer = b.publicValue
        let ops = median(try (0..<runs).map { _ in try rate { _ = try a.sharedSecret(with: peer) } })
        let reference = dhReference[group].flatMap { opensslSpeed([$0]) }
        emit("\(group.name)\(group.isWeak ? "(weak)" : "") - \(fmt(ops)) \(fmt(reference)) "
             + "\(ratio(ops, reference)) derive")
    } catch {
        emit("\(group.name) - - - - error: \(error)")
    }
}

}

/// `--spd-sizes 100000` measures only those sizes (for profiling one of them).
let spdSizes: [Int] = {
    guard let i = arguments.firstIndex(of: "--spd-sizes"), i + 1 < arguments.count else { return [10, 1000, 100_000] }
    return arguments[i + 1].split(separator: ",").compactMap { Int($0) }
}()

/// Probes per SPD measurement: random destinations, each inside one of the configured policies.
let spdProbeCount = Int(option("--spd-probes", 4096))

/// SPD lookups per second: the whole probe list, again and again, until `window` seconds pass.
nonisolated func spdRate(_ spd: SPD, _ probes: [(UInt32, UInt32)], window: Double) -> Double {
    var found = 0, count = 0
    let start = now()
    var elapsed = 0.0
    repeat {
        for p in probes where spd.lookup(source: p.0, destination: p.1, proto: 6, ports: nil) != nil { found &+= 1 }
        count += probes.count
        elapsed = now() - start
    } while elapsed < window
    if found != count { emit("# spd: \(count - found) probes found no policy") }
    return Double(count) / elapsed
}

/// The same with a linear scan in precedence order (what the SPD must agree with).
nonisolated func linearRate(_ spd: SPD, _ probes: [(UInt32, UInt32)], window: Double) -> Double {
    let policies = spd.policies
    var found = 0, count = 0
    let start = now()
    var elapsed = 0.0
    repeat {
        for p in probes where policies.first(where: {
            $0.selector.matches(source: p.0, destination: p.1, proto: 6, ports: nil)
        }) != nil { found &+= 1 }
        count += probes.count
        elapsed = now() - start
    } while elapsed < window
    return Double(count) / elapsed
}

if arguments.first == "datapath" {
    var rng = SystemRandomNumberGenerator()
    emit("# keyway-bench datapath \(Date()) window=\(window)s runs=\(runs) (median)")
    emit("# spd-lookup POLICIES LOOKUPS_PER_S (SPD.lookup over \(spdProbeCount) random packets, "
         + "each to a configured policy)")
    // Every size is measured once per round, the rounds one after another, so that the host's
    // slow swings in speed reach all sizes alike; the ratio is the median of each round's own.
    let tables: [(n: Int, spd: SPD, probes: [(UInt32, UInt32)])] = spdSizes.map { n in
        let policies = (0..<n).map { i in
            SecurityPolicy(id: i,
                           selector: TrafficSelector(source: IPv4Prefix(0x0a00_0000, length: 8),
                                                     destination: IPv4Prefix(UInt32(0xac00_0000) | UInt32(i) << 8,
                                                                             length: 24)),
                           action: .encrypt)
        }
        let probes = (0..<spdProbeCount).map { _ in
            (UInt32(0x0a00_0000) | UInt32.random(in: 0...0xffffff, using: &rng),
             UInt32(0xac00_0000) | UInt32.random(in: 0..<UInt32(max(n, 1)) << 8, using: &rng))
        }
        return (n, SPD(policies), probes)
    }
    var rounds: [[Int: Double]] = []
    for _ in 0..<runs {
        var round: [Int: Double] = [:]
        for t in tables { round[t.n] = spdRate(t.spd, t.probes, window: window) }
        rounds.append(round)
    }
    for t in tables {
        emit("spd-lookup \(t.n) \(fmt(median(rounds.compactMap { $0[t.n] })))")
        let linear = median((0..<runs).map { _ in linearRate(t.spd, Array(t.probes.prefix(256)), window: window) })
        emit("# spd-linear \(t.n) \(fmt(linear)) (a linear scan over the same policies, for comparison)")
    }
    let ratios = rounds.compactMap { r in r[100_000].flatMap { large in r[10].map { large / $0 } } }
    if !ratios.isEmpty {
        emit("# spd-lookup ratio 100000/10: \(String(format: "%.2f", median(ratios))) (median of "
             + "\(ratios.count) rounds: "
             + ratios.sorted().map { String(format: "%.2f", $0) }.joined(separator: " ") + ")")
    }
    if arguments.contains("--spd-only") { exit(0) }
    if arguments.contains("--pipeline-only") { pipelineBenchmarks(runs: runs); exit(0) }
    emit("# esp TRANSFORM SIZE SEAL_PPS OPEN_PPS SEAL_Gbit/s OPEN_Gbit/s (engine: SPD lookup + ESP tunnel + "
         + "inbound policy check)")
    for (name, enc, integ) in [("aes-128-gcm", EncryptionAlgorithm.aes128gcm, IntegrityAlgorithm.null),
                               ("aes-128/sha1", .aes128, .sha1), ("3des/sha1", .tripleDES, .sha1)] {
        for size in [64, 512, 1400] {
            let policy = SecurityPolicy(id: 1,
                                        selector: TrafficSelector(source: IPv4Prefix(0x0a01_0000, length: 24),
                                                                  destination: IPv4Prefix(0x0a02_0000, length: 24)),
                                        action: .encrypt, tunnel: true, saSource: 0xc000_0201,
                                        saDestination: 0xc000_0202)
            let mirror = SecurityPolicy(id: 1,
                                        selector: TrafficSelector(source: IPv4Prefix(0x0a02_0000, length: 24),
                                                                  destination: IPv4Prefix(0x0a01_0000, length: 24)),
                                        action: .encrypt, tunnel: true, saSource: 0xc000_0202,
                                        saDestination: 0xc000_0201)
            let tx = Datapath(policies: [policy]), rx = Datapath(policies: [mirror])
            let ek = Secret.random(count: enc.keyMaterialLength),
                ik = integ == .null ? nil : Secret.random(count: integ.keyLength)
            do {
                tx.installOutbound(SecurityAssociation(spi: 1, proto: .esp, source: 0xc000_0201,
                                                       destination: 0xc000_0202, tunnel: true,
                                                       esp: try ESPTransform(encryption: enc, encryptionKey: ek,
                                                                             integrity: integ, integrityKey: ik,
                                                                             encrypt: true),
                                                       replayWindow: 1024, now: 0), policyID: 1)
                rx.installInbound(SecurityAssociation(spi: 1, proto: .esp, source: 0xc000_0201,
                                                      destination: 0xc000_0202, tunnel: true,
                                                      esp: try ESPTransform(encryption: enc, encryptionKey: ek,
                                                                            integrity: integ, integrityKey: ik,
                                                                            encrypt: false),
                                                      replayWindow: 1024, now: 0), policyID: 1)
            } catch { emit("esp \(name) \(size) error \(error)"); continue }
            var packet = [UInt8](repeating: 0x5a, count: size)
            packet[0] = 0x45; packet[2] = UInt8(size >> 8); packet[3] = UInt8(size & 0xff); packet[8] = 64
            packet[9] = 17
            packet[12] = 10; packet[13] = 1; packet[14] = 0; packet[15] = 5; packet[16] = 10; packet[17] = 2
            packet[18] = 0; packet[19] = 7
            // Seal a batch, then open exactly that batch: each figure is a whole pass over it.
            let batch = 20_000
            var seals: [Double] = [], opens: [Double] = []
            for _ in 0..<runs {
                var sealed: [[UInt8]] = []
                sealed.reserveCapacity(batch)
                let t0 = now()
                for _ in 0..<batch { if case .send(let o, _) = tx.processOutbound(packet, now: 0) { sealed.append(o) } }
                let t1 = now()
                var delivered = 0
                for o in sealed { if case .deliver = rx.processInbound(o, now: 0) { delivered += 1 } }
                let t2 = now()
                guard delivered == batch else {
                    emit("esp \(name) \(size) error: \(delivered) of \(batch) delivered"); break
                }
                seals.append(Double(batch) / (t1 - t0))
                opens.append(Double(batch) / (t2 - t1))
            }
            guard !seals.isEmpty, !opens.isEmpty else { continue }
            let seal = median(seals), open = median(opens)
            emit("esp \(name) \(size) \(fmt(seal)) \(fmt(open)) "
                 + "\(String(format: "%.2f", seal * Double(size) * 8 / 1e9)) "
                 + "\(String(format: "%.2f", open * Double(size) * 8 / 1e9))")
        }
    }
    pipelineBenchmarks(runs: runs)
}

if arguments.first == "ike" {
    let setups = max(1, Int(option("--setups", 500)))
    emit("# keyway-bench ike \(Date()) setups=\(setups) runs=\(runs) (median)")
    emit("# two IKEv1 engines back to back in this process: main mode PSK aes-128/sha1/modp2048, quick mode")
    emit("# without PFS; one initiator with SETUPS peers, one responder answering for all of their addresses")
    emit("# ike-setups SETUPS_PER_S DH_BOUND_PER_S RATIO")
    var ratios: [(Double, Double)] = []
    for _ in 0..<runs {
        let bound = diffieHellmanBound(group: .modp2048, window: window)
        switch ikeSetupRate(setups: setups) {
        case .success(let rate): ratios.append((rate, bound))
        case .failure(let error): emit("# ike-setups error: \(error)"); exit(1)
        }
    }
    let rate = median(ratios.map(\.0)), bound = median(ratios.map(\.1))
    emit("ike-setups \(fmt(rate)) \(fmt(bound)) \(String(format: "%.2f", rate / bound))")
}
