/// `print`, `print detail|stats|count-only [where ...] [show-sensitive]` and `export`.
extension Executor {
    struct Row {
        var flags: String
        var id: Int
        var fields: [(String, String)]
    }

    mutating func print(_ cmd: ParsedCommand, _ menu: MenuTree, _ path: [String], _ config: inout Configuration,
                        _ session: inout Session, _ out: inout CommandOutput) throws(ConfigError) {
        var mode = "plain"
        var showSensitive = false
        var follow: String?
        let isLog = menu.kind == .log
        let options = isLog ? ["count-only", "follow", "follow-only", "brief", "without-paging", "terse", "detail"]
            : ["detail", "stats", "count-only", "show-sensitive", "brief", "without-paging", "terse"]
        for (arg, position) in cmd.positional {
            guard let word = arg.text, let option = Schema.resolve(word, options) else {
                let expected = isLog ? "follow, follow-only, count-only or where"
                    : "detail, stats, count-only, show-sensitive or where"
                throw ConfigError("unknown print option '\(arg.text ?? "[...]")': expected \(expected)", at: position)
            }
            switch option {
            case "follow", "follow-only": follow = option
            case "show-sensitive":
                guard session.mayShowSensitive else {
                    throw ConfigError("permission denied: show-sensitive needs an administrator (root or group keyway)",
                                      at: position)
                }
                showSensitive = true
            case "without-paging", "brief", "terse": break
            default: mode = option
            }
        }
        if let arg = cmd.named.first {
            throw ConfigError(
                "unexpected '\(arg.name)=': print takes detail, stats, count-only, show-sensitive or where",
                at: arg.position)
        }
        guard let kind = menu.kind else {
            throw ConfigError("nothing to print here: go into a menu such as /ip ipsec policy", at: cmd.verbPosition)
        }
        // RouterOS prints the legend even when the list is empty.
        var flagsLegend: String
        switch kind {
        case .policy: flagsLegend = "Flags: X - disabled, D - dynamic, I - inactive"
        case .proposal: flagsLegend = "Flags: X - disabled, * - default"
        case .peer, .manualSA: flagsLegend = "Flags: X - disabled"
        default: flagsLegend = ""
        }
        var rows: [Row] = []
        switch kind {
        case .log:
            let all = runtime.logEntries()
            let shown = all.filter { LogView.matches($0, cmd.condition) }
            if mode == "count-only" {
                guard follow == nil else { throw ConfigError("count-only cannot follow", at: cmd.verbPosition) }
                out.text += "\(shown.count)\n"
                out.json.append("{\"count\":\(shown.count)}")
                return
            }
            let initial = follow == "follow-only" ? [] : shown
            out.text += initial.map { LogView.line($0) + "\n" }.joined()
            if follow != nil {
                // Following, JSON is one object per line, so that each new event is a line of its own.
                out.json += initial.map(LogView.json)
                out.follow = LogFollow(condition: cmd.condition, after: all.last?.sequence ?? 0,
                                       json: false)
            } else {
                out.json.append("[" + initial.map(LogView.json).joined(separator: ",") + "]")
            }
            return
        case .policy, .peer, .proposal, .manualSA:
            let schema = Schema.properties(kind)
            let items = (kind == .policy ? config.orderedPolicies + runtime.generatedPolicies() : config.items(kind))
                .filter { matches($0, cmd.condition, kind, config) }
            for (i, item) in items.enumerated() {
                if i % 2048 == 2047 { progress() }
                var flags = item.disabled ? "X" : ""
                var fields: [(String, String)] = []
                switch kind {
                case .policy:
                    let reason = config.inactiveReason(item)
                    if item.dynamic { flags += "D" }
                    if reason != nil { flags += "I" }
                    if mode == "stats" {
                        for n in ["src-address", "dst-address", "protocol"] {
                            if let spec = schema.first(where: { $0.name == n }) {
                                fields.append((n, Schema.format(item.value(n, in: schema), spec, showSensitive: false)))
                            }
                        }
                        fields += runtime.policyStats(id: item.id)
                    } else {
                        fields = schema.filter { mode == "detail" || $0.inPrint }.map {
                            ($0.name, Schema.format(item.value($0.name, in: schema), $0, showSensitive: showSensitive))
                        }
                        if mode == "detail", let reason { fields.append(("inactive-reason", Schema.quote(reason))) }
                    }
                case .proposal:
                    if item.builtIn { flags += "*" }
                    fields = schema.map {
                        ($0.name, Schema.format(item.value($0.name, in: schema), $0, showSensitive: showSensitive))
                    }
                default:
                    fields = schema.filter { mode == "detail" || $0.inPrint || item.values[$0.name] != nil }
                        .map {
                            ($0.name, Schema.format(item.value($0.name, in: schema), $0, showSensitive: showSensitive))
                        }
                    // The manual's legend, with I only where a peer is unusable (a store from before a rule).
                    if kind == .peer, mode == "detail", item.value("exchange-mode", in: schema).text == "ike2" {
                        fields.append(("note", Schema.quote("proposal-check does not apply to ike2: IKEv2 does not "
                                                            + "negotiate lifetimes, each side rekeys on its own")))
                    }
                    if kind == .peer, let reason = config.peerUnusableReason(item) {
                        flags += "I"
                        if mode == "detail" { fields.append(("inactive-reason", Schema.quote(reason))) }
                    }
                    if flags.contains("I") { flagsLegend = "Flags: X - disabled, I - inactive" }
                }
                rows.append(Row(flags: flags, id: item.id, fields: fields))
            }
            session.numbering[kindName(kind)] = rows.map(\.id)
        case .installedSA:
            flagsLegend = "Flags: A - AH, E - ESP, P - pfs"
            for (i, sa) in runtime.installedSAs(showSensitive: showSensitive).enumerated() {
                rows.append(Row(flags: sa.flags, id: i, fields: sa.fields))
            }
        case .remotePeers:
            for (i, peer) in runtime.remotePeers().enumerated() { rows.append(Row(flags: "", id: i, fields: peer)) }
        case .statistics:
            let stats = runtime.statistics()
            out.text += stats.map { "\(String(repeating: " ", count: max(0, 26 - $0.0.count)))\($0.0): \($0.1)" }
                .joined(separator: "\n") + "\n"
            out.json.append("{" + stats.map { "\(jsonString($0.0)):\($0.1)" }.joined(separator: ",") + "}")
            return
        case .unmanagedFirewall:
            return
        }
        if mode == "count-only" {
            out.text += "\(rows.count)\n"
            out.json.append("{\"count\":\(rows.count)}")
            return
        }
        out.text += render(rows, legend: flagsLegend)
        out.json.append("[" + rows.map { row in
            "{" + ([("\".id\"", jsonString("*" + String(row.id, radix: 16, uppercase: true))),
                    ("\"flags\"", jsonString(row.flags))]
                   + row.fields.map { (jsonString($0.0), jsonString(unquote($0.1))) }).map { "\($0.0):\($0.1)" }
                       .joined(separator: ",") + "}"
        }.joined(separator: ",") + "]")
    }

