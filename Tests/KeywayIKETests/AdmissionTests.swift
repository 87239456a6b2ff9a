import KeywayVocabulary
import KeywayCrypto
@testable import KeywayIKE
import XCTest

/// Spoofed first messages (carrying a real peer's source address, fresh cookies each) against the
/// responder's admission: bounded state, the oldest unverified give way, verified ones stay, and
/// unauthenticated Diffie-Hellman is paid from a token bucket on the injected clock.
final class AdmissionTests: XCTestCase {
    let a: UInt32 = 0xc000_0201, b: UInt32 = 0xc000_0202

    func engines(aggressive: Bool = false) -> (initiator: IKEEngine, responder: IKEEngine) {
        func config(local: UInt32, remote: UInt32) -> IKEConfiguration {
            let peer = IKEPeer(address: remote, secret: Secret(Array("admission".utf8)),
                               exchangeMode: aggressive ? .aggressive : .main,
                               hash: .sha1, encryption: .aes128, group: .modp1024)
            let (l, r): (UInt32, UInt32) = local == a ? (0x0a01_0000, 0x0a02_0000) : (0x0a02_0000, 0x0a01_0000)
            let policy = IKEPolicy(id: 1, source: l, sourceLength: 24, destination: r, destinationLength: 24,
                                   saSource: local, saDestination: remote, tunnel: true,
                                   authAlgorithms: [.sha1], encAlgorithms: [.aes128])
            return IKEConfiguration(peers: [peer], policies: [policy])
        }
        return (IKEEngine(configuration: config(local: a, remote: b)),
                IKEEngine(configuration: config(local: b, remote: a)))
    }

    static func sent(_ actions: [IKEAction]) -> [[UInt8]] {
        actions.compactMap { if case .send(let m, _, _, _) = $0 { return m } else { return nil } }
    }

    /// A first message like `template` with fresh initiator cookies (number `i`), optionally
    /// padded with a vendor ID to `size` bytes.
    static func spoofed(_ template: [UInt8], _ i: Int, size: Int? = nil) -> [UInt8] {
        var m = template
        for k in 0..<8 { m[k] = UInt8(truncatingIfNeeded: (i &* 2_654_435_761) >> (k * 4)) ^ UInt8(k) }
        m[6] = UInt8(truncatingIfNeeded: i >> 8); m[7] = UInt8(truncatingIfNeeded: i)
        if let size, size > m.count + 4 {
            // Append a vendor ID payload at the end of the chain.
            guard let header = try? ISAKMPHeader.parse(m),
                  let chain = try? ISAKMPCodec.decodeChain(first: header.nextPayload,
                                                           body: Array(m[ISAKMPHeader.size...]), allowPadding: false)
            else { return m }
            let payloads = chain.map(\.payload) + [.vendorID([UInt8](repeating: 0x5a, count: size - m.count - 4))]
            let (first, body) = ISAKMPCodec.encode(payloads)
            let h = ISAKMPHeader(initiatorCookie: Array(m[0..<8]), responderCookie: [UInt8](repeating: 0, count: 8),
                                 nextPayload: first, exchangeType: header.exchangeType, flags: 0, messageID: 0)
            m = h.encoded(bodyLength: body.count) + body
        }
        return m
    }

    func flood(_ responder: IKEEngine, _ template: [UInt8], count: Int, from start: Int, now: UInt64) {
        for i in start..<(start + count) {
            _ = responder.receive(Self.spoofed(template, i), from: Endpoint(address: a, port: 500), localPort: 500,
                                  localAddress: b, now: now)
        }
    }

