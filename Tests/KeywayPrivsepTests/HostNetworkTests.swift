import Glibc
import KeywayAudit
@testable import KeywayPrivsep
import KeywaySystem
import KeywayWire
import SystemPackage
import KeywayTrust
import KeywayVocabulary
import XCTest

/// Plays the kernel for HostNetwork: records every batch and script, answers as told.
final class RecordingKernel: HostKernel {
    var batches: [[RoutingChange]] = []
    var scripts: [String] = []
    var answer: (RoutingChange) -> Errno? = { _ in nil }
    /// What the next listing of the table returns; a flush empties it.
    var tableRoutes: [KernelRoute] = []
    var nftables: NftablesOutcome = .applied

    func apply(_ changes: [RoutingChange]) -> [Errno?] {
        batches.append(changes)
        return changes.map(answer)
    }

    func routes(inTable table: UInt32) throws(SystemError) -> [KernelRoute] {
        defer { tableRoutes = [] }
        return tableRoutes
    }

    func runNftables(_ script: String) -> NftablesOutcome {
        scripts.append(script)
        return nftables
    }

    func interfaceIndex(_ name: String) throws(SystemError) -> Int32 { 7 }

    /// The MTU toward each destination (missing: no route); every look-up is recorded.
    var pathMTUs: [UInt32: Int] = [:]
    var lookups: [[UInt32]] = []

    func pathMTUs(toward destinations: [UInt32], mark: UInt32) -> [Result<Int, SystemError>] {
        lookups.append(destinations)
        return destinations.map { d in
            pathMTUs[d].map { .success($0) } ?? .failure(SystemError("RTM_GETROUTE", errno: .networkUnreachable))
        }
    }
}

/// The audit events a HostNetwork writes, as keywayd's loop would collect them, one line each.
final class AuditCapture {
    let log: AuditLog
    private let output = CollectingAuditOutput()

    init() throws {
        log = AuditLog(appName: "keywayd", output: output)
    }

    func lines() throws -> [String] {
        output.drain().map { e in
            ([e.msgID, e.text] + e.parameters.map { "\($0.name)=\"\($0.value)\"" }).joined(separator: " ")
        }
    }
}

final class HostNetworkTests: XCTestCase {
    let table: UInt32 = 19287
    let mark: UInt32 = 0x4b57
    var kernel = RecordingKernel()
    var audit: AuditCapture!
    var network: HostNetwork!

    override func setUpWithError() throws {
        kernel = RecordingKernel()
        audit = try AuditCapture()
        let settings = SupervisorSettings(executableDirectory: "/nonexistent", users: RoleUsersTests.distinct,
                                          runDirectory: "/nonexistent", stateDirectory: "/nonexistent",
                                          syslogPath: "/nonexistent", tunName: "kwtun0")
        network = HostNetwork(settings: settings, audit: audit.log, kernel: kernel)
    }

    func route(_ a: UInt32, _ length: UInt8, source: UInt32 = 0) -> KernelRoute {
        KernelRoute(address: a, prefixLength: length, preferredSource: source)
    }

    func testStartUpReplacesAStaleRuleSilentlyFlushesTheTableAndKeepsTheFirewallTable() throws {
        kernel.answer = { change in
            if case .deleteRule = change { return .noSuchFileOrDirectory }
            return nil
        }
        let stale = route(0x0a02_0000, 24)
        kernel.tableRoutes = [stale]
        try network.setUp(tunName: "kwtun0")
        XCTAssertEqual(kernel.batches, [
            [.deleteRule(notMark: mark, table: table, priority: 32000),
             .addRule(notMark: mark, table: table, priority: 32000), .setQueueLength(interfaceIndex: 7, packets: 4096)],
            [.deleteRoute(stale, table: table, interfaceIndex: nil)],
        ])
        XCTAssertEqual(try audit.lines(), [], "a rule that does not exist at start-up is no news")
        XCTAssertEqual(kernel.scripts, [], "a firewall table that survived a crash stays until the first new rule list")
    }

    func testStartUpFailsWhenTheRuleCannotBeAdded() throws {
        kernel.answer = { change in
            if case .addRule = change { return .permissionDenied }
            return nil
        }
        XCTAssertThrowsError(try network.setUp(tunName: "kwtun0")) { error in
            XCTAssertTrue("\(error)".contains("adding the routing rule"), "\(error)")
        }
    }

