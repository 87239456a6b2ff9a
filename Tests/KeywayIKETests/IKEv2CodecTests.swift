@testable import KeywayIKE
import XCTest

/// The IKEv2 message codec (RFC 7296 section 3): every payload site-to-site use needs round-trips,
/// and malformed input is refused with a typed reason.
final class IKEv2CodecTests: XCTestCase {
    let everyPayload: [IKEv2Payload] = [
        .sa([IKEv2Proposal(number: 1, protocolID: 1, spi: [], transforms: [
                IKEv2Transform(type: 1, id: 12, keyLength: 256), IKEv2Transform(type: 2, id: 5),
                IKEv2Transform(type: 3, id: 12), IKEv2Transform(type: 4, id: 31)]),
             IKEv2Proposal(number: 2, protocolID: 3, spi: [1, 2, 3, 4], transforms: [
                IKEv2Transform(type: 1, id: 20, keyLength: 128), IKEv2Transform(type: 5, id: 0)])]),
        .keyExchange(group: 14, data: Array(repeating: 7, count: 256)),
        .identification(initiator: true, type: 1, data: [192, 0, 2, 1]),
        .identification(initiator: false, type: 2, data: Array("vpn.example".utf8)),
        .certificate(encoding: 4, data: Array(0..<100)),
        .certificateRequest(encoding: 4, data: Array(repeating: 1, count: 20)),
        .authentication(method: 2, data: Array(0..<32)),
        .nonce(Array(0..<32)),
        .notify(protocolID: 0, type: 16388, spi: [], data: Array(0..<20)),
        .notify(protocolID: 3, type: 16393, spi: [9, 8, 7, 6], data: []),
        .delete(protocolID: 3, spiSize: 4, spis: [[1, 2, 3, 4], [5, 6, 7, 8]]),
        .delete(protocolID: 1, spiSize: 0, spis: []),
        .vendorID(Array("keyway".utf8)),
        .trafficSelectors(initiator: true, [IKEv2TrafficSelector(ipProtocol: 0, startPort: 0, endPort: 65535,
                                                                 start: [10, 1, 0, 0], end: [10, 1, 0, 255])]),
        .trafficSelectors(initiator: false, [IKEv2TrafficSelector(ipProtocol: 6, startPort: 80, endPort: 80,
                                                                  start: [10, 2, 0, 0], end: [10, 2, 0, 255]),
                                             IKEv2TrafficSelector(type: 8, ipProtocol: 0, startPort: 0, endPort: 65535,
                                                                  start: Array(repeating: 0, count: 16),
                                                                  end: Array(repeating: 0xff, count: 16))]),
        .other(type: 47, critical: false, data: [1, 0, 0, 0]),
    ]

    func message(_ payloads: [IKEv2Payload], exchange: UInt8 = 34) -> [UInt8] {
        let (first, body) = IKEv2Codec.encode(payloads)
        let header = IKEv2Header(initiatorSPI: 0x0102030405060708, responderSPI: 0, nextPayload: first,
                                 exchange: exchange, flags: IKEv2Header.initiatorFlag, messageID: 0)
        return header.encoded(totalLength: IKEv2Header.size + body.count) + body
    }

    func testEveryPayloadRoundTrips() throws {
        let bytes = message(everyPayload)
        let decoded = try IKEv2Codec.decodeMessage(bytes)
        XCTAssertEqual(decoded.payloads.map(\.payload), everyPayload)
        XCTAssertNil(decoded.encrypted)
        XCTAssertEqual(decoded.header.initiatorSPI, 0x0102030405060708)
        XCTAssertEqual(decoded.header.exchange, 34)
        XCTAssertTrue(decoded.header.fromOriginalInitiator)
        XCTAssertFalse(decoded.header.isResponse)
        XCTAssertEqual(IKEv2Header.majorVersion(bytes), 2)
        // Bodies are kept exactly as received (AUTH signs the ID payload's body).
        XCTAssertEqual(decoded.payloads[2].body, [1, 0, 0, 0, 192, 0, 2, 1])
    }

    func testUnknownPayloadsAreSkippedUnlessCritical() throws {
        var bytes = message([.nonce(Array(0..<16)), .other(type: 200, critical: false, data: [1, 2])])
        XCTAssertEqual(try IKEv2Codec.decodeMessage(bytes).payloads.last?.payload,
                       .other(type: 200, critical: false, data: [1, 2]))
        // The critical bit is the top bit of the byte after the next-payload field.
        let second = IKEv2Header.size + 4 + 16
        bytes[second + 1] = 0x80
        XCTAssertThrowsError(try IKEv2Codec.decodeMessage(bytes)) {
            XCTAssertEqual($0 as? ISAKMPError, .unsupportedCriticalPayload(200))
        }
        // A known payload with the critical bit set is understood: the bit is ignored.
        bytes[second + 1] = 0
        bytes[IKEv2Header.size + 1] = 0x80
        XCTAssertNoThrow(try IKEv2Codec.decodeMessage(bytes))
    }

