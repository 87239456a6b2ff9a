import KeywayVocabulary

/// Per-connection console state: the current path and the item numbers of the last print.
public struct Session: Sendable {
    public var path: [String] = []
    public var numbering: [String: [Int]] = [:]
    /// Members of keyway-read (and anyone not root or in keyway) may only look.
    public var canModify: Bool
    /// Read-only users never see secrets, even if they ask.
    public var mayShowSensitive: Bool

    public init(canModify: Bool, mayShowSensitive: Bool) {
        self.canModify = canModify
        self.mayShowSensitive = mayShowSensitive
    }

    /// The console prompt's path, e.g. `ip ipsec policy` (RouterOS style, no leading slash).
    public var promptPath: String { path.joined(separator: " ") }
}

public struct CommandOutput: Sendable {
    public var text = ""
    /// JSON for print commands (an array per print; several prints give several lines).
    public var json: [String] = []
    public var warnings: [String] = []
    /// Loading a stored configuration only: what was clamped or marked unusable instead of being
    /// refused (values a store written before a rule existed may hold). Audited at load.
    public var repairs: [String] = []
    /// One line per change, secrets masked: what the audit log records.
    public var changes: [String] = []
    /// `/log print follow`: the connection keeps receiving matching events after this answer.
    public var follow: LogFollow?
    public var changed: Bool { !changes.isEmpty }
}

/// Where commands come from: an operator (every rule refuses), or the configuration store,
/// which must load even if written before a rule existed (it clamps and marks instead).
public enum CommandSource: Sendable, Equatable {
    case operatorInput
    case store
}

/// Runs RouterOS commands against a configuration. A script is one transaction: if any
/// command fails, nothing of it is applied (the caller's configuration is untouched).
public struct Executor {
    public var runtime: RuntimeView
    public var source = CommandSource.operatorInput
    /// Why this build cannot use an algorithm (nil: it can). The monitor passes OpenSSL's answer
    /// (DES needs the legacy provider); this module itself links no crypto library.
    public var unavailability: @Sendable (EncryptionAlgorithm) -> String?
    /// Called now and then during long work (a script of 100,000 commands, a printout of as many
    /// items): the monitor answers keywayd's pings from it, so that it is not taken for hung.
    public var progress: () -> Void = {}

    public init(runtime: RuntimeView = EmptyRuntime(),
                unavailability: @escaping @Sendable (EncryptionAlgorithm) -> String? = { _ in nil }) {
        self.runtime = runtime
        self.unavailability = unavailability
    }

    public mutating func run(_ script: String, on config: inout Configuration,
                             session: inout Session) throws(ConfigError) -> CommandOutput {
        let commands = try Parser.parse(script, path: session.path, progress: progress)
        var working = config
        var workingSession = session
        var output = CommandOutput()
        for (i, command) in commands.enumerated() {
            if i % 512 == 511 { progress() }
            try execute(command, &working, &workingSession, &output)
        }
        config = working
        session = workingSession
        return output
    }

    // MARK: - dispatch