    /// ` 0 XI src-address=... dst-address=...` wrapped at 80 columns, continuation indented.
    func render(_ rows: [Row], legend: String) -> String {
        var text = legend.isEmpty ? "" : legend + "\n"
        for (index, row) in rows.enumerated() {
            let number = String(index)
            var prefix = String(repeating: " ", count: max(0, 2 - number.count)) + number + " " + row.flags
            prefix += String(repeating: " ", count: max(1, 5 - prefix.count))
            var line = prefix
            let indent = String(repeating: " ", count: prefix.count)
            for (name, value) in row.fields {
                let token = "\(name)=\(value)"
                if line.count > indent.count && line.count + 1 + token.count > 79 {
                    text += line + "\n"
                    line = indent + token
                } else {
                    line += (line.count > indent.count ? " " : "") + token
                }
            }
            text += line + "\n\n"
        }
        return text
    }

    func export(_ cmd: ParsedCommand, _ path: [String], _ config: Configuration, _ session: Session,
                _ out: inout CommandOutput) throws(ConfigError) {
        var showSensitive = false
        for (arg, position) in cmd.positional {
            guard arg.text.flatMap({
                Schema.resolve($0, ["show-sensitive", "hide-sensitive", "compact", "verbose"])
            }) != nil else {
                throw ConfigError("unknown export option '\(arg.text ?? "[...]")': expected show-sensitive",
                                  at: position)
            }
            if arg.text.flatMap({ Schema.resolve($0, ["show-sensitive", "hide-sensitive"]) }) == "show-sensitive" {
                guard session.mayShowSensitive else {
                    throw ConfigError("permission denied: show-sensitive needs an administrator (root or group keyway)",
                                      at: position)
                }
                showSensitive = true
            }
        }
        let menu = MenuTree.resolve(path)
        let kinds: [MenuKind] = menu?.kind.map { [$0] } ?? [.proposal, .manualSA, .peer, .policy]
        out.text += Exporter.export(config, kinds: kinds, showSensitive: showSensitive)
    }

    func unquote(_ s: String) -> String {
        guard s.hasPrefix("\""), s.hasSuffix("\""), s.count >= 2 else { return s }
        return (try? Parser.parse("x=" + s).first?.named.first?.value.text ?? nil) ?? String(s.dropFirst().dropLast())
    }
}

/// A JSON string literal for `s` (the console's --json output).
public func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 {
                let h = String(u.value, radix: 16); out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}

/// A script that, run on an empty appliance, rebuilds the configuration exactly.
public enum Exporter {
    public static func export(_ config: Configuration, kinds: [MenuKind] = [.proposal, .manualSA, .peer, .policy],
                              showSensitive: Bool) -> String {
        var text = "# Keyway configuration (RouterOS /ip ipsec syntax)\n"
        var hidden = false
        for kind in kinds {
            let schema = Schema.properties(kind)
            let items = config.items(kind).filter { !$0.dynamic }
            let menuName: String
            switch kind {
            case .policy: menuName = "policy"
            case .peer: menuName = "peer"
            case .proposal: menuName = "proposal"
            case .manualSA: menuName = "manual-sa"
            default: continue
            }
            if items.isEmpty
               || (kind == .proposal && items.count == 1 && items[0].values.count == 1 && !items[0].disabled) {
                continue
            }
            text += "/ip ipsec \(menuName)\n"
            for item in items {
                var args: [String] = []
                for spec in schema {
                    let v = item.value(spec.name, in: schema)
                    // Policies always carry their addresses: add derives them otherwise.
                    let always = kind == .policy && (spec.name == "src-address" || spec.name == "dst-address")
                    if spec.name == "name" && item.builtIn { continue }
                    guard always || v != spec.defaultValue || spec.name == "name" else { continue }
                    if spec.sensitive && !showSensitive { hidden = true; continue }
                    var s = Schema.format(v, spec, showSensitive: true)
                    if case .choices = spec.type, s.isEmpty { s = "\"\"" }
                    args.append("\(spec.name)=\(s)")
                }
                if item.disabled { args.append("disabled=yes") }
                if item.builtIn {
                    if !args.isEmpty { text += "set [ find default=yes ] " + args.joined(separator: " ") + "\n" }
                } else {
                    text += "add " + args.joined(separator: " ") + "\n"
                }
            }
        }
        if hidden { text += "# secrets and keys are hidden: `export show-sensitive` includes them\n" }
        return text
    }
}
