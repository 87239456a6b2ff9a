import KeywayAudit
import KeywaySystem
import KeywayTrust
import KeywayVocabulary
import SystemPackage

/// keywayd's changes to the host's network configuration: the routing rule and table that send
/// protected destinations into the TUN device, and the firewall table for the incoming policy
/// check. Done through the kernel's own interfaces (`HostKernel`: rtnetlink batches and
/// libnftables), never by running programs; every failure is audited with its errno or
/// nftables' message. Routes and rule are undone at shutdown, the firewall table too.
final class HostNetwork {
    /// Configured policies and generated ones: one route each at most.
    static let maximumRoutes = ScaleLimits.policies + ScaleLimits.generatedPolicies
    /// Before the main table's rule (32766).
    static let rulePriority: UInt32 = 32000
    /// A longer TUN queue absorbs a TCP window's burst while the datapath is busy.
    static let queueLength: UInt32 = 4096

    /// A route's identity in the kernel: its destination prefix (host bits cleared).
    struct Destination: Hashable, Comparable {
        let network: UInt32
        let length: UInt8
        init(_ route: KernelRoute) { network = route.network; length = route.prefixLength }
        static func < (a: Destination, b: Destination) -> Bool { (a.network, a.length) < (b.network, b.length) }
    }

    private let settings: SupervisorSettings
    private let audit: AuditLog
    private let kernel: HostKernel
    private(set) var tunName = ""
    private(set) var tunIndex: Int32 = 0
    /// Installed routes and the preferred source each really has (0: none).
    private(set) var installed: [Destination: UInt32] = [:]
    /// The rule list the firewall table holds; nil until the first one arrives.
    private(set) var enforcedRules: [IncomingCheckRule]?

    init(settings: SupervisorSettings, audit: AuditLog, kernel: HostKernel) {
        self.settings = settings
        self.audit = audit
        self.kernel = kernel
    }

    /// nftables names: letters, digits and underscores.
    var filterTable: String { "keyway_" + String(tunName.map { $0.isLetter || $0.isNumber ? $0 : "_" }) }
    private var table: UInt32 { settings.routeTable }
    private var rule: RoutingChange {
        .addRule(notMark: settings.bypassMark, table: table, priority: Self.rulePriority)
    }
    private var ruleRemoval: RoutingChange {
        .deleteRule(notMark: settings.bypassMark, table: table, priority: Self.rulePriority)
    }

    func setUp(tunName: String) throws(SupervisorError) {
        self.tunName = tunName
        do { tunIndex = try kernel.interfaceIndex(tunName) } catch {
            throw SupervisorError("finding \(tunName)", error)
        }
        // Unmarked packets (plaintext) consult Keyway's table first; marked ones (our ESP/AH/IKE)
        // never do. A rule left by a crashed run goes first, so that exactly one remains; at
        // start-up there is normally none, and that is no news.
        let answers = apply([ruleRemoval, rule, .setQueueLength(interfaceIndex: tunIndex, packets: Self.queueLength)])
        if let e = answers[0].1, e != .noSuchFileOrDirectory {
            report(.warning, "could not remove a stale routing rule", e)
        }
        if let e = answers[1].1 {
            throw SupervisorError("adding the routing rule (not fwmark \(settings.bypassMark) table \(table))",
                                  SystemError("RTM_NEWRULE", errno: e))
        }
        if let e = answers[2].1 {
            report(.warning, "could not set \(tunName)'s queue length to \(Self.queueLength)", e)
        }
        flushRoutes()
        // The incoming-check table is left alone: one that survived a crash keeps dropping until
        // the first new rule list replaces it (fail closed).
    }

    func tearDown() {
        flushRoutes()
        if let e = apply([ruleRemoval])[0].1 { report(.error, "could not remove the routing rule", e) }
        _ = removeIncomingCheck()
    }