    private mutating func execute(_ cmd: ParsedCommand, _ config: inout Configuration, _ session: inout Session,
                                  _ out: inout CommandOutput) throws(ConfigError) {
        var path = cmd.absolute ? [] : (cmd.promptPath ?? session.path)
        for element in cmd.path {
            if element == ".." {
                if !path.isEmpty { path.removeLast() }
            } else if element == "/" {
                path = []
            } else {
                path.append(element)
            }
        }
        guard let menu = MenuTree.resolve(path) else {
            throw ConfigError("no such menu /\(path.joined(separator: " "))", at: cmd.position)
        }
        if menu.kind == .unmanagedFirewall {
            throw ConfigError("Keyway does not manage the firewall: "
                              + "/ip firewall \(path.last ?? "") is not a Keyway menu. "
                              + "Configure NAT on the appliance with nftables, "
                              + "e.g. `nft add rule ip nat postrouting oifname \"public\" masquerade`, "
                              + "and exempt the protected subnets before it, "
                              + "e.g. `nft insert rule ip nat postrouting "
                              + "ip saddr 10.1.0.0/24 ip daddr 10.2.0.0/24 accept`",
                              at: cmd.position)
        }
        guard let verb = cmd.verb else {
            if let first = cmd.named.first {
                if menu.kind == .proposal {
                    let args = cmd.named.map { "\($0.name)=\($0.value.text ?? "...")" }.joined(separator: " ")
                    throw ConfigError("expected a command before '\(first.name)=': to change the built-in proposal "
                                      + "type `/ip ipsec proposal set default \(args)`", at: first.position)
                }
                throw ConfigError(
                    "expected a command (\(verbs(for: menu).joined(separator: ", "))) before '\(first.name)='",
                    at: first.position)
            }
            if let first = cmd.positional.first {
                throw ConfigError("no such menu or command '\(first.value.text ?? "[...]")' in "
                                  + "/\(path.joined(separator: " ")): expected one of "
                                  + "\((menu.children.map(\.name) + verbs(for: menu)).joined(separator: ", "))",
                                  at: first.position)
            }
            session.path = path    // a path alone changes the console's current menu
            return
        }
        let options = verbs(for: menu)
        guard let resolved = Schema.resolve(verb, options) else {
            let what = menu.children.isEmpty ? "command" : "menu or command"
            throw ConfigError("no such \(what) '\(verb)' in /\(path.joined(separator: " ")): expected one of "
                              + "\((menu.children.map(\.name) + options).joined(separator: ", "))",
                              at: cmd.verbPosition)
        }
        let modifying = ["add", "set", "remove", "enable", "disable", "flush"].contains(resolved)
        if modifying && !session.canModify {
            throw ConfigError(
                "permission denied: '\(resolved)' changes the configuration, and this user may only look (keyway-read)",
                at: cmd.verbPosition)
        }
        let kind = menu.kind
        let cmd = try resolvingConditions(cmd, kind, session)
        switch (resolved, kind) {
        case ("print", _): try print(cmd, menu, path, &config, &session, &out)
        case ("export", _): try export(cmd, path, config, session, &out)
        case ("add", let k?): try add(cmd, k, &config, &out)
        case ("set", let k?): try set(cmd, k, &config, session, &out)
        case ("remove", let k?): try remove(cmd, k, &config, session, &out)
        case ("enable", let k?), ("disable", let k?): try enable(cmd, k, resolved == "enable", &config, session, &out)
        case ("flush", .installedSA?): try flush(cmd, &out)
        default: throw ConfigError("'\(resolved)' does not apply here", at: cmd.verbPosition)
        }
    }

    static func limit(_ kind: MenuKind) -> Int? {
        switch kind {
        case .policy: return ScaleLimits.policies
        case .peer: return ScaleLimits.peers
        case .manualSA: return ScaleLimits.manualSAs
        case .proposal: return 1024
        default: return nil
        }
    }

    private func verbs(for menu: MenuTree) -> [String] { Self.verbs(for: menu) }

    /// The commands a menu takes.
    public static func verbs(for menu: MenuTree) -> [String] {
        switch menu.kind {
        case .policy?, .peer?, .manualSA?, .proposal?:
            return ["add", "set", "remove", "enable", "disable", "print", "export"]
        case .installedSA?: return ["print", "flush"]
        case .remotePeers?, .statistics?, .log?: return ["print"]
        case .unmanagedFirewall?: return []
        case nil: return menu.name == "ipsec" || menu.name.isEmpty || menu.name == "ip" ? ["export"] : []
        }
    }

    // MARK: - add / set / remove / enable