    /// The real exchange, message by message, with a flood of spoofed first messages from the
    /// real initiator's address before every message the responder gets: more than the old cap
    /// (256) before message 1 and after it, then far more than the table holds once the peer has
    /// echoed our cookie.
    func testAFloodOfSpoofedFirstMessagesFromTheRealPeersAddressDoesNotKeepItOut() throws {
        let (initiator, responder) = engines()
        let first = try XCTUnwrap(Self.sent(initiator.acquire(policyID: 1, now: 1_000)).first)
        var serial = 0
        var toResponder = [first], installed: [UInt32: Int] = [:]
        var floods = [3 * UnverifiedResponders.capacity, UnverifiedResponders.capacity / 2,
                      5 * UnverifiedResponders.capacity]
        var rounds = 0
        while !toResponder.isEmpty, rounds < 20 {
            rounds += 1
            if !floods.isEmpty {
                let n = floods.removeFirst()
                flood(responder, first, count: n, from: serial, now: 1_000)
                serial += n
            }
            var toInitiator: [[UInt8]] = []
            for m in toResponder {
                for action in responder.receive(m, from: Endpoint(address: a, port: 500), localPort: 500,
                                                localAddress: b, now: 1_000) {
                    if case .send(let bytes, _, let to, _) = action, to.address == a { toInitiator.append(bytes) }
                    if case .install(let sas) = action { installed[b, default: 0] += sas.count }
                }
            }
            toResponder = []
            for m in toInitiator {
                let actions = initiator.receive(m, from: Endpoint(address: b, port: 500), localPort: 500,
                                                localAddress: a, now: 1_000)
                for action in actions {
                    if case .install(let sas) = action { installed[a, default: 0] += sas.count }
                }
                toResponder += Self.sent(actions)
            }
        }
        XCTAssertEqual(installed[a], 2, "the real initiator installed its pair")
        XCTAssertEqual(installed[b], 2, "the responder installed its pair")
        XCTAssertGreaterThan(serial, 10 * IKEEngine.maximumVerifiedHalfOpen)
        let load = responder.responderLoad
        XCTAssertLessThanOrEqual(load.unverified, UnverifiedResponders.capacity)
        XCTAssertEqual(load.verifiedHalfOpen, 0, "the real negotiation is established, not half-open")
        XCTAssertGreaterThan(load.evicted, 0)
    }

    /// The bound the design accepts: more first messages than the table holds between our
    /// message 2 and the peer's message 3 displace the peer (it then retransmits and starts anew).
    func testMoreSpoofedFirstMessagesThanTheTableHoldsWithinTheRoundTripDisplaceIt() throws {
        let (initiator, responder) = engines()
        let first = try XCTUnwrap(Self.sent(initiator.acquire(policyID: 1, now: 1_000)).first)
        let second = try XCTUnwrap(Self.sent(responder.receive(first, from: Endpoint(address: a, port: 500),
                                                               localPort: 500, now: 1_000)).first)
        flood(responder, first, count: UnverifiedResponders.capacity, from: 0, now: 1_000)
        let third = try XCTUnwrap(Self.sent(initiator.receive(second, from: Endpoint(address: b, port: 500),
                                                              localPort: 500, now: 1_000)).first)
        let answer = responder.receive(third, from: Endpoint(address: a, port: 500), localPort: 500, now: 1_000)
        XCTAssertTrue(Self.sent(answer).isEmpty, "the oldest unverified negotiation (the real one) gave way")
        XCTAssertTrue(answer.contains {
            if case .audit(let n) = $0 { return n.msgID == "ike-unknown" } else { return false }
        })
    }

    func testResponderStateStaysBoundedInEntriesAndBytes() throws {
        let (initiator, responder) = engines()
        let first = try XCTUnwrap(Self.sent(initiator.acquire(policyID: 1, now: 1_000)).first)
        // Large first messages (just under the limit) reach the byte budget before the entry bound.
        let big = IKEEngine.maximumFirstMessage - 8
        for i in 0..<6_000 {
            let m = Self.spoofed(first, i, size: i % 2 == 0 ? big : nil)
            _ = responder.receive(m, from: Endpoint(address: a, port: 500), localPort: 500,
                                  now: 1_000 + UInt64(i / 100))
            XCTAssertLessThanOrEqual(responder.unverified.count, UnverifiedResponders.capacity)
            XCTAssertLessThanOrEqual(responder.unverified.bytes, UnverifiedResponders.byteBudget)
        }
        XCTAssertLessThan(responder.unverified.count, UnverifiedResponders.capacity, "the byte budget bound first")
        XCTAssertLessThanOrEqual(responder.unverified.queueLength, 2 * responder.unverified.count + 64,
                                 "no stale queue growth")
        XCTAssertEqual(Int(responder.responderLoad.evicted) + responder.unverified.count, 6_000)
        XCTAssertTrue(responder.remotePeers(now: 2_000).isEmpty, "unverified negotiations are not printed as peers")
        // A first message over the limit gets no state at all.
        let before = responder.unverified.count
        let huge = Self.spoofed(first, 999_999, size: IKEEngine.maximumFirstMessage + 100)
        XCTAssertTrue(Self.sent(responder.receive(huge, from: Endpoint(address: a, port: 500), localPort: 500,
                                                  now: 2_000)).isEmpty)
        XCTAssertEqual(responder.unverified.count, before)
        // And they all go after the half-open timeout, whatever their number.
        _ = responder.tick(now: 2_000 + IKEEngine.halfOpenTimeout)
        XCTAssertEqual(responder.unverified.count, 0)
        XCTAssertEqual(responder.unverified.bytes, 0)
    }

