import KeywayConfig
import XCTest

/// Conditions are flat and bounded: no input can make the parser or the evaluation recurse deeply.
final class ConditionBoundsTests: XCTestCase {
    private func console() throws -> Console {
        var c = Console()
        try c.run("/ip ipsec peer\nadd address=192.0.2.1 secret=a; add address=192.0.2.2 secret=b disabled=yes")
        return c
    }

    func testNotsUpToTheBoundWork() throws {
        var c = try console()
        let odd = Array(repeating: "not", count: Condition.maximumNegations - 1).joined(separator: " ")
        let even = Array(repeating: "not", count: Condition.maximumNegations).joined(separator: " ")
        XCTAssertEqual(try c.run("/ip ipsec peer print count-only where \(odd) disabled").text, "1\n")
        XCTAssertEqual(try c.run("/ip ipsec peer print count-only where \(even) disabled").text, "1\n")
        XCTAssertEqual(try c.run("/ip ipsec peer print count-only where \(even) !disabled").text, "1\n")
        XCTAssertEqual(try c.run("/ip ipsec peer print count-only where not address=192.0.2.1/32:500").text, "1\n")
    }

    func testOneNotBeyondTheBoundIsRefusedAtItsPosition() throws {
        var c = try console()
        let prefix = "/ip ipsec peer print where "
        let nots = Array(repeating: "not", count: Condition.maximumNegations + 1).joined(separator: " ")
        let e = c.error(prefix + nots + " disabled")
        XCTAssertEqual(e?.message, "too many 'not' in a row: at most \(Condition.maximumNegations)")
        // The refused `not` is the last one: its column is after the ones allowed.
        XCTAssertEqual(e?.position, SourcePosition(line: 1, column: prefix.count + 1 + Condition.maximumNegations * 4))
    }

    func testHundredThousandNotsFailCleanlyAndFast() throws {
        var c = try console()
        let text = "/ip ipsec peer print where " + String(repeating: "not ", count: 100_000) + "disabled"
        let start = Date()
        XCTAssertEqual(c.error(text)?.message, "too many 'not' in a row: at most \(Condition.maximumNegations)")
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
    }

    func testTermsUpToTheBoundWork() throws {
        var c = try console()
        let ands = Array(repeating: "address=192.0.2.1/32:500", count: Condition.maximumTerms)
            .joined(separator: " and ")
        XCTAssertEqual(try c.run("/ip ipsec peer print count-only where \(ands)").text, "1\n")
        let ors = (0..<Condition.maximumTerms).map { "address=192.0.2.\($0 + 1)" }.joined(separator: " or ")
        XCTAssertEqual(try c.run("/ip ipsec peer print count-only where \(ors)").text, "2\n")
        XCTAssertEqual(try c.run("/ip ipsec peer disable [find \(ors)]").changes.count, 1)
        XCTAssertEqual(c.config.peers.map(\.disabled), [true, true])
    }

    func testOneTermBeyondTheBoundIsRefusedAtItsPosition() throws {
        var c = try console()
        let prefix = "/ip ipsec peer print where "
        let terms = Array(repeating: "disabled", count: Condition.maximumTerms + 1)
        let e = c.error(prefix + terms.joined(separator: " and "))
        XCTAssertEqual(e?.message, "condition too long: at most \(Condition.maximumTerms) terms "
                                   + "(name=value or a flag) in one condition")
        XCTAssertEqual(e?.position,
                       SourcePosition(line: 1,
                                      column: prefix.count + 1 + Condition.maximumTerms * "disabled and ".count))
        // Inside [find] too, and with `or`.
        let find = "/ip ipsec peer remove [find " + terms.joined(separator: " or ") + "]"
        XCTAssertEqual(c.error(find)?.message, "condition too long: at most \(Condition.maximumTerms) terms "
                                               + "(name=value or a flag) in one condition")
    }

    func testHundredThousandTermChainsFailCleanlyAndFast() throws {
        var c = try console()
        for joiner in [" and ", " or ", " "] {
            let text = "/ip ipsec peer print where "
                + Array(repeating: "disabled", count: 100_000).joined(separator: joiner)
            let start = Date()
            XCTAssertEqual(c.error(text)?.message.hasPrefix("condition too long"), true, joiner)
            XCTAssertLessThan(Date().timeIntervalSince(start), 5, joiner)
        }
    }

    func testNestedBracketsFailCleanly() throws {
        var c = try console()
        let text = "/ip ipsec peer remove " + String(repeating: "[find ", count: 100_000)
        XCTAssertEqual(c.error(text)?.message,
                       "expected a condition (name=value, name!=value, or a flag such as disabled)")
        XCTAssertEqual(c.error("/ip ipsec peer remove [find [find disabled]]")?.position,
                       SourcePosition(line: 1, column: 29))
        XCTAssertEqual(c.config.peers.count, 2)
    }

    /// `and` binds tighter than `or`, and `not` only the term after it (as before the flat form).
    func testPrecedenceIsUnchanged() throws {
        var c = try console()
        XCTAssertEqual(try c.run("/ip ipsec peer print count-only where disabled and address=192.0.2.1 "
                                 + "or address=192.0.2.1").text, "1\n")
        XCTAssertEqual(try c.run("/ip ipsec peer print count-only where not disabled and address=192.0.2.2").text,
                       "0\n")
        XCTAssertEqual(try c.run("/ip ipsec peer print count-only where not disabled or address=192.0.2.2").text, "2\n")
        XCTAssertEqual(try c.run("/ip ipsec peer print count-only where !address!=192.0.2.2").text, "1\n")
    }

    func testParsedConditionsAreFlat() throws {
        let commands = try Parser.parse("/ip ipsec peer print where a=1 and not b or c !d=2 or not not e")
        let condition = try XCTUnwrap(commands.first?.condition)
        XCTAssertEqual(condition.alternatives.map { $0.map(\.name) }, [["a", "b"], ["c", "d"], ["e"]])
        XCTAssertEqual(condition.terms.map(\.negated), [false, true, false, true, false])
        XCTAssertEqual(condition.terms.map(\.value), ["1", nil, nil, "2", nil])
    }
}
