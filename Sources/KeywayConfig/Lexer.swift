import KeywayVocabulary

/// Tokens of the RouterOS console language.
public enum TokenKind: Equatable, Sendable {
    case word(String)          // bare word: path element, command, name=value, value
    case quoted(String)        // "..." with escapes resolved
    case equals
    case slash                 // a path starting at the root
    case openBracket, closeBracket
    case endOfCommand          // ; or newline
}

public struct Token: Equatable, Sendable {
    public var kind: TokenKind
    public var position: SourcePosition
}

/// Turns text into tokens: `#` comments, `;` and newlines, `\` continuation (and the console's
/// `\...` prompt at the start of a continued line), double-quoted strings with RouterOS escapes,
/// and a pasted console prompt `[user@host] path>` at the start of a line.
///
/// It reads Unicode scalars, not Characters: a combining mark after `\`, a hex escape or a quote
/// would otherwise fuse with it into one grapheme and hide it (fuzz-config found `\00` followed
/// by U+0356 failing to parse back).
public struct Lexer {
    private let chars: [Unicode.Scalar]
    private var index = 0
    private var line = 1
    private var column = 1
    private var atLineStart = true
    private var continued = false

    /// Called now and then on long input (a script of 100,000 commands): see Executor.progress.
    private let progress: () -> Void

    /// A CRLF is read as LF: scripts written on Windows must lex like any other.
    public init(_ text: String, progress: @escaping () -> Void = {}) {
        self.progress = progress
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(text.utf8.count)
        for u in text.unicodeScalars {
            if u == "\n", scalars.last == "\r" { scalars.removeLast() }
            scalars.append(u)
            if scalars.count & 0x7ffff == 0 { progress() }
        }
        chars = scalars
    }

    private var position: SourcePosition { SourcePosition(line: line, column: column) }
    private func peek(_ offset: Int = 0) -> Unicode.Scalar? {
        index + offset < chars.count ? chars[index + offset] : nil
    }

    private mutating func advance() {
        if chars[index] == "\n" { line += 1; column = 1 } else { column += 1 }
        index += 1
    }

    /// A pasted prompt (`[admin@MikroTik] ip ipsec policy>`) gives the path the line runs in.
    public struct Prompt: Equatable, Sendable { public var path: [String]; public var line: Int }

    public private(set) var prompts: [Prompt] = []

    /// Where the input ends: errors about something missing point here.
    public var endPosition: SourcePosition { position }

    public mutating func tokenize() throws(ConfigError) -> [Token] {
        var tokens: [Token] = []
        var steps = 0
        while let c = peek() {
            steps += 1
            if steps & 0x1ffff == 0 { progress() }
            if atLineStart {
                atLineStart = false
                skipBlanks()
                if continued {
                    continued = false
                    // The console echoes "\..." before a continued line; a paste carries it along.
                    if peek() == "\\" && peek(1) == "." && peek(2) == "." && peek(3) == "." {
                        for _ in 0..<4 { advance() }
                    }
                } else if peek() == "[" , let prompt = try promptPath() {
                    prompts.append(Prompt(path: prompt, line: line))
                }
                continue
            }
            let start = position
            switch c {
            case " ", "\t", "\r":
                advance()
            case "\n":
                advance()
                tokens.append(Token(kind: .endOfCommand, position: start))
                atLineStart = true
            case ";":
                advance()
                tokens.append(Token(kind: .endOfCommand, position: start))
            case "#":
                while let d = peek(), d != "\n" { advance() }
            case "\\":
                // Continuation: a backslash, optional blanks, then the end of the line.
                var look = 1
                while let d = peek(look), d == " " || d == "\t" || d == "\r" { look += 1 }
                guard peek(look) == "\n" || peek(look) == nil else {
                    throw ConfigError("a backslash outside quotes must end the line (line continuation)", at: start)
                }
                for _ in 0..<look { advance() }
                if peek() == "\n" { advance() }
                atLineStart = true
                continued = true
            case "\"":
                tokens.append(Token(kind: .quoted(try quoted()), position: start))
            case "=":
                advance()
                tokens.append(Token(kind: .equals, position: start))
            case "[":
                advance()
                tokens.append(Token(kind: .openBracket, position: start))
            case "]":
                advance()
                tokens.append(Token(kind: .closeBracket, position: start))
            case "/" where tokens.last.map({ $0.kind == .endOfCommand || $0.kind == .openBracket }) ?? true:
                advance()
                tokens.append(Token(kind: .slash, position: start))
            default:
                let w = word()
                // Every branch must consume input: an empty word would loop for ever.
                guard !w.isEmpty else { throw ConfigError("unexpected character '\(c)'", at: start) }
                tokens.append(Token(kind: .word(w), position: start))
            }
        }
        if continued { throw ConfigError("the last line ends in a backslash but nothing follows", at: position) }
        return tokens
    }

