import Glibc
import KeywaySystem
import XCTest

/// sendmmsg and recvmmsg straight out of and into one packet buffer, over loopback UDP: what one
/// call sends, one call receives, in order, intact, with sender and local address.
final class PacketVectorTests: XCTestCase {
    let loopback: UInt32 = 0x7f00_0001

    func testOneSendAndOneReceiveMoveABatchIntactFromWhereItLies() throws {
        let port: UInt16 = 47_123
        let receiver = try Sockets.udpBound(port: port, mark: 0)
        let sender = try Sockets.udpBound(port: port + 1, mark: 0)
        var buffer = [UInt8](repeating: 0, count: 8192)
        let packets = (0..<5).map { i in [UInt8](repeating: UInt8(i + 1), count: 100 + i * 300) }
        let out = PacketVector(capacity: 8)
        var at = 16
        for p in packets {
            buffer.replaceSubrange(at..<(at + p.count), with: p)
            XCTAssertTrue(out.append(start: at, length: p.count, to: loopback, port: port, from: loopback))
            at += p.count + 7
        }
        XCTAssertEqual(out.count, 5)
        let result = out.sendUDP(on: sender, from: buffer, segmenting: false)
        XCTAssertEqual(result.refused, 0, "nothing refused")
        XCTAssertEqual(result.messages, 5)
        XCTAssertEqual(out.count, 0, "the vector is empty after sending")
        usleep(50_000)
        let into = PacketVector(capacity: 8)
        var received = [UInt8](repeating: 0, count: 8 * 2048)
        let starts = (0..<8).map { $0 * 2048 }
        XCTAssertEqual(into.receiveUDPCoalesced(from: receiver, into: &received, slotStarts: starts, room: 2048), 5)
        for i in 0..<5 {
            XCTAssertEqual(Array(received[into.start(i)..<(into.start(i) + into.length(i))]), packets[i])
            XCTAssertEqual(into.source(i), loopback)
            XCTAssertEqual(into.sourcePort(i), port + 1)
            XCTAssertEqual(into.local(i), loopback)
        }
        XCTAssertEqual(into.length(5), 0, "beyond what arrived there is nothing")
        XCTAssertEqual(into.receiveUDPCoalesced(from: receiver, into: &received, slotStarts: starts, room: 2048), 0,
                       "non-blocking when nothing waits")
    }

    func testAFullVectorOrAPacketBeyondTheBufferIsRefusedNotOverrun() throws {
        let vector = PacketVector(capacity: 2)
        XCTAssertFalse(vector.append(start: -1, length: 1, to: loopback))
        XCTAssertTrue(vector.append(start: 0, length: 10, to: loopback, port: 9))
        XCTAssertTrue(vector.append(start: 100, length: 10, to: loopback, port: 9))
        XCTAssertFalse(vector.append(start: 0, length: 1, to: loopback), "full")
        let sender = try Sockets.udpBound(port: 47_125, mark: 0)
        // The second packet would end at 110, beyond a 64-byte buffer: nothing is sent at all.
        let result = vector.sendUDP(on: sender, from: [UInt8](repeating: 0, count: 64), segmenting: false)
        XCTAssertEqual(result.refused, 2)
        XCTAssertEqual(result.messages, 0)
        XCTAssertEqual(vector.count, 0)
        var small = [UInt8](repeating: 0, count: 100)
        XCTAssertEqual(vector.receive(from: sender, into: &small, slotStarts: [0, 60], room: 50), 0,
                       "a slot that would run past the buffer receives nothing")
    }
}