    func testEachRouteUpdateIsOneBatchOfWhatChanged() throws {
        try network.setUp(tunName: "kwtun0")
        kernel.batches = []
        let a = route(0x0a02_0000, 24), b = route(0xc000_0202, 32, source: 0xc000_0201), c = route(0x0a03_0000, 16)
        network.applyRoutes([a, b])
        XCTAssertEqual(kernel.batches, [[.replaceRoute(a, table: table, interfaceIndex: 7),
                                         .replaceRoute(b, table: table, interfaceIndex: 7)]])
        let b2 = route(0xc000_0202, 32, source: 0xc000_0203)
        network.applyRoutes([b2, c])
        XCTAssertEqual(kernel.batches.count, 2)
        XCTAssertEqual(kernel.batches[1], [.deleteRoute(a, table: table, interfaceIndex: 7),
                                           .replaceRoute(b2, table: table, interfaceIndex: 7),
                                           .replaceRoute(c, table: table, interfaceIndex: 7)])
        network.applyRoutes([c, b2])
        XCTAssertEqual(kernel.batches.count, 2, "an unchanged set sends nothing")
    }

    func testHostBitsAndDuplicatesAreNormalisedAndOverlongPrefixesRefused() throws {
        try network.setUp(tunName: "kwtun0")
        kernel.batches = []
        network.applyRoutes([route(0x0a02_0009, 24), route(0x0a02_0000, 24), route(0x0a02_0000, 33)])
        XCTAssertEqual(kernel.batches, [[.replaceRoute(route(0x0a02_0000, 24), table: table, interfaceIndex: 7)]])
        XCTAssertTrue(try audit.lines().contains { $0.contains("refused a route with prefix length 33") })
    }

    func testAFailedRouteIsAuditedWithItsErrnoAndRetriedNextTime() throws {
        try network.setUp(tunName: "kwtun0")
        _ = try audit.lines()
        kernel.answer = { change in
            if case .replaceRoute = change { return .networkUnreachable }
            return nil
        }
        let a = route(0x0a02_0000, 24)
        network.applyRoutes([a])
        let lines = try audit.lines()
        XCTAssertTrue(lines.contains {
            $0.contains("could not add route 10.2.0.0/24 via kwtun0") && $0.contains("errno=\"\(ENETUNREACH)\"")
        }, "\(lines)")
        XCTAssertEqual(network.installed, [:])
        kernel.answer = { _ in nil }
        network.applyRoutes([a])
        XCTAssertEqual(kernel.batches.last, [.replaceRoute(a, table: table, interfaceIndex: 7)])
        XCTAssertEqual(network.installed.count, 1)
    }

    func testARefusedPreferredSourceIsRetriedWithoutIt() throws {
        try network.setUp(tunName: "kwtun0")
        kernel.batches = []
        kernel.answer = { change in
            if case .replaceRoute(let r, _, _) = change, r.preferredSource != 0 { return .invalidArgument }
            return nil
        }
        let withSource = route(0xc000_0202, 32, source: 0xc000_0201)
        network.applyRoutes([withSource])
        XCTAssertEqual(kernel.batches, [[.replaceRoute(withSource, table: table, interfaceIndex: 7)],
                                        [.replaceRoute(route(0xc000_0202, 32), table: table, interfaceIndex: 7)]])
        XCTAssertEqual(network.installed.values.first, 0)
        XCTAssertTrue(try audit.lines().contains { $0.contains("preferred source 192.0.2.1 refused") })
    }

    func testRemovingARouteThatIsAlreadyGoneIsSilent() throws {
        try network.setUp(tunName: "kwtun0")
        network.applyRoutes([route(0x0a02_0000, 24)])
        _ = try audit.lines()
        kernel.answer = { change in
            if case .deleteRoute = change { return .noSuchProcess }
            return nil
        }
        network.applyRoutes([KernelRoute]())
        XCTAssertFalse(try audit.lines().contains { $0.contains("could not") })
        XCTAssertEqual(network.installed, [:])
    }