    /// The whole set of routes wanted into the TUN device, in the order given: one batch removes
    /// the routes no longer wanted and installs the new or changed ones; unchanged ones are not
    /// touched. Only ever via our own TUN device, in our own table.
    func applyRoutes(_ routes: [HostRoute]) {
        applyRoutes(routes.map {
            KernelRoute(address: $0.destination.address.value, prefixLength: UInt8($0.destination.length),
                        preferredSource: $0.source?.value ?? 0)
        })
    }

    func applyRoutes(_ routes: [KernelRoute]) {
        var wanted: [(Destination, UInt32)] = []
        var seen = Set<Destination>()
        for route in routes {
            guard route.prefixLength <= 32 else {
                audit.event(.error, msgID: "route", "refused a route with prefix length \(route.prefixLength)")
                continue
            }
            guard seen.insert(Destination(route)).inserted else { continue }
            guard wanted.count < Self.maximumRoutes else {
                audit.event(.error, msgID: "route",
                            "more than \(Self.maximumRoutes) routes wanted; the rest are not installed")
                break
            }
            wanted.append((Destination(route), route.preferredSource))
        }
        let changes = Self.routeChanges(installed: installed, wanted: wanted, table: table, interfaceIndex: tunIndex)
        guard !changes.isEmpty else { return }
        var retry: [RoutingChange] = []
        for (change, answer) in apply(changes) {
            switch change {
            case .deleteRoute(let route, _, _):
                installed[Destination(route)] = nil
                // Already gone (its device went away): what we wanted.
                if let e = answer, e != .noSuchProcess { report(.error, "could not remove route \(route)", e) }
            case .replaceRoute(let route, let table, let index):
                if answer == nil {
                    installed[Destination(route)] = route.preferredSource
                } else if let e = answer, route.preferredSource != 0 {
                    // A source that is not (yet) one of ours is refused by the kernel: the route goes in without it.
                    let source = Self.address(route.preferredSource)
                    report(.notice, "route \(route): preferred source \(source) refused; installing it without", e)
                    var plain = route
                    plain.preferredSource = 0
                    retry.append(.replaceRoute(plain, table: table, interfaceIndex: index))
                } else if let e = answer {
                    installed[Destination(route)] = nil
                    report(.error, "could not add route \(route) via \(tunName)", e)
                }
            default: break
            }
        }
        if !retry.isEmpty {
            for (change, answer) in apply(retry) {
                guard case .replaceRoute(let route, _, _) = change else { continue }
                if let e = answer {
                    installed[Destination(route)] = nil
                    report(.error, "could not add route \(route) via \(tunName)", e)
                } else {
                    installed[Destination(route)] = 0
                }
            }
        }
        // The first few by name (an audit line is no place for 100,000 prefixes), and how many.
        let list = installed.keys.sorted().prefix(16).map { Self.prefix($0.network, $0.length) }
        audit.event(.informational, msgID: "route", "routes into \(tunName) updated",
                    [("count", String(installed.count)),
                     ("routes", list.joined(separator: " ") + (installed.count > list.count ? " ..." : ""))])
    }

    /// What takes the kernel from `installed` to `wanted`: removals first, then the routes that
    /// are new or whose preferred source changed, in the order wanted.
    static func routeChanges(installed: [Destination: UInt32], wanted: [(Destination, UInt32)], table: UInt32,
                             interfaceIndex: Int32) -> [RoutingChange] {
        let keep = Set(wanted.map(\.0))
        var changes: [RoutingChange] = installed.keys.filter { !keep.contains($0) }.sorted().map {
            .deleteRoute(KernelRoute(address: $0.network, prefixLength: $0.length), table: table,
                         interfaceIndex: interfaceIndex)
        }
        for (destination, source) in wanted where installed[destination] != source {
            let route = KernelRoute(address: destination.network, prefixLength: destination.length,
                                    preferredSource: source)
            changes.append(.replaceRoute(route, table: table, interfaceIndex: interfaceIndex))
        }
        return changes
    }

