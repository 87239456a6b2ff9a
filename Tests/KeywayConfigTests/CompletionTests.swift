import KeywayConfig
import XCTest

final class CompletionTests: XCTestCase {
    func testMenusCommandsAndProperties() {
        XCTAssertEqual(Completion.candidates(for: "/ip ip", path: []), ["ipsec"])
        XCTAssertEqual(Completion.candidates(for: "/ip ipsec p", path: []), ["policy", "peer", "proposal"])
        XCTAssertEqual(Completion.candidates(for: "pr", path: ["ip", "ipsec", "policy"]), ["print"])
        XCTAssertEqual(Completion.candidates(for: "add sa-s", path: ["ip", "ipsec", "policy"]), ["sa-src-address="])
        XCTAssertEqual(Completion.candidates(for: "/ip ipsec peer add exc", path: []), ["exchange-mode="])
        XCTAssertEqual(Completion.candidates(for: "add sa-src-address=192.0.2.1 sa-d", path: ["ip", "ipsec", "policy"]),
                       ["sa-dst-address="])
        XCTAssertEqual(Completion.candidates(for: "print st", path: ["ip", "ipsec", "policy"]), ["stats"])
        XCTAssertEqual(Completion.candidates(for: "/i", path: ["ip", "ipsec"]), ["/ip"])
    }
}
