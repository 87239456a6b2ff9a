@testable import KeywayIKE
import XCTest

final class ISAKMPCodecTests: XCTestCase {
    /// What strongSwan 5.9 sends as main mode message 1 (strongswan-peer.md): one SA proposal,
    /// one transform (AES-CBC 128, SHA, group 2, PSK, lifetime), and vendor IDs.
    let mainMode1: [Payload] = [
        .sa(doi: 1, situation: 1, proposals: [Proposal(number: 1, protocolID: 1, spi: [], transforms: [
            Transform(number: 1, id: 1, attributes: [
                Attribute(basic: 1, 7), Attribute(basic: 14, 128), Attribute(basic: 2, 2), Attribute(basic: 4, 2),
                Attribute(basic: 3, 1), Attribute(basic: 11, 1), Attribute(variable: 12, [0, 0, 0x0e, 0x10]),
            ]),
        ])]),
        .vendorID(Array(repeating: 0x4a, count: 16)),
        .vendorID([0xaf, 0xca, 0xd7, 0x13, 0x68, 0xa1, 0xf1, 0xc9, 0x6b, 0x86, 0x96, 0xfc, 0x77, 0x57, 0x01, 0x00]),
    ]

    func message(_ payloads: [Payload], flags: UInt8 = 0) -> [UInt8] {
        let (first, body) = ISAKMPCodec.encode(payloads)
        let header = ISAKMPHeader(initiatorCookie: [1, 2, 3, 4, 5, 6, 7, 8],
                                  responderCookie: [UInt8](repeating: 0, count: 8),
                                  nextPayload: first, exchangeType: 2, flags: flags, messageID: 0)
        return header.encoded(bodyLength: body.count) + body
    }

    func testRoundTripOfEveryPayloadKind() throws {
        let all: [Payload] = mainMode1 + [
            .keyExchange([UInt8](repeating: 7, count: 128)), .nonce([UInt8](repeating: 9, count: 32)),
            .identification(type: 1, protocolID: 17, port: 500, data: [192, 0, 2, 1]),
            .certificate(encoding: 4, data: [0x30, 0x82]), .certificateRequest(type: 4, authority: []),
            .hash([UInt8](repeating: 1, count: 20)), .signature([UInt8](repeating: 2, count: 256)),
            .notification(doi: 1, protocolID: 1, type: 24578, spi: [UInt8](repeating: 3, count: 16), data: []),
            .delete(doi: 1, protocolID: 3, spiSize: 4, spis: [[0, 0, 1, 0], [0, 0, 2, 0]]),
            .natDiscovery([UInt8](repeating: 5, count: 20)), .natOriginalAddress(type: 1, address: [10, 0, 0, 1]),
        ]
        let bytes = message(all)
        let header = try ISAKMPHeader.parse(bytes)
        XCTAssertEqual(header.exchangeType, 2)
        XCTAssertEqual(header.nextPayload, 1)
        let decoded = try ISAKMPCodec.decode(first: header.nextPayload, body: Array(bytes[ISAKMPHeader.size...]),
                                             allowPadding: false)
        XCTAssertEqual(decoded, all)
        XCTAssertEqual(message(decoded), bytes, "encoding is canonical")
    }

    func testDraftNATTPayloadNumbersReadAsTheRFCOnes() throws {
        let body: [UInt8] = [0, 0, 0, 8, 1, 2, 3, 4]
        XCTAssertEqual(try ISAKMPCodec.decode(first: 130, body: body, allowPadding: false),
                       [.natDiscovery([1, 2, 3, 4])])
    }

    func testPaddingAfterTheLastPayloadOnlyWhenDecrypted() throws {
        let (first, body) = ISAKMPCodec.encode([.hash([1, 2, 3])])
        XCTAssertEqual(try ISAKMPCodec.decode(first: first, body: body + [0, 0, 0, 0], allowPadding: true),
                       [.hash([1, 2, 3])])
        XCTAssertThrowsError(try ISAKMPCodec.decode(first: first, body: body + [0], allowPadding: false)) {
            XCTAssertEqual($0 as? ISAKMPError, .trailingBytes(1))
        }
    }