    func testTheTokenBucketRefusesBeyondItsRateOnTheInjectedClock() {
        var bucket = TokenBucket(capacity: 3, perSecond: 2)
        XCTAssertEqual((0..<5).map { _ in bucket.take(now: 10_000) }, [true, true, true, false, false])
        XCTAssertFalse(bucket.take(now: 10_499), "half a second buys less than one token at 2/s... ")
        XCTAssertTrue(bucket.take(now: 10_500), "...until it is there")
        XCTAssertFalse(bucket.take(now: 10_500))
        XCTAssertFalse(bucket.take(now: 5_000), "a clock going backwards refills nothing")
        XCTAssertEqual((0..<5).map { _ in bucket.take(now: 100_000_000) }, [true, true, true, false, false],
                       "refills to capacity, no more")
        var huge = TokenBucket(capacity: .max, perSecond: .max)
        XCTAssertTrue(huge.take(now: 1)); XCTAssertTrue(huge.take(now: .max), "saturating arithmetic, no trap")
    }

    /// Aggressive mode's first message makes the responder compute DH for anyone: beyond the
    /// bucket's burst, at one instant, first messages get no answer and no state.
    func testAggressiveFirstMessagesBeyondTheDiffieHellmanBudgetAreRefused() throws {
        let (initiator, responder) = engines(aggressive: true)
        let first = try XCTUnwrap(Self.sent(initiator.acquire(policyID: 1, now: 1_000)).first)
        let burst = Int(IKEEngine.aggressiveDiffieHellmanRate.burst)
        var answered = 0, busy = 0
        for i in 0..<(burst + 10) {
            let actions = responder.receive(Self.spoofed(first, i), from: Endpoint(address: a, port: 500),
                                            localPort: 500, now: 1_000)
            answered += Self.sent(actions).count
            busy += actions.filter {
                if case .audit(let n) = $0 { return n.msgID == "ike-busy" } else { return false }
            }.count
        }
        XCTAssertEqual(answered, burst)
        XCTAssertEqual(busy, 10)
        XCTAssertEqual(responder.responderLoad.diffieHellmanRefused, 10)
        XCTAssertEqual(responder.unverified.count, burst, "refused first messages leave no state")
        // A second later the bucket has refilled at its rate.
        let later = responder.receive(Self.spoofed(first, 10_000), from: Endpoint(address: a, port: 500),
                                      localPort: 500, now: 2_000)
        XCTAssertEqual(Self.sent(later).count, 1)
    }

