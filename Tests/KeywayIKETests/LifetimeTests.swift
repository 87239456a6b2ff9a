import KeywayVocabulary
import KeywayCrypto
@testable import KeywayIKE
import XCTest

/// No lifetime a peer proposes can trap the engine or outlive `Seconds.maximumLifetime`.
extension ExchangeTests {
    func testTheLargestLifetimeProposedUnderObeyIsBoundedAndRekeyAndExpiryKeepToTheBound() throws {
        let huge = Seconds(UInt64.max)
        // Both sides configured with 2^64-1 for phase 1 (so each takes the other's), the initiator
        // proposing 2^64-1 for phase 2 too, the responder under proposal-check=obey.
        let left = IKEEngine(configuration: configuration(local: a, remote: b, peer: { $0.lifetime = huge },
                                                          policy: { $0.lifetime = huge }))
        let right = IKEEngine(configuration: configuration(local: b, remote: a,
                                                           peer: { $0.lifetime = huge; $0.proposalCheck = .obey }))
        let t0: UInt64 = 1_000
        let p = run(left, right, start: left.acquire(policyID: 1, now: t0), now: t0)
        let week = Seconds.maximumLifetime
        XCTAssertEqual(p.installed[b]?.map(\.lifetime), [week, week], "the responder installs the bounded lifetime")
        XCTAssertEqual(p.installed[a]?.map(\.lifetime), [week, week],
                       "and tells the initiator (RESPONDER-LIFETIME), which takes it")
        XCTAssertTrue(p.audits[b]?.contains {
            $0.msgID == "ike-phase2-established" && $0.fields.contains { $0.value == "604800s" }
        } ?? false)

        let soft = t0 + week.eightyPercent.milliseconds, hard = t0 + week.milliseconds
        func audits(_ actions: [IKEAction], _ id: String) -> Int {
            actions.filter { if case .audit(let n) = $0 { return n.msgID == id } else { return false } }.count
        }
        XCTAssertEqual(audits(left.tick(now: soft - 1), "ike-rekey"), 0, "no rekey before 80% of the bounded lifetime")
        let rekeyStart = left.tick(now: soft)
        XCTAssertEqual(audits(rekeyStart, "ike-rekey"), 1, "rekey at 80% of one week")
        let rekey = run(left, right, start: rekeyStart, now: soft)
        XCTAssertEqual(rekey.installed[a]?.count, 2, "the rekey keys a new pair over the still-live phase 1")
        XCTAssertEqual(rekey.installed[b]?.map(\.lifetime), [week, week])

        let beforeHard = left.tick(now: hard - 1) + right.tick(now: hard - 1)
        XCTAssertFalse(beforeHard.contains { if case .remove = $0 { return true } else { return false } })
        let atHard = left.tick(now: hard)
        XCTAssertEqual(audits(atHard, "ike-expired"), 1, "phase 1 ends at one week")
        let removed = atHard.compactMap {
            if case .remove(let list) = $0 { return list.map(\.spi) } else { return nil }
        }.flatMap { $0 }
        XCTAssertEqual(Set(removed), Set(p.installed[a]?.map(\.spi) ?? []),
                       "the first pair ends at one week, the rekeyed one lives on")
        XCTAssertEqual(audits(right.tick(now: hard), "ike-expired"), 1)
        // Clocks at the very end of time: saturating deadlines, no trap.
        _ = left.tick(now: .max); _ = right.tick(now: .max)
        XCTAssertEqual(left.phase2(policyID: 1), .noPhase2)
    }

    /// claim keeps our lifetime and says so; strict and exact compare against the configured one.
    func testRESPONDERLIFETIMEGoesOutOnlyWhenWeUseLessThanProposed() throws {
        for (check, proposed, ours, installed, notified) in [
            (IKEPeer.ProposalCheck.claim, UInt64(3_600), UInt64(1_800), UInt64(1_800), true),
            (.obey, 1_800, 3_600, 1_800, false),
            (.strict, 1_800, 3_600, 1_800, false),
            (.obey, UInt64.max - 1, 60, Seconds.maximumLifetime.value, true)
        ] {
            let left = IKEEngine(configuration: configuration(local: a, remote: b,
                                                              policy: { $0.lifetime = Seconds(proposed) }))
            let right = IKEEngine(configuration: configuration(local: b, remote: a, peer: { $0.proposalCheck = check },
                                                               policy: { $0.lifetime = Seconds(ours) }))
            var sawNotify = false
            var queue = left.acquire(policyID: 1, now: 1_000).map { (a, $0) }
            var installedHere: [NegotiatedSA] = []
            for _ in 0..<30 where !queue.isEmpty {
                let (origin, action) = queue.removeFirst()
                guard case .send(let m, _, let to, _) = action else {
                    if case .install(let sas) = action, origin == a { installedHere += sas }
                    continue
                }
                let target = to.address == a ? left : right
                if to.address == a, let h = try? ISAKMPHeader.parse(m), h.exchangeType == ExchangeType.quick.rawValue {
                    // Look inside the responder's quick mode answer for RESPONDER-LIFETIME.
                    if let sa = left.sas.values.first, let q = sa.quick[h.messageID],
                       let (body, _) = try? left.decrypt(sa, m, iv: q.iv),
                       let parsed = try? ISAKMPCodec.decodeChain(first: h.nextPayload, body: body, allowPadding: true) {
                        sawNotify = sawNotify || parsed.contains {
                            if case .notification(_, _, let t, _, _) = $0.payload {
                                return t == NotifyType.responderLifetime.rawValue
                            } else {
                                return false
                            }
                        }
                    }
                }
                queue += target.receive(m, from: Endpoint(address: origin, port: 500), localPort: 500, now: 1_000)
                    .map { (to.address, $0) }
            }
            XCTAssertEqual(installedHere.first?.lifetime.value, installed, "\(check) \(proposed)/\(ours)")
            XCTAssertEqual(sawNotify, notified, "\(check) \(proposed)/\(ours)")
        }
    }
}
