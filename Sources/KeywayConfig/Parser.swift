/// An argument value: a word, a quoted string, or a `[find ...]` substitution.
public indirect enum ArgumentValue: Equatable, Sendable {
    case text(String)
    case find(FindExpression)

    public var text: String? { if case .text(let s) = self { return s } else { return nil } }
}

public struct NamedArgument: Equatable, Sendable {
    public var name: String
    public var value: ArgumentValue
    public var position: SourcePosition
}

/// One test of a condition: `name=value`, `name!=value`, `name~text` (contains), or a flag
/// such as `disabled`.
public struct ConditionTerm: Equatable, Sendable {
    public var name: String
    /// nil for a flag.
    public var value: String?
    public var negated: Bool
    public var position: SourcePosition
    /// `~`: the value is contained in the property's printed value (literal text, not a pattern).
    public var contains: Bool

    public init(name: String, value: String?, negated: Bool, position: SourcePosition, contains: Bool = false) {
        self.name = name
        self.value = value
        self.negated = negated
        self.position = position
        self.contains = contains
    }

    /// Where a term was written does not change what it means.
    public static func == (a: ConditionTerm, b: ConditionTerm) -> Bool {
        a.name == b.name && a.value == b.value && a.negated == b.negated && a.contains == b.contains
    }
}

/// `where` and `[find]` conditions: a disjunction of conjunctions of terms (`and` binds tighter
/// than `or`; `not` negates the term after it). Flat by construction, so neither building,
/// comparing, evaluating nor freeing one recurses, whatever the input.
public struct Condition: Equatable, Sendable {
    /// Terms joined by `and`, these groups joined by `or`.
    public var alternatives: [[ConditionTerm]]

    /// At most this many terms in one condition; a longer one is refused where the next term starts.
    public static let maximumTerms = 100
    /// At most this many `not` in a row before a term.
    public static let maximumNegations = 16

    public init(alternatives: [[ConditionTerm]]) { self.alternatives = alternatives }

    public var terms: [ConditionTerm] { alternatives.flatMap { $0 } }
}

public struct FindExpression: Equatable, Sendable {
    public var condition: Condition?
    public var position: SourcePosition
}

public struct ParsedCommand: Equatable, Sendable {
    /// Path words given on the command line (after any leading `/`).
    public var path: [String]
    public var absolute: Bool
    /// Path from a pasted console prompt on the same line, if any.
    public var promptPath: [String]?
    public var verb: String?
    public var verbPosition: SourcePosition
    /// Unnamed arguments: item lists, print modes, a `[find]`.
    public var positional: [(value: ArgumentValue, position: SourcePosition)]
    public var named: [NamedArgument]
    public var condition: Condition?
    public var position: SourcePosition

    public static func == (a: ParsedCommand, b: ParsedCommand) -> Bool {
        a.path == b.path && a.absolute == b.absolute && a.promptPath == b.promptPath && a.verb == b.verb
            && a.positional.map(\.value) == b.positional.map(\.value) && a.named == b.named
            && a.condition == b.condition
    }
}

/// Splits tokens into commands. Which words are path elements is decided by the menu tree.
public struct Parser {
    private var tokens: [Token]
    private var i = 0
    private let prompts: [Lexer.Prompt]

    /// `path` is the console's current menu; a line holding only a path moves it for the lines after.
    public static func parse(_ text: String, path: [String] = [],
                             progress: @escaping () -> Void = {}) throws(ConfigError) -> [ParsedCommand] {
        var lexer = Lexer(text, progress: progress)
        let tokens = try lexer.tokenize()
        var parser = Parser(tokens: tokens, prompts: lexer.prompts, end: lexer.endPosition, context: path)
        parser.progress = progress
        return try parser.commands()
    }

    private let endPosition: SourcePosition
    private var context: [String]
    private var progress: () -> Void = {}

    init(tokens: [Token], prompts: [Lexer.Prompt], end: SourcePosition, context: [String]) {
        self.tokens = tokens
        self.prompts = prompts
        self.endPosition = end
        self.context = context
    }

    private var current: Token? { i < tokens.count ? tokens[i] : nil }

    mutating func commands() throws(ConfigError) -> [ParsedCommand] {
        var out: [ParsedCommand] = []
        while let t = current {
            if t.kind == .endOfCommand { i += 1; continue }
            out.append(try command())
            if out.count & 0xfff == 0 { progress() }
        }
        return out
    }

