import KeywayVocabulary
import KeywayCrypto
@testable import KeywayIKE
import KeywayWire
import XCTest

/// What the monitor's signing gate needs: each side announces its exchange once, before it asks
/// for any signature; every request names that exchange and carries exactly one PRF output.
extension ExchangeTests {
    struct SigningLog {
        var order: [UInt32: [String]] = [:]
        var announced: [UInt32: [(SigningExchange, String)]] = [:]
        var requests: [UInt32: [(exchange: SigningExchange, certificate: String, length: Int)]] = [:]
        var installed: [UInt32: Int] = [:]
        var firstCookie: [UInt8] = []
    }

    func signingRun(hash: HashAlgorithm) throws -> SigningLog {
        let signA = try rsa("a", "b"), signB = try rsa("b", "a")
        let left = IKEEngine(configuration: configuration(local: a, remote: b, secret: "",
                                                          peer: { signA(&$0); $0.hash = hash }))
        let right = IKEEngine(configuration: configuration(local: b, remote: a, secret: "",
                                                           peer: { signB(&$0); $0.hash = hash }))
        var log = SigningLog()
        var queue = left.acquire(policyID: 1, now: 1_000).map { (a, $0) }
        var steps = 0
        while !queue.isEmpty, steps < 200 {
            steps += 1
            let (origin, action) = queue.removeFirst()
            let engine = origin == a ? left : right
            switch action {
            case .send(let m, let port, let to, _):
                if log.firstCookie.isEmpty { log.firstCookie = Array(m.prefix(8)) }
                queue += (to.address == a ? left : right).receive(m, from: Endpoint(address: origin, port: port),
                                                                  localPort: to.port, localAddress: to.address,
                                                                  now: 1_000)
                    .map { (to.address, $0) }
            case .announceSigning(let exchange, let certificate):
                log.order[origin, default: []].append("announce")
                log.announced[origin, default: []].append((exchange, certificate))
            case .sign(let id, let name, let data, let exchange):
                log.order[origin, default: []].append("sign")
                log.requests[origin, default: []].append((exchange, name, data.count))
                let key = try RSAPrivateKey(pemOrDER: Array((name == "a" ? Credentials.keyA : Credentials.keyB).utf8))
                queue += engine.signed(id: id, signature: try key.sign(data), now: 1_000).map { (origin, $0) }
            case .install(let sas): log.installed[origin, default: 0] += sas.count
            default: break
            }
        }
        return log
    }

    func testSignaturesAreAnnouncedFirstOnceAndAskedOnlyForOnePRFOutput() throws {
        for hash in [HashAlgorithm.sha1, .sha256, .sha512] {
            let log = try signingRun(hash: hash)
            XCTAssertEqual(log.installed[a], 2, "\(hash): the exchange completed")
            XCTAssertEqual(log.installed[b], 2)
            for (side, peer, certificate) in [(a, b, "a"), (b, a, "b")] {
                XCTAssertEqual(log.order[side], ["announce", "sign"],
                               "\(hash) \(certificate): once, announcement first")
                let announced = try XCTUnwrap(log.announced[side]?.first)
                let request = try XCTUnwrap(log.requests[side]?.first)
                XCTAssertEqual(request.exchange, announced.0, "the request names the announced exchange")
                XCTAssertEqual(announced.1, certificate)
                XCTAssertEqual(request.certificate, certificate)
                XCTAssertEqual(announced.0, SigningExchange(initiatorCookie: log.firstCookie, peer: IPv4Address(peer),
                                                            prf: hash, initiator: side == a))
                XCTAssertEqual(request.length, hash.outputLength, "\(hash): the data to sign is one PRF output")
            }
        }
    }

    /// The responder announces only once message 3 carried its cookie (a spoofed first message
    /// announces nothing), before any signing; a pre-shared key exchange announces nothing.
    func testTheResponderAnnouncesOnMessageThreeAndPreSharedKeysNever() throws {
        let left = IKEEngine(configuration: configuration(local: a, remote: b, secret: "", peer: try rsa("a", "b")))
        let right = IKEEngine(configuration: configuration(local: b, remote: a, secret: "", peer: try rsa("b", "a")))
        let first = try XCTUnwrap(left.acquire(policyID: 1, now: 1_000).compactMap {
            if case .send(let m, _, _, _) = $0 { return m } else { return nil }
        }.first)
        let answer = right.receive(first, from: Endpoint(address: a, port: 500), localPort: 500, localAddress: b,
                                   now: 1_000)
        XCTAssertFalse(answer.contains { if case .announceSigning = $0 { return true } else { return false } },
                       "not on message 1")
        let second = try XCTUnwrap(answer.compactMap {
            if case .send(let m, _, _, _) = $0 { return m } else { return nil }
        }.first)
        let third = try XCTUnwrap(left.receive(second, from: Endpoint(address: b, port: 500), localPort: 500,
                                               localAddress: a, now: 1_001)
            .compactMap { if case .send(let m, _, _, _) = $0 { return m } else { return nil } }.first)
        let fourth = right.receive(third, from: Endpoint(address: a, port: 500), localPort: 500, localAddress: b,
                                   now: 1_002)
        let announcements = fourth.compactMap {
            if case .announceSigning(let e, _) = $0 { return e } else { return nil }
        }
        XCTAssertEqual(announcements, [SigningExchange(initiatorCookie: Array(first.prefix(8)), peer: IPv4Address(a),
                                                       prf: .sha1, initiator: false)])
        XCTAssertFalse(fourth.contains { if case .sign = $0 { return true } else { return false } })

        let l = IKEEngine(configuration: configuration(local: a, remote: b)),
            r = IKEEngine(configuration: configuration(local: b, remote: a))
        var queue = l.acquire(policyID: 1, now: 1_000).map { (a, $0) }, announced = 0, installed = 0
        while !queue.isEmpty {
            let (origin, action) = queue.removeFirst()
            if case .announceSigning = action { announced += 1 }
            if case .install = action { installed += 1 }
            if case .send(let m, _, let to, _) = action {
                queue += (to.address == a ? l : r).receive(m, from: Endpoint(address: origin, port: 500),
                                                           localPort: 500, now: 1_000)
                    .map { (to.address, $0) }
            }
        }
        XCTAssertEqual(installed, 2)
        XCTAssertEqual(announced, 0)
    }
}