    /// Main mode message 3 (the responder's first DH) from many verified peers at one instant: the
    /// bucket pays for its burst; the rest wait (their negotiations stay, verified) and go through
    /// when their initiators retransmit after the bucket refilled.
    func testMainModeMessage3BeyondTheDiffieHellmanBudgetWaitsForItsRetransmission() throws {
        let peers = Int(IKEEngine.mainModeDiffieHellmanRate.burst) + 6
        // More peers than a /24 holds: 198.18.0.0/15.
        let responderPeer = IKEPeer(address: 0xc612_0000, prefixLength: 15, secret: Secret(Array("admission".utf8)),
                                    hash: .sha1, encryption: .aes128, group: .modp1024)
        let responder = IKEEngine(configuration: IKEConfiguration(peers: [responderPeer]))
        var thirds: [(UInt32, [UInt8])] = []
        for i in 0..<peers {
            let address = 0xc612_0010 + UInt32(i)
            let peer = IKEPeer(address: b, secret: Secret(Array("admission".utf8)), hash: .sha1, encryption: .aes128,
                               group: .modp1024)
            let policy = IKEPolicy(id: 1, source: address, sourceLength: 32, destination: b, destinationLength: 32,
                                   saSource: address, saDestination: b, tunnel: false)
            let initiator = IKEEngine(configuration: IKEConfiguration(peers: [peer], policies: [policy]))
            let first = try XCTUnwrap(Self.sent(initiator.acquire(policyID: 1, now: 1_000)).first)
            let second = try XCTUnwrap(Self.sent(responder.receive(first, from: Endpoint(address: address, port: 500),
                                                                   localPort: 500, now: 1_000)).first)
            let third = try XCTUnwrap(Self.sent(initiator.receive(second, from: Endpoint(address: b, port: 500),
                                                                  localPort: 500, now: 1_000)).first)
            thirds.append((address, third))
        }
        var answered = 0
        for (address, third) in thirds {
            answered += Self.sent(responder.receive(third, from: Endpoint(address: address, port: 500), localPort: 500,
                                                    now: 1_000)).count
        }
        XCTAssertEqual(answered, peers - 6)
        XCTAssertEqual(responder.responderLoad.diffieHellmanRefused, 6)
        XCTAssertEqual(responder.responderLoad.verifiedHalfOpen, peers, "refused ones stay, verified")
        // The retransmissions a second later are answered.
        var late = 0
        for (address, third) in thirds.suffix(6) {
            late += Self.sent(responder.receive(third, from: Endpoint(address: address, port: 500), localPort: 500,
                                                now: 2_000)).count
        }
        XCTAssertEqual(late, 6)
    }

    /// One address cannot hold more than its share of verified half-open negotiations.
    func testVerifiedHalfOpenNegotiationsAreBoundedPerAddress() throws {
        let (_, responder) = engines()
        let limit = IKEEngine.maximumVerifiedHalfOpenPerAddress
        var answered = 0
        for _ in 0..<(limit + 3) {
            let (initiator, _) = engines()
            let first = try XCTUnwrap(Self.sent(initiator.acquire(policyID: 1, now: 1_000)).first)
            let second = try XCTUnwrap(Self.sent(responder.receive(first, from: Endpoint(address: a, port: 500),
                                                                   localPort: 500, now: 1_000)).first)
            let third = try XCTUnwrap(Self.sent(initiator.receive(second, from: Endpoint(address: b, port: 500),
                                                                  localPort: 500, now: 1_000)).first)
            answered += Self.sent(responder.receive(third, from: Endpoint(address: a, port: 500), localPort: 500,
                                                    now: 1_000)).count
        }
        XCTAssertEqual(answered, limit)
        XCTAssertEqual(responder.responderLoad.verifiedHalfOpen, limit)
        XCTAssertEqual(responder.responderLoad.unverified, 3, "the refused ones wait, unverified")
        // The half-open timeout frees the slots.
        _ = responder.tick(now: 1_000 + IKEEngine.halfOpenTimeout)
        XCTAssertEqual(responder.responderLoad.verifiedHalfOpen, 0)
        XCTAssertEqual(responder.responderLoad.unverified, 0)
    }
}

