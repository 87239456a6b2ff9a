/// Tab completion and `?` help for the console: menus, commands, property names and values,
/// print options. Pure: the console and bash's completion both ask it.
public enum Completion {
    /// Where a partly typed line stands: its menu, its command, and the word being typed.
    struct Context {
        var menu: MenuTree?
        var menuPath: [String]
        var verb: String?
        var current: String
    }

    static func context(_ line: String, path: [String]) -> Context {
        let words = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        let current = words.last ?? ""
        var menuPath = line.hasPrefix("/") ? [] : path
        var menu = MenuTree.resolve(menuPath)
        var verb: String?
        for w in words.dropLast() where !w.isEmpty {
            let word = w.hasPrefix("/") ? String(w.dropFirst()) : w
            if w.hasPrefix("/") && menuPath == path { menuPath = []; menu = MenuTree.root }
            if verb == nil, let child = menu?.child(word) {
                menu = child; menuPath.append(child.name)
            } else if verb == nil {
                verb = word
            }
        }
        if let v = verb, let m = menu { verb = Schema.resolve(v, Executor.verbs(for: m)) ?? v }
        return Context(menu: menu, menuPath: menuPath, verb: verb, current: current)
    }

    static func printOptions(_ menu: MenuTree?) -> [String] {
        menu?.kind == .log ? ["follow", "follow-only", "count-only", "where"]
            : ["detail", "stats", "count-only", "show-sensitive", "where"]
    }

    /// Candidates for the word being typed, given the console path and the words before it.
    public static func candidates(for line: String, path: [String]) -> [String] {
        let c = context(line, path: path)
        let prefix = c.current.hasPrefix("/") ? String(c.current.dropFirst()) : c.current
        var options: [String]
        if let v = c.verb, ["add", "set"].contains(v), let kind = c.menu?.kind {
            options = Schema.properties(kind).map { $0.name + "=" }
        } else if c.verb == "print" {
            options = printOptions(c.menu)
        } else if c.verb != nil {
            options = []
        } else {
            options = (c.menu?.children.map(\.name) ?? []) + (c.menu.map { Executor.verbs(for: $0) } ?? [])
        }
        return options.filter { $0.hasPrefix(prefix) }.map { (c.current.hasPrefix("/") ? "/" : "") + $0 }
    }

    public enum TabAnswer: Equatable, Sendable {
        case nothing
        case insert(String)
        case show([String])
    }

    /// What Tab does at the end of `line`: complete the one candidate (a space after it, unless
    /// it ends in `=`), or as much as all candidates share, or list them.
    public static func tab(_ line: String, path: [String]) -> TabAnswer {
        let options = candidates(for: line, path: path)
        let current = line.split(separator: " ", omittingEmptySubsequences: false).last.map(String.init) ?? ""
        if options.count == 1, let only = options.first {
            return .insert(String(only.dropFirst(current.count)) + (only.hasSuffix("=") ? "" : " "))
        }
        guard let first = options.first else { return .nothing }
        let common = options.dropFirst().reduce(first) { a, b in String(zip(a, b).prefix { $0 == $1 }.map(\.0)) }
        if common.count > current.count { return .insert(String(common.dropFirst(current.count))) }
        return .show(options)
    }

    static let verbHelp: [String: String] = [
        "add": "create a new item", "set": "change the properties of items", "remove": "remove items",
        "enable": "enable items", "disable": "disable items (kept, not used)", "print": "show items",
        "export": "print a script that rebuilds this configuration",
        "flush": "remove installed SAs (sa-type=ah|esp|all)",
    ]

    static let menuHelp: [String: String] = [
        "ip": "IP settings", "ipsec": "IPsec", "policy": "which traffic is protected, and how",
        "peer": "IKE peers: addresses, authentication, phase 1", "proposal": "phase 2 algorithms and lifetimes",
        "manual-sa": "manually keyed SAs", "installed-sa": "SAs in use now (read-only, flush)",
        "remote-peers": "IKE peers and their state now", "statistics": "IPsec error counters",
        "firewall": "not managed by Keyway (nftables)", "nat": "not managed by Keyway",
        "filter": "not managed by Keyway",
        "log": "recent audit events of every Keyway process",
    ]