    private mutating func command() throws(ConfigError) -> ParsedCommand {
        let start = current?.position ?? endPosition
        var cmd = ParsedCommand(path: [], absolute: false,
                                promptPath: prompts.last(where: { $0.line == start.line })?.path,
                                verb: nil, verbPosition: start, positional: [], named: [], condition: nil,
                                position: start)
        if current?.kind == .slash { cmd.absolute = true; i += 1 }
        // Path words: each a child menu of the path so far (or `..`); the first other word is the verb.
        var resolved = cmd.absolute ? [] : (cmd.promptPath ?? context)
        var menu = MenuTree.resolve(resolved)
        while let t = current, case .word(let w) = t.kind, next(isEquals: false) {
            if w == ".." {
                cmd.path.append(w)
                if !resolved.isEmpty { resolved.removeLast() }
                menu = MenuTree.resolve(resolved)
                i += 1
                continue
            }
            // Words may hold several path elements joined by '/' (as in `/ip/ipsec/policy`).
            let parts = w.split(separator: "/").map(String.init)
            guard let first = parts.first, let child = menu?.child(first) else { break }
            cmd.path.append(child.name)
            resolved.append(child.name)
            menu = child
            for p in parts.dropFirst() {
                guard let c = menu?.child(p) else {
                    throw ConfigError("no such menu '\(p)' under \(menu?.name ?? "/")", at: t.position)
                }
                cmd.path.append(c.name)
                resolved.append(c.name)
                menu = c
            }
            i += 1
        }
        if let t = current, case .word(let w) = t.kind, next(isEquals: false) {
            cmd.verb = w
            cmd.verbPosition = t.position
            i += 1
        }
        while let t = current, t.kind != .endOfCommand {
            switch t.kind {
            case .word(let w) where w == "where":
                i += 1
                cmd.condition = try condition(until: [.endOfCommand])
            case .word(var w):
                var negated = false
                if w.hasSuffix("!"), next(isEquals: true) { negated = true; w.removeLast() }
                if next(isEquals: true) {
                    i += 2
                    guard !negated else { throw ConfigError("'!=' is only allowed after 'where'", at: t.position) }
                    cmd.named.append(NamedArgument(name: w, value: try value(for: w, at: t.position),
                                                   position: t.position))
                } else {
                    cmd.positional.append((.text(w), t.position))
                    i += 1
                }
            case .quoted(let s):
                cmd.positional.append((.text(s), t.position))
                i += 1
            case .openBracket:
                cmd.positional.append((.find(try findExpression()), t.position))
            case .equals:
                throw ConfigError("expected a property name before '='", at: t.position)
            case .closeBracket:
                throw ConfigError("unexpected ']': no '[' is open", at: t.position)
            case .slash:
                throw ConfigError("unexpected '/': paths come before the command", at: t.position)
            case .endOfCommand:
                break
            }
        }
        if cmd.verb == nil && cmd.positional.isEmpty && cmd.named.isEmpty { context = resolved }
        return cmd
    }

    private func next(isEquals: Bool) -> Bool {
        let nextIsEquals = i + 1 < tokens.count && tokens[i + 1].kind == .equals
        return isEquals == nextIsEquals
    }

    private mutating func value(for name: String, at position: SourcePosition) throws(ConfigError) -> ArgumentValue {
        guard let t = current else { throw ConfigError("expected a value after '\(name)='", at: position) }
        switch t.kind {
        case .word(let w): i += 1; return .text(w)
        case .quoted(let s): i += 1; return .text(s)
        case .openBracket: return .find(try findExpression())
        case .endOfCommand: return .text("")
        default: throw ConfigError("expected a value after '\(name)='", at: t.position)
        }
    }

    /// `[find]`, `[find name=x]`, `[find where action=encrypt and !disabled]`.
    private mutating func findExpression() throws(ConfigError) -> FindExpression {
        guard let open = current else { throw ConfigError("expected '['", at: endPosition) }
        i += 1
        guard let t = current, case .word(let w) = t.kind, "find".hasPrefix(w), !w.isEmpty else {
            throw ConfigError("expected 'find' after '[' (only [find ...] is supported)",
                              at: current?.position ?? open.position)
        }
        i += 1
        if let t = current, case .word("where") = t.kind { i += 1 }
        var cond: Condition?
        if current == nil || current?.kind == .endOfCommand {
            throw ConfigError("expected ']' to close '[find'", at: current?.position ?? endPosition)
        }
        if current?.kind != .closeBracket { cond = try condition(until: [.closeBracket, .endOfCommand]) }
        guard current?.kind == .closeBracket else {
            throw ConfigError("expected ']' to close '[find'", at: current?.position ?? endPosition)
        }
        i += 1
        return FindExpression(condition: cond, position: open.position)
    }