    func testHeaderRejections() {
        let good = message(mainMode1)
        XCTAssertThrowsError(try ISAKMPHeader.parse(Array(good.prefix(27)))) {
            XCTAssertEqual($0 as? ISAKMPError, .truncated(what: "header", needed: 4, available: 3))
        }
        var v2 = good; v2[17] = 0x20
        XCTAssertThrowsError(try ISAKMPHeader.parse(v2)) { XCTAssertEqual($0 as? ISAKMPError, .badVersion(0x20)) }
        XCTAssertThrowsError(try ISAKMPHeader.parse(good + [0])) {
            XCTAssertEqual($0 as? ISAKMPError, .lengthMismatch(declared: good.count, actual: good.count + 1))
        }
    }

    func testPayloadRejections() {
        func reject(_ first: UInt8, _ body: [UInt8], _ expected: ISAKMPError, line: UInt = #line) {
            XCTAssertThrowsError(try ISAKMPCodec.decode(first: first, body: body, allowPadding: false), line: line) {
                XCTAssertEqual($0 as? ISAKMPError, expected, line: line)
            }
        }
        reject(8, [0, 0, 0, 200, 1, 2], .badPayloadLength(type: 8, length: 200))
        reject(8, [0, 0, 0, 2], .badPayloadLength(type: 8, length: 2))
        reject(8, [0, 1, 0, 4], .reservedNotZero(what: "payload 8"))
        reject(8, [99, 0, 0, 4, 0, 0, 0, 4], .unknownPayload(99))
        reject(8, [8, 0, 0, 4], .truncated(what: "payload header", needed: 1, available: 0))
        // An SA whose proposal declares two transforms but carries one.
        var sa: [UInt8] = [0, 0, 0, 1, 0, 0, 0, 1]
        let transform: [UInt8] = [0, 0, 0, 8, 1, 1, 0, 0]
        let proposal: [UInt8] = [0, 0, 0, UInt8(8 + transform.count), 1, 1, 0, 2] + transform
        sa += proposal
        reject(1, [0, 0, 0, UInt8(4 + sa.count)] + sa, .countMismatch(what: "transforms", declared: 2, found: 1))
        // A variable attribute claiming 60000 bytes.
        let hugeAttr: [UInt8] = [0, 0, 0, 12, 1, 1, 0, 0, 0x00, 0x0c, 0xea, 0x60]
        let p2: [UInt8] = [0, 0, 0, UInt8(8 + hugeAttr.count), 1, 1, 0, 1] + hugeAttr
        let sa2: [UInt8] = [0, 0, 0, 1, 0, 0, 0, 1] + p2
        reject(1, [0, 0, 0, UInt8(4 + sa2.count)] + sa2, .badAttribute(type: 12, length: 60000))
        // A delete whose SPI count does not match its length.
        reject(12, [0, 0, 0, 16, 0, 0, 0, 1, 3, 4, 0, 3, 0, 0, 0, 1],
               .countMismatch(what: "delete SPIs", declared: 3, found: 1))
        // A chain of 40 vendor IDs.
        var chain: [UInt8] = []
        for i in 0..<40 { chain += [i == 39 ? 0 : 13, 0, 0, 4] }
        reject(13, chain, .tooManyPayloads)
    }

    func testEveryTruncationIsRefusedNotCrashed() {
        let bytes = message(mainMode1)
        for cut in 0..<bytes.count {
            let piece = Array(bytes.prefix(cut))
            XCTAssertThrowsError(try ISAKMPHeader.parse(piece), "cut at \(cut)")
            if cut > ISAKMPHeader.size {
                XCTAssertThrowsError(try ISAKMPCodec.decode(first: 1, body: Array(piece[ISAKMPHeader.size...]),
                                                            allowPadding: false), "body cut at \(cut)")
            }
        }
    }
}