    private func add(_ cmd: ParsedCommand, _ kind: MenuKind, _ config: inout Configuration,
                     _ out: inout CommandOutput) throws(ConfigError) {
        let schema = Schema.properties(kind)
        if let p = cmd.positional.first {
            throw ConfigError("unexpected '\(p.value.text ?? "[...]")': add takes name=value properties",
                              at: p.position)
        }
        var item = Item(id: config.nextID, values: [:])
        var given = Set<String>()
        for arg in cmd.named {
            if try applyFlag(arg, to: &item) { continue }
            let spec = try property(arg, schema, kind)
            item.values[spec.name] = try value(arg, spec, kind, &out)
            given.insert(spec.name)
        }
        if kind == .policy {
            // As the manual's printout shows: transport-mode addresses default to the SA endpoints.
            let s = Schema.policy
            if !given.contains("src-address"), case .ip(let a) = item.value("sa-src-address", in: s), a != .any {
                item.values["src-address"] = .address(AddressSpec(address: a, prefixLength: 32, port: nil))
            }
            if !given.contains("dst-address"), case .ip(let a) = item.value("sa-dst-address", in: s), a != .any {
                item.values["dst-address"] = .address(AddressSpec(address: a, prefixLength: 32, port: nil))
            }
        }
        if kind == .proposal || kind == .manualSA {
            guard let name = item.name, !name.isEmpty else {
                throw ConfigError("add needs name=", at: cmd.verbPosition)
            }
            if config.item(named: name, in: kind) != nil {
                throw ConfigError("a \(kindName(kind)) named \(name) already exists: use set", at: cmd.verbPosition)
            }
        }
        item.values = canonical(item.values, schema)
        try validate(item, kind, config, cmd.verbPosition, &out)
        // What the other processes are sized for (ScaleLimits): beyond it nothing could be pushed.
        if let limit = Self.limit(kind), config.items(kind).count >= limit {
            throw ConfigError("too many \(kindName(kind)) items: at most \(limit)", at: cmd.verbPosition)
        }
        config.nextID += 1
        config.append(item, to: kind)
        out.changes.append(auditText(cmd, kind, verb: "add"))
    }

    private func set(_ cmd: ParsedCommand, _ kind: MenuKind, _ config: inout Configuration, _ session: Session,
                     _ out: inout CommandOutput) throws(ConfigError) {
        let schema = Schema.properties(kind)
        let ids = try selectItems(cmd, kind, config, session)
        var list = config.items(kind)
        let positions = Dictionary(list.enumerated().map { ($0.element.id, $0.offset) },
                                   uniquingKeysWith: { a, _ in a })
        for id in ids {
            guard let index = positions[id] else { continue }
            var item = list[index]
            for arg in cmd.named {
                if try applyFlag(arg, to: &item) { continue }
                let spec = try property(arg, schema, kind)
                if spec.name == "name" && item.builtIn {
                    throw ConfigError("the built-in proposal default cannot be renamed", at: arg.position)
                }
                item.values[spec.name] = try value(arg, spec, kind, &out)
            }
            if kind == .proposal || kind == .manualSA, let name = item.name,
               list.contains(where: { $0.id != id && $0.name == name }) {
                throw ConfigError("a \(kindName(kind)) named \(name) already exists", at: cmd.verbPosition)
            }
            item.values = canonical(item.values, schema)
            try validate(item, kind, config, cmd.verbPosition, &out)
            list[index] = item
        }
        config.setItems(kind, list)
        out.changes.append(auditText(cmd, kind, verb: "set"))
    }

    private func remove(_ cmd: ParsedCommand, _ kind: MenuKind, _ config: inout Configuration, _ session: Session,
                        _ out: inout CommandOutput) throws(ConfigError) {
        let ids = Set(try selectItems(cmd, kind, config, session))
        let list = config.items(kind)
        if list.contains(where: { ids.contains($0.id) && $0.builtIn }) {
            throw ConfigError("the built-in proposal default cannot be removed (it can be changed with set)",
                              at: cmd.verbPosition)
        }
        if list.contains(where: { ids.contains($0.id) && $0.dynamic }) {
            throw ConfigError("dynamic policies belong to their SAs and go away with them; they cannot be removed",
                              at: cmd.verbPosition)
        }
        config.setItems(kind, list.filter { !ids.contains($0.id) })
        out.changes.append(auditText(cmd, kind, verb: "remove"))
    }

    private func enable(_ cmd: ParsedCommand, _ kind: MenuKind, _ on: Bool, _ config: inout Configuration,
                        _ session: Session, _ out: inout CommandOutput) throws(ConfigError) {
        let ids = Set(try selectItems(cmd, kind, config, session))
        config.setItems(kind,
                        config.items(kind).map { var i = $0; if ids.contains(i.id) { i.disabled = !on }; return i })
        out.changes.append(auditText(cmd, kind, verb: on ? "enable" : "disable"))
    }