    /// Removes every route in our table, whatever put it there (a crashed run, an operator).
    private func flushRoutes() {
        defer { installed = [:] }
        // Bounded: each round removes what one listing returned.
        for _ in 0..<8 {
            let present: [KernelRoute]
            do { present = try kernel.routes(inTable: table) } catch {
                audit.event(.error, msgID: "route", "could not list the routes in table \(table): \(error)")
                return
            }
            if present.isEmpty { return }
            var removed = 0
            for (change, answer) in apply(present.map { .deleteRoute($0, table: table, interfaceIndex: nil) }) {
                guard case .deleteRoute(let route, _, _) = change else { continue }
                if let e = answer, e != .noSuchProcess {
                    report(.error, "could not remove route \(route) from table \(table)", e)
                } else {
                    removed += 1
                }
            }
            if removed == 0 { return }
        }
    }

    /// The kernel's answer to each change, one batch; a missing answer counts as EIO.
    private func apply(_ changes: [RoutingChange]) -> [(RoutingChange, Errno?)] {
        let answers = kernel.apply(changes)
        return changes.enumerated().map { i, change in (change, i < answers.count ? answers[i] : .ioError) }
    }

    private func report(_ severity: Severity, _ what: String, _ error: Errno) {
        audit.event(severity, msgID: "route", "\(what): \(error)", [("errno", String(error.rawValue))])
    }

    static func address(_ a: UInt32) -> String { "\(a >> 24).\(a >> 16 & 255).\(a >> 8 & 255).\(a & 255)" }

    static func prefix(_ address: UInt32, _ length: UInt8) -> String {
        let mask: UInt32 = length == 0 ? 0 : ~UInt32(0) << UInt32(32 - Int(min(length, 32)))
        let a = address & mask
        return "\(a >> 24).\(a >> 16 & 255).\(a >> 8 & 255).\(a & 255)/\(min(length, 32))"
    }

    /// The whole ordered rule list of the incoming policy check. It replaces the firewall table
    /// in one nftables transaction (a refused one leaves the old table in place); an empty list
    /// removes the table. A list equal to the enforced one changes nothing.
    func applyIncomingCheck(_ rules: [IncomingCheckRule]) {
        guard rules != enforcedRules else { return }
        if rules.isEmpty {
            if removeIncomingCheck() {
                enforcedRules = []
                audit.event(.informational, msgID: "incoming-check",
                            "incoming policy check removed: no rule to enforce")
            }
            return
        }
        let script = Self.script(table: filterTable, tun: tunName,
                                 ikePorts: [settings.ikePort, settings.natTraversalPort], rules: rules)
        switch kernel.runNftables(script) {
        case .applied:
            enforcedRules = rules
            audit.event(.informational, msgID: "incoming-check", "incoming policy check updated",
                        [("rules", String(rules.count)), ("drops", String(rules.filter(\.drop).count))])
        case .refused(let messages):
            audit.event(.error, msgID: "incoming-check",
                        "nftables refused the incoming policy check; it is NOT enforced",
                        [("table", filterTable), ("nftables", Self.oneLine(messages))])
        case .unavailable:
            audit.event(.error, msgID: "incoming-check",
                        "no nftables context: the incoming policy check is NOT enforced")
        }
    }

    /// Deletes the firewall table, whether or not it exists.
    private func removeIncomingCheck() -> Bool {
        // Adding first makes the delete succeed whether or not the table existed.
        switch kernel.runNftables("table ip \(filterTable)\ndelete table ip \(filterTable)\n") {
        case .applied: return true
        case .refused(let messages):
            audit.event(.error, msgID: "incoming-check", "nftables refused to remove the incoming-check table",
                        [("table", filterTable), ("nftables", Self.oneLine(messages))])
            return false
        case .unavailable:
            audit.event(.error, msgID: "incoming-check",
                        "no nftables context: the incoming-check table was not removed")
            return false
        }
    }

    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { $0.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
            .filter { !$0.isEmpty }.joined(separator: " | ")
    }