    private mutating func skipBlanks() {
        while let c = peek(), c == " " || c == "\t" || c == "\r" { advance() }
    }

    private static let wordStops: Set<Unicode.Scalar> = [" ", "\t", "\r", "\n", ";", "=", "\"", "[", "]", "#"]

    private mutating func word() -> String {
        var s = ""
        while let c = peek(), !Lexer.wordStops.contains(c) {
            if c == "\\" { break }
            s.unicodeScalars.append(c)
            advance()
        }
        return s
    }

    /// `[user@host] path>`: only recognised at the start of a line, and only with the `@` and `>`.
    private mutating func promptPath() throws(ConfigError) -> [String]? {
        var look = 1
        var sawAt = false
        while let c = peek(look), c != "]", c != "\n" { if c == "@" { sawAt = true }; look += 1 }
        guard sawAt, peek(look) == "]" else { return nil }
        var j = look + 1
        var pathText = ""
        while let c = peek(j), c != ">", c != "\n" { pathText.unicodeScalars.append(c); j += 1 }
        guard peek(j) == ">" else { return nil }
        for _ in 0...j { advance() }
        return pathText.split(whereSeparator: { $0 == " " || $0 == "/" }).map(String.init)
    }

    /// RouterOS escapes: \" \\ \n \r \t \$ \? \_ (space) \a \b \f \v and \HH.
    private mutating func quoted() throws(ConfigError) -> String {
        let start = position
        advance()
        var s = ""
        while true {
            guard let c = peek() else { throw ConfigError("unterminated string: expected a closing '\"'", at: start) }
            advance()
            if c == "\"" { return s }
            if c == "\n" { throw ConfigError("unterminated string: expected a closing '\"'", at: start) }
            guard c == "\\" else { s.unicodeScalars.append(c); continue }
            let escapePosition = position
            guard let e = peek() else { throw ConfigError("unterminated string: expected a closing '\"'", at: start) }
            advance()
            switch e {
            case "\"": s.append("\"")
            case "\\": s.append("\\")
            case "n": s.append("\n")
            case "r": s.append("\r")
            case "t": s.append("\t")
            case "$": s.append("$")
            case "?": s.append("?")
            case "_": s.append(" ")
            case "a": s.append("\u{07}")
            case "b": s.append("\u{08}")
            case "f": s.append("\u{0C}")
            case "v": s.append("\u{0B}")
            default:
                // The first digit upper case, as RouterOS writes it.
                guard !("a"..."f").contains(e), let h = Hex.digitValue(e),
                      let l = peek().flatMap(Hex.digitValue) else {
                    throw ConfigError("unknown escape '\\\(e)' in string: expected one of \\\" \\\\ \\n \\r \\t \\$ "
                                      + "\\? \\_ \\a \\b \\f \\v or \\HH", at: escapePosition)
                }
                advance()
                s.unicodeScalars.append(Unicode.Scalar(UInt8(h * 16 + l)))
            }
        }
    }
}