    private mutating func flush(_ cmd: ParsedCommand, _ out: inout CommandOutput) throws(ConfigError) {
        var type = "all"
        for arg in cmd.named {
            guard Schema.resolve(arg.name, ["sa-type"]) != nil else {
                throw ConfigError("unknown argument '\(arg.name)' for flush: expected sa-type", at: arg.position)
            }
            guard let t = arg.value.text.flatMap({ Schema.resolve($0, ["ah", "esp", "all"]) }) else {
                throw ConfigError("invalid value for sa-type: expected one of ah, esp, all", at: arg.position)
            }
            type = t
        }
        let n = runtime.flush(saType: type)
        out.changes.append("/ip ipsec installed-sa flush sa-type=\(type) (\(n) SAs)")
    }

    /// Only values that differ from the default are stored: equal configurations compare equal.
    private func canonical(_ values: [String: Value], _ schema: [PropertySpec]) -> [String: Value] {
        values.filter { name, value in name == "name" || schema.first { $0.name == name }?.defaultValue != value }
    }

    /// `disabled=yes|no` is accepted by add and set on every list.
    private func applyFlag(_ arg: NamedArgument, to item: inout Item) throws(ConfigError) -> Bool {
        guard arg.name == "disabled" else { return false }
        guard let t = arg.value.text, let v = ["yes": true, "no": false, "true": true, "false": false][t] else {
            throw ConfigError("invalid value for disabled: expected yes or no", at: arg.position)
        }
        item.disabled = v
        return true
    }

    private func property(_ arg: NamedArgument, _ schema: [PropertySpec],
                          _ kind: MenuKind) throws(ConfigError) -> PropertySpec {
        if let exact = schema.first(where: { $0.name == arg.name }) { return exact }
        let matches = schema.filter { $0.name.hasPrefix(arg.name) }
        if matches.count == 1 { return matches[0] }
        if matches.count > 1 {
            throw ConfigError(
                "ambiguous property '\(arg.name)': could be \(matches.map(\.name).joined(separator: ", "))",
                at: arg.position)
        }
        throw ConfigError("unknown property '\(arg.name)' for /ip ipsec \(kindName(kind)): expected one of "
                          + "\(schema.map(\.name).joined(separator: ", ")), disabled", at: arg.position)
    }

    private func value(_ arg: NamedArgument, _ spec: PropertySpec, _ kind: MenuKind,
                       _ out: inout CommandOutput) throws(ConfigError) -> Value {
        guard let text = arg.value.text else {
            throw ConfigError("[find] cannot be a value of \(spec.name)", at: arg.position)
        }
        switch Schema.parse(text, for: spec) {
        case .success(let v): return v
        case .failure(let why):
            if source == .store, let nearest = why.nearest {
                let shown = Schema.format(nearest, spec, showSensitive: false)
                out.repairs.append("\(arg.position): /ip ipsec \(kindName(kind)) \(spec.name)=\(text) is out of range "
                                   + "(\(why.expected)); clamped to \(shown)")
                return nearest
            }
            let shown = spec.sensitive ? "" : " '\(text)'"
            throw ConfigError("invalid value\(shown) for \(spec.name): \(why.expected)", at: arg.position)
        }
    }

