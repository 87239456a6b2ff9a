import KeywaySystem
import XCTest

/// A child that exits before reading what keywayd sent it still has its last messages read: the
/// kernel reports ECONNRESET once, before them, and they wait behind it.
final class SeqPacketResetTests: XCTestCase {
    func testAPeerThatExitsWithOurMessagesUnreadStillHasItsLastWordsRead() throws {
        let (keywayd, child) = try SeqPacket.pair()
        try SeqPacket.send(keywayd, [1, 2, 3])
        try SeqPacket.send(child, Array("refusing to start".utf8))
        try SeqPacket.send(child, Array("last words".utf8))
        child.close()   // with keywayd's message unread, as a child exiting in start-up does
        var read: [String] = []
        for _ in 0..<4 {
            guard case .datagram(let d) = try SeqPacket.receive(keywayd) else { break }
            read.append(String(decoding: d.bytes, as: UTF8.self))
        }
        XCTAssertEqual(read, ["refusing to start", "last words"])
        guard case .closed = try SeqPacket.receive(keywayd) else { return XCTFail("then the link is closed") }
    }

    func testAPeerThatExitsHavingSentNothingJustCloses() throws {
        let (keywayd, child) = try SeqPacket.pair()
        try SeqPacket.send(keywayd, [1])
        child.close()
        guard case .closed = try SeqPacket.receive(keywayd) else { return XCTFail("closed, nothing to read") }
    }
}