    func testIncomingCheckIsReplacedOnlyWhenTheListChangesAndAnEmptyListDeletesTheTable() throws {
        try network.setUp(tunName: "kwtun0")
        let rules = [IncomingCheckRule(selector: TrafficSelector(source: IPv4Prefix(0x0a02_0000, length: 24),
                                                                 destination: IPv4Prefix(0x0a01_0000, length: 24)),
                                       drop: true)]
        network.applyIncomingCheck(rules)
        network.applyIncomingCheck(rules)
        XCTAssertEqual(kernel.scripts.count, 1)
        XCTAssertTrue(kernel.scripts[0].contains("ip saddr 10.2.0.0/24 ip daddr 10.1.0.0/24 counter drop"))
        network.applyIncomingCheck([])
        XCTAssertEqual(kernel.scripts.last, "table ip keyway_kwtun0\ndelete table ip keyway_kwtun0\n")
        network.applyIncomingCheck([])
        XCTAssertEqual(kernel.scripts.count, 2)
    }

    func testTheFirstEmptyListAfterStartUpDeletesAStaleTable() throws {
        try network.setUp(tunName: "kwtun0")
        XCTAssertEqual(kernel.scripts, [])
        network.applyIncomingCheck([])
        XCTAssertEqual(kernel.scripts, ["table ip keyway_kwtun0\ndelete table ip keyway_kwtun0\n"])
    }

    func testARefusedScriptIsAuditedWithNftablesOwnWordsAndTriedAgain() throws {
        try network.setUp(tunName: "kwtun0")
        kernel.nftables = .refused("Error: Could not process rule: No such file or directory\n"
                                   + "table ip keyway_kwtun0 {\n      ^^^^^\n")
        let rules = [IncomingCheckRule(selector: TrafficSelector(source: IPv4Prefix(0, length: 0),
                                                                 destination: IPv4Prefix(0x0a01_0000, length: 16),
                                                                 destinationPort: 53, proto: 17),
                                       drop: true)]
        network.applyIncomingCheck(rules)
        let lines = try audit.lines()
        XCTAssertTrue(lines.contains {
            $0.contains("NOT enforced")
                && $0.contains("nftables=\"Error: Could not process rule: No such file or directory "
                               + "| table ip keyway_kwtun0 { | ^^^^^\"")
        }, "\(lines)")
        XCTAssertNil(network.enforcedRules)
        kernel.nftables = .applied
        network.applyIncomingCheck(rules)
        XCTAssertEqual(kernel.scripts.count, 2)
        XCTAssertEqual(network.enforcedRules, rules)
    }

    func testShutdownRemovesRoutesRuleAndFirewallTable() throws {
        try network.setUp(tunName: "kwtun0")
        network.applyRoutes([route(0x0a02_0000, 24)])
        kernel.batches = []
        kernel.scripts = []
        kernel.tableRoutes = [route(0x0a02_0000, 24)]
        network.tearDown()
        XCTAssertEqual(kernel.batches, [[.deleteRoute(route(0x0a02_0000, 24), table: table, interfaceIndex: nil)],
                                        [.deleteRule(notMark: mark, table: table, priority: 32000)]])
        XCTAssertEqual(kernel.scripts, ["table ip keyway_kwtun0\ndelete table ip keyway_kwtun0\n"])
    }

    func testIncomingCheckScriptReplacesTheTableAtomicallyAndKeepsTheSPDOrder() {
        let rules: [IncomingCheckRule] = [
            IncomingCheckRule(selector: TrafficSelector(source: IPv4Prefix(0x0a02_0000, length: 24),
                                                        destination: IPv4Prefix(0x0a01_0009, length: 32)),
                              drop: false),
            IncomingCheckRule(selector: TrafficSelector(source: IPv4Prefix(0x0a02_0000, length: 24),
                                                        destination: IPv4Prefix(0x0a01_00ff, length: 24),
                                                        sourcePort: 80, proto: 6),
                              drop: true),
            IncomingCheckRule(selector: TrafficSelector(source: IPv4Prefix(0, length: 0),
                                                        destination: IPv4Prefix(0x0a01_0000, length: 16),
                                                        destinationPort: 53),
                              drop: true),
        ]
        let lines = HostNetwork.script(table: "keyway_kwtun0", tun: "kwtun0", ikePorts: [500, 4500], rules: rules)
            .split(separator: "\n").map(String.init)
        XCTAssertEqual(Array(lines.prefix(2)), ["table ip keyway_kwtun0", "delete table ip keyway_kwtun0"],
                       "one transaction replaces the old table")
        XCTAssertEqual(lines.filter { $0.contains("hook prerouting") }.count, 1)
        let rulesInOrder = lines.map { $0.split(separator: " ").joined(separator: " ") }
        XCTAssertEqual(Array(rulesInOrder[5...]), [
            "iifname \"kwtun0\" accept",
            "fib daddr type local meta l4proto { 50, 51 } accept",
            "fib daddr type local udp dport { 500, 4500 } accept",
            "ip saddr 10.2.0.0/24 ip daddr 10.1.0.9/32 accept",
            "ip saddr 10.2.0.0/24 ip daddr 10.1.0.0/24 meta l4proto 6 th sport 80 counter drop",
            "ip saddr 0.0.0.0/0 ip daddr 10.1.0.0/16 meta l4proto { 6, 17 } th dport 53 counter drop",
            "}", "}",
        ])
    }