    /// Item-level checks: key lengths against algorithms, algorithm availability, weak choices.
    private func validate(_ item: Item, _ kind: MenuKind, _ config: Configuration, _ at: SourcePosition,
                          _ out: inout CommandOutput) throws(ConfigError) {
        switch kind {
        case .manualSA:
            let s = Schema.manualSA
            if let why = Configuration.manualCipherRefusal(item) {
                guard source == .store else { throw ConfigError(why, at: at) }
                out.repairs.append("\(at): manual-sa \(item.name ?? "?"): \(why); "
                                   + "the policies that use it are inactive until it changes")
            }
            if case .choice(let encName) = item.value("esp-enc-algorithm", in: s),
               let enc = EncryptionAlgorithm(rawValue: encName) {
                if let why = unavailability(enc) { throw ConfigError(why, at: at) }
                if case .pair(let a, let b) = item.value("esp-enc-key", in: s) {
                    for key in Set([a, b]) where !key.isEmpty && key.count / 2 != enc.keyMaterialLength {
                        throw ConfigError(
                            "esp-enc-key has \(key.count / 2) bytes; \(enc.rawValue) needs \(enc.keyMaterialLength)"
                            + (enc.saltLength > 0 ? " (\(enc.keyLength)-byte key and \(enc.saltLength)-byte salt)"
                               : ""),
                            at: at)
                    }
                }
            }
            for (algoName, keyName, spiName) in [("ah-algorithm", "ah-key", "ah-spi"),
                                                 ("esp-auth-algorithm", "esp-auth-key", "esp-spi")] {
                guard case .choice(let a) = item.value(algoName, in: s), let integ = IntegrityAlgorithm(rawValue: a),
                      case .pair(let k1, let k2) = item.value(keyName, in: s) else { continue }
                if case .pair(let s1, _) = item.value(spiName, in: s), s1 != "0", integ != .null, k1.isEmpty,
                   keyName == "ah-key" {
                    throw ConfigError("ah-spi is set but ah-key is empty: AH needs a key", at: at)
                }
                for key in Set([k1, k2]) where !key.isEmpty && key.count / 2 < integ.keyLength {
                    out.warnings.append("\(keyName) has \(key.count / 2) bytes, shorter than the \(integ.keyLength) "
                                        + "bytes \(integ.rawValue) is designed for")
                }
            }
        case .peer:
            let s = Schema.peer
            let address = Schema.format(item.value("address", in: s), s[0], showSensitive: false)
            if let why = config.peerUnusableReason(item) {
                guard source == .store else {
                    throw ConfigError("a pre-shared-key peer needs a secret: an empty one is no authentication "
                                      + "(set secret=, or use auth-method=rsa-signature)", at: at)
                }
                out.repairs.append("\(at): peer \(address): \(why); it is left out of IKE until then")
            }
            if case .boolean(true) = item.value("force-udp-encapsulation", in: s),
               case .boolean(false) = item.value("nat-traversal", in: s) {
                throw ConfigError("force-udp-encapsulation=yes needs nat-traversal=yes: ESP goes in UDP only "
                                  + "with a peer that agreed to NAT traversal", at: at)
            }
            if case .choice("aggressive") = item.value("exchange-mode", in: s),
               case .choice("pre-shared-key") = item.value("auth-method", in: s) {
                out.warnings.append("peer \(address): exchange-mode=aggressive with a pre-shared key sends a hash "
                                    + "of the secret that anyone who sees it can crack offline: "
                                    + "use main mode, or a long random secret")
            }
            let ike2 = item.value("exchange-mode", in: s).text == "ike2"
            if case .choice(let e) = item.value("enc-algorithm", in: s), let enc = EncryptionAlgorithm(rawValue: e) {
                if let why = unavailability(enc) { throw ConfigError(why, at: at) }
                if enc.isWeak { out.warnings.append("enc-algorithm=\(e) is weak") }
                if enc.isAEAD && !ike2 {
                    throw ConfigError("enc-algorithm=\(e) needs exchange-mode=ike2: AES-GCM protects IKEv2 messages "
                                      + "(RFC 5282); IKEv1's phase 1 encrypts with CBC ciphers", at: at)
                }
            }
            if case .choices(let groups) = item.value("dh-group", in: s) {
                for g in groups where DHGroup(name: g)?.isWeak == true {
                    out.warnings.append("dh-group=\(g) is weak: prefer modp2048 or ecp256 where the peer allows")
                }
                if !ike2, groups.contains("curve25519") {
                    throw ConfigError("dh-group=curve25519 needs exchange-mode=ike2 (RFC 8031 defines it for IKEv2)",
                                      at: at)
                }
                for g in groups where ike2 && g.hasPrefix("ec2n") {
                    out.warnings.append("dh-group=\(g) has no IKEv2 number (IANA reserves 3 and 4): "
                                        + "only another Keyway "
                                        + "will agree to it over ike2")
                }
                if !ike2, groups.count > 1 {
                    out.warnings.append("peer \(address): "
                                        + "exchange-mode=\(item.value("exchange-mode", in: s).text ?? "main") "
                                        + "proposes only the first dh-group (\(groups[0])); ike2 offers them all")
                }
            }
            if case .choice("md5") = item.value("hash-algorithm", in: s) {
                out.warnings.append("hash-algorithm=md5 is weak")
            }
            if case .choice("rsa-signature") = item.value("auth-method", in: s),
               item.value("certificate", in: s).text == "none"
                   || item.value("remote-certificate", in: s).text == "none" {
                throw ConfigError("auth-method=rsa-signature needs certificate= and remote-certificate=", at: at)
            }
        case .proposal:
            let s = Schema.proposal
            if case .choices(let encs) = item.value("enc-algorithms", in: s) {
                for e in encs {
                    guard let enc = EncryptionAlgorithm(rawValue: e) else { continue }
                    if let why = unavailability(enc) { throw ConfigError(why, at: at) }
                    if enc.isWeak { out.warnings.append("enc-algorithms: \(e) is weak") }
                }
            }
            if case .choice(let g) = item.value("pfs-group", in: s), DHGroup(name: g)?.isWeak == true {
                out.warnings.append("pfs-group=\(g) is weak")
            }
        default:
            break
        }
    }