    /// `a and b or c and not d`: iterative, and bounded in terms and in `not`s (Condition's limits).
    private mutating func condition(until stops: [TokenKind]) throws(ConfigError) -> Condition {
        var alternatives: [[ConditionTerm]] = []
        var group: [ConditionTerm] = []
        var count = 0
        while true {
            if count == Condition.maximumTerms {
                throw ConfigError("condition too long: at most \(Condition.maximumTerms) terms (name=value or a flag) "
                                  + "in one condition",
                                  at: current?.position ?? endPosition)
            }
            group.append(try term(until: stops))
            count += 1
            guard let t = current, !stops.contains(t.kind) else { break }
            if case .word("or") = t.kind {
                i += 1
                alternatives.append(group)
                group = []
            } else if case .word("and") = t.kind {
                i += 1
            }
        }
        alternatives.append(group)
        return Condition(alternatives: alternatives)
    }

    private mutating func term(until stops: [TokenKind]) throws(ConfigError) -> ConditionTerm {
        var negations = 0
        while let t = current, case .word("not") = t.kind {
            negations += 1
            if negations > Condition.maximumNegations {
                throw ConfigError("too many 'not' in a row: at most \(Condition.maximumNegations)", at: t.position)
            }
            i += 1
        }
        guard let t = current, !stops.contains(t.kind) else {
            throw ConfigError("expected a condition (name=value, name!=value, or a flag such as disabled)",
                              at: current?.position ?? endPosition)
        }
        guard case .word(var w) = t.kind else {
            throw ConfigError("expected a condition (name=value, name!=value, or a flag such as disabled)",
                              at: t.position)
        }
        var negated = negations % 2 == 1
        if w.hasPrefix("!") { negated.toggle(); w.removeFirst() }
        if w.hasSuffix("!") && next(isEquals: true) { negated.toggle(); w.removeLast() }
        if next(isEquals: true) {
            i += 2
            guard let v = current else { throw ConfigError("expected a value after '\(w)='", at: t.position) }
            switch v.kind {
            case .word(let s), .quoted(let s):
                i += 1
                return ConditionTerm(name: w, value: s, negated: negated, position: t.position)
            default: throw ConfigError("expected a value after '\(w)='", at: v.position)
            }
        }
        i += 1
        // `name~text` or `name~"text"`: the lexer keeps `~` inside the word.
        if let tilde = w.firstIndex(of: "~"), tilde != w.startIndex {
            let name = String(w[..<tilde])
            var text = String(w[w.index(after: tilde)...])
            if text.isEmpty, let v = current {
                switch v.kind {
                case .word(let s), .quoted(let s):
                    text = s
                    i += 1
                default: break
                }
            }
            return ConditionTerm(name: name, value: text, negated: negated, position: t.position, contains: true)
        }
        return ConditionTerm(name: w, value: nil, negated: negated, position: t.position)
    }
}

/// The console's menu tree: what a path word may be.
public final class MenuTree: Sendable {
    public let name: String
    public let children: [MenuTree]
    public let kind: MenuKind?

    init(_ name: String, kind: MenuKind? = nil, _ children: [MenuTree] = []) {
        self.name = name
        self.kind = kind
        self.children = children
    }

    public static let root = MenuTree("", [
        MenuTree("ip", [
            MenuTree("ipsec", [
                MenuTree("policy", kind: .policy), MenuTree("peer", kind: .peer), MenuTree("proposal", kind: .proposal),
                MenuTree("manual-sa", kind: .manualSA), MenuTree("installed-sa", kind: .installedSA),
                MenuTree("remote-peers", kind: .remotePeers), MenuTree("statistics", kind: .statistics),
            ]),
            // Known so that its commands get a precise refusal rather than "no such command".
            MenuTree("firewall",
                     [MenuTree("nat", kind: .unmanagedFirewall), MenuTree("filter", kind: .unmanagedFirewall)]),
        ]),
        // RouterOS's /log: every process's recent audit events.
        MenuTree("log", kind: .log),
    ])

    /// Exact names first, then an unambiguous prefix (RouterOS accepts both).
    public func child(_ word: String) -> MenuTree? {
        if let exact = children.first(where: { $0.name == word }) { return exact }
        let matches = children.filter { $0.name.hasPrefix(word) }
        return matches.count == 1 && !word.isEmpty ? matches[0] : nil
    }

    public static func resolve(_ path: [String]) -> MenuTree? {
        var node: MenuTree? = root
        for p in path { node = node?.child(p) }
        return node
    }
}

public enum MenuKind: Sendable, Equatable {
    case policy, peer, proposal, manualSA, installedSA, remotePeers, statistics, unmanagedFirewall, log
}
