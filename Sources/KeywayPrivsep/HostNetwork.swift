import KeywayAudit
import KeywaySystem
import KeywayTrust
import KeywayVocabulary

/// keywayd's changes to the host's network configuration: the routing rule and table that send
/// protected destinations into the TUN device, and the firewall table for the incoming policy
/// check. Done with iproute2's `ip` and nftables' `nft`; all of it is undone at shutdown.
final class HostNetwork {
    private let settings: SupervisorSettings
    private let audit: AuditLog
    private(set) var tunName = ""
    /// Installed routes and their preferred source (empty: none).
    private var routes: [String: String] = [:]
    private var lastRules: [IncomingCheckRule]?
    private lazy var ipTool: String? = Self.find("ip")
    private lazy var nftTool: String? = Self.find("nft")

    init(settings: SupervisorSettings, audit: AuditLog) {
        self.settings = settings
        self.audit = audit
    }

    private static func find(_ name: String) -> String? {
        ["/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"].map { $0 + name }.first(where: Files.isExecutable)
    }

    private var table: String { String(settings.routeTable) }
    private var mark: String { String(settings.bypassMark) }
    /// nftables names: letters, digits and underscores.
    var filterTable: String { "keyway_" + String(tunName.map { $0.isLetter || $0.isNumber ? $0 : "_" }) }
    private var filterPath: String { settings.runDirectory + "/incoming.nft" }

    func setUp(tunName: String) throws(SupervisorError) {
        self.tunName = tunName
        guard ipTool != nil else { throw SupervisorError("finding the ip tool (iproute2)", SystemError("ip", errno: .noSuchFileOrDirectory)) }
        // Unmarked packets (plaintext) consult Keyway's table first; marked ones (our ESP/AH/IKE) never do.
        _ = ip(["rule", "del", "not", "fwmark", mark, "table", table])
        guard ip(["rule", "add", "not", "fwmark", mark, "table", table, "priority", "32000"]) else {
            throw SupervisorError("adding the routing rule", SystemError("ip rule", errno: .ioError))
        }
        _ = ip(["route", "flush", "table", table])
        // A longer TUN queue absorbs a TCP window's burst while the datapath is busy.
        _ = ip(["link", "set", "dev", tunName, "txqueuelen", "4096"])
        if nftTool == nil {
            audit.event(.error, msgID: "incoming-check", "nft (nftables) not found: the incoming policy check is NOT enforced")
        }
        // Start from no filter: a stale table from a crashed run would drop traffic no SA covers.
        removeFilter()
    }

    func tearDown() {
        _ = ip(["route", "flush", "table", table])
        _ = ip(["rule", "del", "not", "fwmark", mark, "table", table])
        removeFilter()
    }

    private func ip(_ arguments: [String]) -> Bool {
        guard let tool = ipTool else { return false }
        return Processes.run(tool, arguments) == .exited(0)
    }

    /// The whole wanted set: only ever via our own TUN device, in our own table. A route is
    /// written again only when it is new or its preferred source changed.
    func applyRoutes(_ list: [HostRoute]) {
        var wanted: [String: String] = [:]
        for r in list { wanted[r.destination.description] = r.source?.description ?? "" }
        for r in Set(routes.keys).subtracting(wanted.keys) { _ = ip(["route", "del", r, "dev", tunName, "table", table]) }
        for (r, source) in wanted where routes[r] != source {
            let plain = ["route", "replace", r, "dev", tunName, "table", table]
            // A source that is not (yet) one of ours is refused by the kernel: the route goes in without it.
            if !(source.isEmpty ? ip(plain) : (ip(plain + ["src", source]) || ip(plain))) {
                audit.event(.error, msgID: "route", "could not add route \(r) via \(tunName)")
            }
        }
        routes = wanted
        audit.event(.informational, msgID: "route", "routes into \(tunName) updated", [("routes", routes.keys.sorted().joined(separator: " "))])
    }

    /// Replaces the incoming-check table in one nftables transaction.
    func applyIncomingCheck(_ rules: [IncomingCheckRule]) {
        guard rules != lastRules, let nft = nftTool else { return }
        lastRules = rules
        if rules.isEmpty { removeFilter(); return }
        let script = Self.script(table: filterTable, tun: tunName, rules: rules)
        do { try Files.writeAtomically(filterPath, Array(script.utf8), mode: 0o600) } catch {
            audit.event(.error, msgID: "incoming-check", "could not write the nftables script: \(error)")
            return
        }
        if Processes.run(nft, ["-f", filterPath]) == .exited(0) {
            audit.event(.informational, msgID: "incoming-check", "incoming policy check updated",
                        [("rules", String(rules.count)), ("drops", String(rules.filter(\.drop).count))])
        } else {
            audit.event(.error, msgID: "incoming-check", "nft refused the incoming policy check; it is NOT enforced", [("table", filterTable)])
        }
    }

    private func removeFilter() {
        guard let nft = nftTool else { return }
        // Adding first makes the delete succeed whether or not the table existed.
        let script = "table ip \(filterTable)\ndelete table ip \(filterTable)\n"
        if (try? Files.writeAtomically(filterPath, Array(script.utf8), mode: 0o600)) != nil {
            _ = Processes.run(nft, ["-f", filterPath])
        }
    }

    /// Before routing: what came in through our TUN device was decrypted by us; ESP, AH and IKE
    /// are never subject to the check (the manual exempts UDP 500); then the SPD's rules in order.
    static func script(table: String, tun: String, rules: [IncomingCheckRule]) -> String {
        var lines = [
            "table ip \(table)",
            "delete table ip \(table)",
            "table ip \(table) {",
            "  chain incoming {",
            "    type filter hook prerouting priority -150; policy accept;",
            "    iifname \"\(tun)\" accept",
            "    meta l4proto { esp, ah } accept",
            "    udp dport { 500, 4500 } accept",
        ]
        for r in rules.prefix(IncomingCheckPlan.maximumRules) {
            let sel = r.selector
            var match = "ip saddr \(sel.source) ip daddr \(sel.destination)"
            if let proto = sel.proto { match += " meta l4proto \(proto)" }
            if sel.sourcePort != nil || sel.destinationPort != nil {
                // Ports exist for TCP and UDP only; the SPD matches them the same way.
                if sel.proto == nil { match += " meta l4proto { tcp, udp }" }
                if let p = sel.sourcePort { match += " th sport \(p)" }
                if let p = sel.destinationPort { match += " th dport \(p)" }
            }
            lines.append("    \(match) \(r.drop ? "counter drop" : "accept")")
        }
        lines += ["  }", "}", ""]
        return lines.joined(separator: "\n")
    }
}