    // MARK: - item selection

    /// Items named by number (from the last print), name, `*id`, comma lists, or `[find ...]`.
    private func selectItems(_ cmd: ParsedCommand, _ kind: MenuKind, _ config: Configuration,
                             _ session: Session) throws(ConfigError) -> [Int] {
        let list = kind == .policy ? config.orderedPolicies : config.items(kind)
        guard !cmd.positional.isEmpty else {
            throw ConfigError("expected the items to change: numbers from print, a name, or [find ...]",
                              at: cmd.verbPosition)
        }
        let numbering = session.numbering[kindName(kind)] ?? list.map(\.id)
        var ids: [Int] = []
        for (arg, position) in cmd.positional {
            switch arg {
            case .find(let f):
                ids += list.filter { matches($0, f.condition, kind, config) }.map(\.id)
            case .text(let text):
                for part in text.split(separator: ",") {
                    let p = String(part)
                    if let n = Int(p) {
                        guard n >= 0, n < numbering.count, list.contains(where: { $0.id == numbering[n] }) else {
                            throw ConfigError("no such item \(n)"
                                              + (numbering.isEmpty ? ": the list is empty"
                                                 : " (the last print listed 0 to \(numbering.count - 1))"),
                                              at: position)
                        }
                        ids.append(numbering[n])
                    } else if p.hasPrefix("*"), let id = Int(p.dropFirst(), radix: 16),
                              list.contains(where: { $0.id == id }) {
                        ids.append(id)
                    } else if let item = list.first(where: { $0.name == p }) {
                        ids.append(item.id)
                    } else {
                        throw ConfigError("no such item '\(p)' in /ip ipsec \(kindName(kind))", at: position)
                    }
                }
            }
        }
        return ids
    }

    /// Flags every list has, besides its properties.
    static let conditionFlags = ["disabled", "dynamic", "inactive", "default"]

    /// The command with every condition's names resolved (exact, then an unambiguous prefix), in
    /// `where` and in each `[find]`. A session that may not see secrets may not filter on them
    /// either: a count of matches answers "is the secret X?" as surely as a printout would.
    private func resolvingConditions(_ cmd: ParsedCommand, _ kind: MenuKind?,
                                     _ session: Session) throws(ConfigError) -> ParsedCommand {
        if kind == .log, let c = cmd.condition {
            var resolved = cmd
            resolved.condition = try LogView.resolving(c)
            return resolved
        }
        guard let kind, !Schema.properties(kind).isEmpty else { return cmd }
        var resolved = cmd
        if let c = cmd.condition { resolved.condition = try resolving(c, kind, session) }
        for index in resolved.positional.indices {
            guard case .find(var f) = resolved.positional[index].value, let c = f.condition else { continue }
            f.condition = try resolving(c, kind, session)
            resolved.positional[index].value = .find(f)
        }
        for index in resolved.named.indices {
            guard case .find(var f) = resolved.named[index].value, let c = f.condition else { continue }
            f.condition = try resolving(c, kind, session)
            resolved.named[index].value = .find(f)
        }
        return resolved
    }