    static let printHelp: [String: String] = [
        "detail": "every property", "stats": "counters", "count-only": "only the number of items",
        "show-sensitive": "secrets and keys too (administrators)", "where": "only items that match a condition",
        "follow": "then new events as they happen, until Ctrl-C", "follow-only": "only new events, until Ctrl-C",
    ]

    /// RouterOS's `?`: what may come next at the end of `line`, one item a line with what it does.
    public static func help(for line: String, path: [String]) -> String {
        let c = context(line, path: path)
        func rows(_ items: [(String, String)]) -> String {
            let width = min(24, (items.map(\.0.count).max() ?? 0) + 2)
            return items.map { name, what in
                name + String(repeating: " ", count: max(2, width - name.count)) + "-- " + what
            }.joined(separator: "\n")
        }
        if let v = c.verb, ["add", "set"].contains(v), let kind = c.menu?.kind {
            let schema = Schema.properties(kind)
            if let eq = c.current.firstIndex(of: "="),
               let spec = schema.first(where: { $0.name == String(c.current[..<eq]) })
                ?? schema.first(where: { $0.name.hasPrefix(String(c.current[..<eq])) }) {
                return "\(spec.name): \(describe(spec))"
            }
            let named = schema.filter { $0.name.hasPrefix(c.current) }.map { ($0.name, describe($0)) }
            return rows(named
                        + (c.current.isEmpty || "disabled".hasPrefix(c.current) ? [("disabled", "yes or no")] : []))
        }
        if c.verb == "print" {
            var items = printOptions(c.menu).map { ($0, printHelp[$0] ?? "") }
            if c.menu?.kind == .log {
                items.append(("properties", LogView.properties.joined(separator: ", ") + " (`~` tests for text)"))
            } else if let kind = c.menu?.kind, !Schema.properties(kind).isEmpty {
                items.append(("properties", Schema.properties(kind).map(\.name).joined(separator: ", ")))
            }
            return rows(items)
        }
        if let v = c.verb {
            return "\(v): \(verbHelp[v] ?? "no such command here")"
                + (["set", "remove", "enable", "disable"].contains(v)
                   ? "; name the items: numbers from print, a name, or [find ...]" : "")
        }
        guard let menu = c.menu else { return "no such menu" }
        let menus = menu.children.filter { $0.name.hasPrefix(c.current) }
            .map { ($0.name + "/", menuHelp[$0.name] ?? "") }
        let commands = Executor.verbs(for: menu).filter { $0.hasPrefix(c.current) }.map { ($0, verbHelp[$0] ?? "") }
        return rows(menus + commands)
    }

    /// What a property takes.
    static func describe(_ spec: PropertySpec) -> String {
        let what: String
        switch spec.type {
        case .address: what = "address such as 10.1.0.0/24 (peer: 192.0.2.2/32:500)"
        case .ip: what = "IPv4 address"
        case .choice(let options): what = "one of " + options.joined(separator: ", ")
        case .choices(let options): what = "comma-separated list of " + options.joined(separator: ", ")
        case .boolean: what = "yes or no"
        case .integer(let r): what = "whole number \(r.lowerBound) to \(r.upperBound)"
        case .duration(let b): what = b.expected
        case .reference(let kind, _): what = "name of a " + (kind == .proposal ? "proposal" : "manual-sa")
        case .name: what = "name (letters, digits, '-', '_', '.')"
        case .secretText: what = "text (secret: hidden in print and export)"
        case .hexKeyPair: what = "hex key, or incoming/outgoing keys as KEY/KEY (secret)"
        case .spiPair: what = "SPI 0x100 to 0xffffffff, or incoming/outgoing as SPI/SPI"
        case .ipProtocol: what = "protocol name (all, tcp, udp, icmp, ...) or number 0-255"
        case .tcpMSS:
            what = "clamp-to-pmtu (SYNs' MSS lowered to fit the path), off, or an MSS 88 to 65495 (at most that)"
        case .identity: what = "auto, address:IP, fqdn:NAME, user-fqdn:USER@NAME or key-id:TEXT"
        }
        return what + "; default " + Schema.format(spec.defaultValue, spec, showSensitive: false)
    }
}