    /// 100,000 policies as rules one after another would cost every packet 100,000 comparisons: a
    /// large group of same-verdict rules becomes set lookups, in the SPD's order between groups,
    /// and what might overlap an element already placed (nftables refuses that) stays a rule.
    func testLargeGroupsOfRulesBecomeSetsInSPDOrder() {
        func selector(_ i: Int, ports: Bool = false) -> TrafficSelector {
            TrafficSelector(source: IPv4Prefix(0x0afa_0000, length: 16),
                            destination: IPv4Prefix(0x0a00_0000 + UInt32(4 * i), length: 30),
                            destinationPort: ports ? 80 : nil)
        }
        var rules = (0..<100).map { IncomingCheckRule(selector: selector($0), drop: true) }
        rules += (0..<3).map { IncomingCheckRule(selector: selector($0, ports: true), drop: true) }
        // Overlapping: the same destination again, and a destination containing earlier ones.
        rules.append(IncomingCheckRule(selector: selector(5), drop: true))
        rules.append(IncomingCheckRule(selector: TrafficSelector(source: .all,
                                                                 destination: IPv4Prefix(0x0a00_0000, length: 8)),
                                       drop: true))
        // Then a small accept group, and more drops (a group of their own, after it).
        rules.append(IncomingCheckRule(selector: selector(500), drop: false))
        rules += (1_000..<1_010).map { IncomingCheckRule(selector: selector($0), drop: true) }
        let lines = HostNetwork.script(table: "keyway_kwtun0", tun: "kwtun0", ikePorts: [500, 4500], rules: rules)
            .split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        XCTAssertEqual(lines.filter { $0.hasPrefix("set g1 ") }.count, 1)
        // Mirrored policies often share one destination (our LAN) and differ in source: no overlap.
        let mirrored = (0..<50).map { IncomingCheckRule(selector: selector($0).mirrored, drop: true) }
        let sets = HostNetwork.script(table: "t", tun: "kwtun0", ikePorts: [500], rules: mirrored)
        XCTAssertEqual(sets.split(separator: "\n").filter { $0.hasSuffix(". 0-255,") }.count, 50)
        XCTAssertTrue(lines.contains("10.250.0.0/16 . 10.0.0.4/30 . 0-255,"), "a plain element")
        XCTAssertTrue(lines.contains("10.250.0.0/16 . 10.0.0.4/30 . 6 . 0-65535 . 80,"), "ports: TCP")
        XCTAssertTrue(lines.contains("10.250.0.0/16 . 10.0.0.4/30 . 17 . 0-65535 . 80,"), "ports: UDP")
        XCTAssertEqual(lines.filter { $0.hasSuffix(". 0-255,") }.count, 110, "100 + 10 plain elements, none twice")
        let chain = Array(lines.drop { $0 != "chain incoming {" })
        XCTAssertEqual(Array(chain.suffix(8)), [
            "ip saddr . ip daddr . meta l4proto @g1 counter drop",
            "ip saddr . ip daddr . meta l4proto . th sport . th dport @g1p counter drop",
            "ip saddr 10.250.0.0/16 ip daddr 10.0.0.20/30 counter drop",
            "ip saddr 0.0.0.0/0 ip daddr 10.0.0.0/8 counter drop",
            "ip saddr 10.250.0.0/16 ip daddr 10.0.7.208/30 accept",
            "ip saddr . ip daddr . meta l4proto @g2 counter drop",
            "}", "}",
        ])
    }
}