    private func resolving(_ condition: Condition, _ kind: MenuKind,
                           _ session: Session) throws(ConfigError) -> Condition {
        let schema = Schema.properties(kind)
        let names = schema.map(\.name) + Self.conditionFlags
        var out = condition
        for a in out.alternatives.indices {
            for t in out.alternatives[a].indices {
                let term = out.alternatives[a][t]
                let name: String
                if names.contains(term.name) {
                    name = term.name
                } else {
                    let candidates = names.filter { $0.hasPrefix(term.name) }
                    guard !term.name.isEmpty, let only = candidates.first else {
                        throw ConfigError("unknown property '\(term.name)' in condition "
                                          + "for /ip ipsec \(kindName(kind)): "
                                          + "expected one of \(names.joined(separator: ", "))", at: term.position)
                    }
                    guard candidates.count == 1 else {
                        throw ConfigError("ambiguous property '\(term.name)' in condition: "
                                          + "could be \(candidates.joined(separator: ", "))", at: term.position)
                    }
                    name = only
                }
                if schema.first(where: { $0.name == name })?.sensitive == true && !session.mayShowSensitive {
                    throw ConfigError("permission denied: \(name) is sensitive, and only administrators "
                                      + "(root or group keyway) may test it in a condition", at: term.position)
                }
                out.alternatives[a][t].name = name
            }
        }
        return out
    }

    /// Whether an item satisfies a condition: any alternative whose terms all hold. No recursion.
    func matches(_ item: Item, _ condition: Condition?, _ kind: MenuKind, _ config: Configuration) -> Bool {
        guard let condition else { return true }
        return condition.alternatives.contains { group in group.allSatisfy { holds($0, item, kind, config) } }
    }

    private func holds(_ term: ConditionTerm, _ item: Item, _ kind: MenuKind, _ config: Configuration) -> Bool {
        let schema = Schema.properties(kind)
        let name = term.name
        guard let expected = term.value else {
            let v: Bool
            switch name {
            case "disabled": v = item.disabled
            case "dynamic": v = item.dynamic
            case "inactive":
                v = (kind == .policy && config.inactiveReason(item) != nil)
                    || (kind == .peer && config.peerUnusableReason(item) != nil)
            case "default": v = item.builtIn
            default:
                if let spec = schema.first(where: { $0.name == name }),
                   case .boolean(let b) = item.value(spec.name, in: schema) {
                    v = b
                } else {
                    v = false
                }
            }
            return v != term.negated
        }
        let v: Bool
        switch name {
        case "disabled", "dynamic", "default":
            let flag = name == "disabled" ? item.disabled : name == "dynamic" ? item.dynamic : item.builtIn
            v = (expected == "yes" || expected == "true") == flag
        default:
            guard let spec = schema.first(where: { $0.name == name }) else { return term.negated }
            let actual = item.value(spec.name, in: schema)
            // Only administrators may name a sensitive property at all (resolving refuses others).
            if term.contains {
                v = Schema.format(actual, spec, showSensitive: true).lowercased().contains(expected.lowercased())
            } else if case .success(let parsed) = Schema.parse(expected, for: spec) { v = parsed == actual } else {
                v = Schema.format(actual, spec, showSensitive: false) == expected
            }
        }
        return v != term.negated
    }

    func kindName(_ kind: MenuKind) -> String {
        switch kind {
        case .policy: return "policy"
        case .peer: return "peer"
        case .proposal: return "proposal"
        case .manualSA: return "manual-sa"
        case .installedSA: return "installed-sa"
        case .remotePeers: return "remote-peers"
        case .statistics: return "statistics"
        case .unmanagedFirewall: return "firewall"
        case .log: return "log"
        }
    }

    /// The command as the audit log shows it: sensitive values masked.
    private func auditText(_ cmd: ParsedCommand, _ kind: MenuKind, verb: String) -> String {
        let schema = Schema.properties(kind)
        var parts = ["/ip ipsec \(kindName(kind)) \(verb)"]
        for (arg, _) in cmd.positional { parts.append(arg.text ?? "[find]") }
        for arg in cmd.named {
            let spec = schema.first { $0.name == arg.name } ?? schema.filter { $0.name.hasPrefix(arg.name) }.first
            let masked = spec?.sensitive ?? false
            parts.append("\(spec?.name ?? arg.name)=\(masked ? "***" : (arg.value.text ?? "[find]"))")
        }
        return parts.joined(separator: " ")
    }
}
