import Glibc
import KeywaySystem
import XCTest

/// recvmmsg/sendmmsg over loopback UDP: what one call sends, one call receives, in order and intact.
final class PacketBatchTests: XCTestCase {
    func testOneSendmmsgAndOneRecvmmsgMoveABatchIntact() throws {
        let port: UInt16 = 47_123
        let receiver = try Sockets.udpBound(port: port, mark: 0)
        let sender = try Sockets.udpBound(port: port + 1, mark: 0)
        let out = PacketBatch(capacity: 8, slotSize: 2048)
        let packets = (0..<5).map { i in [UInt8](repeating: UInt8(i), count: 100 + i * 300) }
        for p in packets { XCTAssertTrue(out.append(p, to: 0x7f00_0001, port: port)) }
        XCTAssertEqual(out.count, 5)
        XCTAssertEqual(out.send(on: sender), 0, "nothing refused")
        XCTAssertEqual(out.count, 0, "the batch is empty after sending")
        usleep(50_000)
        let inBatch = PacketBatch(capacity: 8, slotSize: 2048)
        XCTAssertEqual(inBatch.receive(from: receiver), 5)
        for i in 0..<5 { XCTAssertEqual(inBatch.packet(i), packets[i]) }
        XCTAssertEqual(inBatch.packet(5), [], "beyond what arrived there is nothing")
        XCTAssertEqual(inBatch.receive(from: receiver), 0, "non-blocking when nothing waits")
    }

    func testAFullBatchOrAnOversizedPacketIsRefusedNotOverrun() {
        let batch = PacketBatch(capacity: 2, slotSize: 64)
        XCTAssertFalse(batch.append([UInt8](repeating: 1, count: 65), to: 1))
        XCTAssertTrue(batch.append([1], to: 1))
        XCTAssertTrue(batch.append([2], to: 1))
        XCTAssertFalse(batch.append([3], to: 1))
        XCTAssertEqual(batch.count, 2)
    }
}