    func testMalformedMessagesAreRefusedWithAReason() {
        let good = message([.nonce(Array(0..<16)), .keyExchange(group: 19, data: Array(0..<64))])
        func refuses(_ bytes: [UInt8], _ expected: ISAKMPError, line: UInt = #line) {
            XCTAssertThrowsError(try IKEv2Codec.decodeMessage(bytes), line: line) {
                XCTAssertEqual($0 as? ISAKMPError, expected, line: line)
            }
        }
        var v1 = good; v1[17] = 0x10
        refuses(v1, .badIKEv2Version(0x10))
        refuses(Array(good.prefix(20)), .truncated(what: "header", needed: 4, available: 0))
        var long = good; long[27] = long[27] &+ 1
        refuses(long, .lengthMismatch(declared: good.count + 1, actual: good.count))
        var short = good; short[IKEv2Header.size + 3] = 3
        refuses(short, .badPayloadLength(type: 40, length: 3))
        var past = good; past[IKEv2Header.size + 2] = 0x7f
        refuses(past, .badPayloadLength(type: 40, length: 0x7f00 + 20))
        // Trailing bytes after the last payload are not ignored.
        var trailing = good + [0, 0]
        trailing[27] = UInt8(trailing.count)
        refuses(trailing, .trailingBytes(2))
        // An SK payload must be last: here a nonce follows one.
        let (first, body) = IKEv2Codec.encode([.other(type: 46, critical: false, data: Array(0..<40)),
                                               .nonce(Array(0..<16))])
        let header = IKEv2Header(initiatorSPI: 1, responderSPI: 2, nextPayload: first, exchange: 35, flags: 8,
                                 messageID: 1)
        refuses(header.encoded(totalLength: 28 + body.count) + body, .misplacedEncryptedPayload)
    }

    func testEncryptedPayloadsAreLocatedNotDecoded() throws {
        let header = IKEv2Header(initiatorSPI: 1, responderSPI: 2, nextPayload: 46, exchange: 35, flags: 8,
                                 messageID: 1)
        let sk: [UInt8] = [35, 0, 0, 44] + Array(0..<40)
        let decoded = try IKEv2Codec.decodeMessage(header.encoded(totalLength: 28 + sk.count) + sk)
        XCTAssertEqual(decoded.encrypted?.firstInner, 35)
        XCTAssertEqual(decoded.encrypted?.ivOffset, 32)
        XCTAssertNil(decoded.encrypted?.fragment)
        // RFC 7383: SKF carries fragment number and total, both bounded.
        var h = header; h.nextPayload = 53
        let skf: [UInt8] = [35, 0, 0, 48, 0, 1, 0, 3] + Array(0..<40)
        let fragment = try IKEv2Codec.decodeMessage(h.encoded(totalLength: 28 + skf.count) + skf)
        XCTAssertEqual(fragment.encrypted?.fragment?.number, 1); XCTAssertEqual(fragment.encrypted?.fragment?.total, 3)
        XCTAssertEqual(fragment.encrypted?.ivOffset, 36)
        for (number, total) in [(0, 3), (4, 3), (1, 33)] as [(UInt8, UInt8)] {
            var bad = skf; bad[5] = number; bad[7] = total
            XCTAssertThrowsError(try IKEv2Codec.decodeMessage(h.encoded(totalLength: 28 + bad.count) + bad))
        }
    }

    func testSelectorsAndDeletesAreCheckedForSize() {
        // A TS of type 7 must be 16 bytes long; a delete's SPI count must match its bytes.
        var ts = IKEv2Codec.encodeData(everyPayload[13])
        ts[7] = 20
        XCTAssertThrowsError(try IKEv2Codec.payload(44, critical: false, ts))
        var unknownType = IKEv2Codec.encodeData(everyPayload[13])
        unknownType[4] = 9
        XCTAssertThrowsError(try IKEv2Codec.payload(44, critical: false, unknownType))
        XCTAssertThrowsError(try IKEv2Codec.payload(42, critical: false, [3, 4, 0, 3, 1, 2, 3, 4]))
        XCTAssertThrowsError(try IKEv2Codec.payload(42, critical: false, [3, 0, 0, 1]))
        // Too many selectors for one payload.
        XCTAssertThrowsError(try IKEv2Codec.payload(44, critical: false, [200, 0, 0, 0]))
    }

    func testTransformsWithUnknownAttributesAreMarked() {
        XCTAssertTrue(IKEv2Transform(type: 1, id: 12, keyLength: 128).onlyKnownAttributes)
        XCTAssertFalse(IKEv2Transform(type: 1, id: 12, attributes: [Attribute(basic: 99, 1)]).onlyKnownAttributes)
        XCTAssertEqual(IKEv2Transform(type: 1, id: 12, keyLength: 192).keyLength, 192)
    }
}