    /// Before routing: what came in through our TUN device was decrypted by us; ESP, AH and IKE
    /// addressed to this appliance are never subject to the check (the manual exempts UDP 500);
    /// then the SPD's rules in order. Built from numbers only (and the TUN name keywayd chose).
    /// Consecutive rules with the same verdict form a group whose order does not matter (the
    /// first that matches gives the same verdict as any other would); a large group becomes one
    /// or two concatenated-interval sets looked up by one rule each, so 100,000 policies cost a
    /// packet a few lookups instead of 100,000 comparisons (IncomingCheckSets).
    static func script(table: String, tun: String, ikePorts: [UInt16], rules: [IncomingCheckRule]) -> String {
        var lines = [
            "table ip \(table)",
            "delete table ip \(table)",
            "table ip \(table) {",
        ]
        var chain = [
            "  chain incoming {",
            "    type filter hook prerouting priority -150; policy accept;",
            "    iifname \"\(tun)\" accept",
            // Only to our own addresses: ESP or "IKE" to a protected host behind us is plaintext
            // like any other and gets checked.
            "    fib daddr type local meta l4proto { 50, 51 } accept",
            "    fib daddr type local udp dport { \(ikePorts.map(String.init).joined(separator: ", ")) } accept",
        ]
        var start = 0
        var group = 0
        while start < rules.count {
            var end = start + 1
            while end < rules.count, rules[end].drop == rules[start].drop { end += 1 }
            let verdict = rules[start].drop ? "counter drop" : "accept"
            let members = rules[start..<end]
            if members.count < IncomingCheckSets.minimumSetSize {
                chain += members.map { "    \(Self.match($0.selector)) \(verdict)" }
            } else {
                group += 1
                let sets = IncomingCheckSets(members.map(\.selector))
                if !sets.plain.isEmpty {
                    let name = "g\(group)"
                    lines.append(
                        "  set \(name) { type ipv4_addr . ipv4_addr . inet_proto; flags interval; elements = {")
                    lines += sets.plain.map { "    \($0)," }
                    lines += ["  } }"]
                    chain.append("    ip saddr . ip daddr . meta l4proto @\(name) \(verdict)")
                }
                if !sets.ported.isEmpty {
                    let name = "g\(group)p"
                    lines.append("  set \(name) { type ipv4_addr . ipv4_addr . inet_proto . "
                                 + "inet_service . inet_service; "
                                 + "flags interval; elements = {")
                    lines += sets.ported.map { "    \($0)," }
                    lines += ["  } }"]
                    chain.append("    ip saddr . ip daddr . meta l4proto . th sport . th dport @\(name) \(verdict)")
                }
                chain += sets.overlapping.map { "    \(Self.match($0)) \(verdict)" }
            }
            start = end
        }
        lines += chain + ["  }", "}", ""]
        return lines.joined(separator: "\n")
    }

    /// One rule's match, as the SPD matches: ports exist for TCP and UDP only.
    static func match(_ selector: TrafficSelector) -> String {
        var match = "ip saddr \(selector.source) ip daddr \(selector.destination)"
        if let proto = selector.proto { match += " meta l4proto \(proto)" }
        if selector.sourcePort != nil || selector.destinationPort != nil {
            if selector.proto == nil { match += " meta l4proto { 6, 17 }" }
            if let port = selector.sourcePort { match += " th sport \(port)" }
            if let port = selector.destinationPort { match += " th dport \(port)" }
        }
        return match
    }
}