extension AdmissionTests {
    /// Whatever a datagram causes is written under a handful of fixed keys: unknown cookies,
    /// malformed messages, first messages from unknown addresses, busy refusals, evictions.
    func testAuditLinesDatagramsCauseAreRateLimitedUnderFixedKeys() throws {
        let (initiator, responder) = engines()
        let first = try XCTUnwrap(Self.sent(initiator.acquire(policyID: 1, now: 1_000)).first)
        var notes: [IKEAudit] = []
        func feed(_ m: [UInt8], from address: UInt32, port: UInt16 = 500) {
            for action in responder.receive(m, from: Endpoint(address: address, port: port), localPort: port,
                                            now: 1_000) {
                if case .audit(let n) = action { notes.append(n) }
            }
        }
        for i in 0..<(2 * UnverifiedResponders.capacity) {
            let source = 0x0a00_0000 + UInt32(i)   // many addresses, none a configured peer
            feed(Self.spoofed(first, i), from: i % 3 == 0 ? source : a)
            var unknown = Self.spoofed(first, i); unknown[8] = 1   // a responder cookie nobody issued
            feed(unknown, from: source)
            feed(Array(Self.spoofed(first, i).prefix(20 + i % 40)), from: source)   // truncated
            var quick = Self.spoofed(first, i); quick[18] = 32; quick[19] = 1        // quick mode, no phase 1
            feed(quick, from: source, port: 4500)
        }
        XCTAssertGreaterThan(notes.count, 6 * UnverifiedResponders.capacity)
        XCTAssertTrue(notes.allSatisfy { $0.rateLimitKey != nil },
                      "\(notes.filter { $0.rateLimitKey == nil }.prefix(3))")
        let keys = Set(notes.compactMap(\.rateLimitKey))
        XCTAssertLessThanOrEqual(keys.count, 8, "\(keys)")
        XCTAssertTrue(keys.allSatisfy { !$0.contains("10.") && !$0.contains("192.0.2") }, "no key carries an address")
        XCTAssertTrue(keys.isSuperset(of: ["ike-unknown", "ike-malformed", "ike-busy", "ike-no-peer",
                                           "ike-start-responder"]), "\(keys)")
        // What only an authenticated peer causes is always written.
        let left = IKEEngine(configuration: initiator.configuration),
            right = IKEEngine(configuration: responder.configuration)
        var queue = left.acquire(policyID: 1, now: 1_000).map { (a, $0) }, established: [IKEAudit] = []
        while !queue.isEmpty {
            let (origin, action) = queue.removeFirst()
            if case .send(let m, _, let to, _) = action {
                queue += (to.address == a ? left : right).receive(m, from: Endpoint(address: origin, port: 500),
                                                                  localPort: 500, now: 1_000)
                    .map { (to.address, $0) }
            }
            if case .audit(let n) = action, n.msgID.hasSuffix("established") { established.append(n) }
        }
        XCTAssertEqual(established.count, 4, "phase 1 and phase 2 on both sides")
        XCTAssertTrue(established.allSatisfy { $0.rateLimitKey == nil })
    }
}

extension ExchangeTests {
    /// An authenticated peer that starts quick modes and never sends message 3 holds at most
    /// `maximumQuickModesPerPhase1` of them, each for at most the half-open timeout.
    func testUnfinishedQuickModesOfAPeerAreBoundedInNumberAndTime() throws {
        let many = IKEEngine.maximumQuickModesPerPhase1 + 5
        let policies = (0..<many).map { i in
            IKEPolicy(id: i + 1, source: 0x0a01_0000 + UInt32(i) << 8, sourceLength: 24, destination: 0x0a02_0000,
                      destinationLength: 24, saSource: a, saDestination: b, tunnel: true, encAlgorithms: [.aes128])
        }
        let mirrored = policies.map { p in
            IKEPolicy(id: p.id, source: p.destination, sourceLength: 24, destination: p.source, destinationLength: 24,
                      saSource: b, saDestination: a, tunnel: true, encAlgorithms: [.aes128])
        }
        let secret = Secret(Array("quick".utf8))
        let left = IKEEngine(configuration: IKEConfiguration(peers: [IKEPeer(address: b, secret: secret)],
                                                             policies: policies))
        let right = IKEEngine(configuration: IKEConfiguration(peers: [IKEPeer(address: a, secret: secret)],
                                                              policies: mirrored))
        // Phase 1 and the first policy normally.
        XCTAssertNotNil(run(left, right, start: left.acquire(policyID: 1, now: 1_000)).installed[b])
        // Then every other policy's quick mode 1 reaches the responder; its answers are lost.
        var busy = 0
        for p in policies.dropFirst() {
            for action in left.acquire(policyID: p.id, now: 2_000) {
                guard case .send(let m, _, _, _) = action else { continue }
                for r in right.receive(m, from: Endpoint(address: a, port: 500), localPort: 500, localAddress: b,
                                       now: 2_000) {
                    if case .audit(let n) = r, n.msgID == "ike-busy" { busy += 1 }
                }
            }
        }
        let sa = try XCTUnwrap(right.sas.values.first)
        XCTAssertEqual(sa.quick.count, IKEEngine.maximumQuickModesPerPhase1)
        XCTAssertEqual(busy, many - 1 - IKEEngine.maximumQuickModesPerPhase1)
        _ = right.tick(now: 2_000 + IKEEngine.halfOpenTimeout - 1)
        XCTAssertEqual(sa.quick.count, IKEEngine.maximumQuickModesPerPhase1)
        _ = right.tick(now: 2_000 + IKEEngine.halfOpenTimeout)
        XCTAssertEqual(sa.quick.count, 0, "unanswered quick modes are forgotten")
        XCTAssertEqual(right.phase2(policyID: 1), .established, "the finished one is untouched")
    }
}