/// A group of same-verdict incoming-check selectors as nftables set elements: without ports
/// (`source . destination . protocol`, any protocol being 0-255) and with them (`... . sport .
/// dport`, any port being 0-65535, "any protocol" with ports being TCP and UDP). nftables refuses
/// overlapping elements in one set, so an element that might overlap one already placed stays a
/// rule of its own (`overlapping`), which the same verdict makes equivalent. Two elements overlap
/// only if their destinations nest and their sources nest: an element placed earlier with a
/// destination and a source containing the new one's is found by looking up the new one's
/// prefixes cut to the lengths the group uses (a handful); one whose destination or source
/// contains a placed element's is never put in a set. Linear in the group, so 100,000 policies
/// (whose mirrored selectors often share one destination) cost no search per element.
struct IncomingCheckSets {
    /// Below this, a group stays plain rules (small configurations read as before).
    static let minimumSetSize = 8

    private(set) var plain: [String] = []
    private(set) var ported: [String] = []
    private(set) var overlapping: [TrafficSelector] = []

    private struct Element {
        var proto: UInt8?
        var ports: (UInt16?, UInt16?)?
    }
    private struct Key: Hashable {
        var address: UInt32, length: Int
        init(_ p: IPv4Prefix, cutTo length: Int) {
            address = p.address.value & IPv4Prefix.mask(length); self.length = length
        }
    }
    private struct Pair: Hashable { var destination: Key, source: Key }

    init(_ selectors: [TrafficSelector]) {
        let destinationLengths = Set(selectors.map(\.destination.length)).sorted()
        let sourceLengths = Set(selectors.map(\.source.length)).sorted()
        var placed: [Pair: [Element]] = [:]
        // Proper ancestors of placed prefixes, at the lengths the group uses.
        var destinationAncestors: Set<Key> = [], sourceAncestors: Set<Key> = []
        for s in selectors {
            let d = s.destination, src = s.source
            let hasPorts = s.sourcePort != nil || s.destinationPort != nil
            let element = Element(proto: s.proto, ports: hasPorts ? (s.sourcePort, s.destinationPort) : nil)
            var conflict = destinationAncestors.contains(Key(d, cutTo: d.length))
                || sourceAncestors.contains(Key(src, cutTo: src.length))
            search: for dl in destinationLengths where !conflict && dl <= d.length {
                for sl in sourceLengths where sl <= src.length {
                    let pair = Pair(destination: Key(d, cutTo: dl), source: Key(src, cutTo: sl))
                    if placed[pair]?.contains(where: { Self.overlap($0, element) }) == true {
                        conflict = true
                        break search
                    }
                }
            }
            if conflict {
                overlapping.append(s)
                continue
            }
            placed[Pair(destination: Key(d, cutTo: d.length), source: Key(src, cutTo: src.length)), default: []]
                .append(element)
            for l in destinationLengths where l < d.length { destinationAncestors.insert(Key(d, cutTo: l)) }
            for l in sourceLengths where l < src.length { sourceAncestors.insert(Key(src, cutTo: l)) }
            let addresses = "\(src) . \(d)"
            if hasPorts {
                for proto in s.proto.map({ [$0] }) ?? [6, 17] {
                    ported.append(
                        "\(addresses) . \(proto) . \(Self.port(s.sourcePort)) . \(Self.port(s.destinationPort))")
                }
            } else {
                plain.append("\(addresses) . \(s.proto.map(String.init) ?? "0-255")")
            }
        }
    }

    private static func port(_ p: UInt16?) -> String { p.map(String.init) ?? "0-65535" }

    /// Whether two elements whose addresses nest could meet: protocols and ports.
    private static func overlap(_ a: Element, _ b: Element) -> Bool {
        if let p = a.proto, let q = b.proto, p != q { return false }
        switch (a.ports, b.ports) {
        case (nil, nil): return true
        case (let x?, let y?):
            if let p = x.0, let q = y.0, p != q { return false }
            if let p = x.1, let q = y.1, p != q { return false }
            return true
        default:
            // One in the set without ports, the other in the set with them: different sets.
            return false
        }
    }
}
