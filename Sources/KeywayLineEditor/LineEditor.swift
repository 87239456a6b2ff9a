import CKeywayConsole

/// The console's line editor: libedit (Debian's libedit2), emacs keys, history with Ctrl-R
/// search, and Tab and `?` answered by the owner. The one file here with unsafe pointers: it
/// hands C strings between libedit and Swift. Only the `keyway` client links it.
public final class LineEditor {
    public enum Answer: Equatable {
        case nothing
        /// Text to insert at the cursor.
        case insert(String)
        /// Text to show below the line, which is then drawn again.
        case show(String)
    }

    private final class Handlers {
        let complete: (String) -> Answer
        let help: (String) -> Answer
        init(complete: @escaping (String) -> Answer, help: @escaping (String) -> Answer) {
            self.complete = complete
            self.help = help
        }
    }

    private let handlers: Handlers
    private let console: OpaquePointer

    /// nil when libedit cannot start (no terminal description, say): the caller reads plain lines.
    public init?(program: String, complete: @escaping (String) -> Answer, help: @escaping (String) -> Answer) {
        let handlers = Handlers(complete: complete, help: help)
        let context = Unmanaged.passUnretained(handlers).toOpaque()
        guard let console = kw_console_open(program, context, { LineEditor.answer($0, $1, $2, $3, help: false) },
                                            { LineEditor.answer($0, $1, $2, $3, help: true) }) else { return nil }
        self.handlers = handlers
        self.console = console
    }

    deinit { kw_console_close(console) }

    /// One line (without its newline), or nil at the end of input (Ctrl-D on an empty line).
    public func readLine(prompt: String) -> String? {
        guard let line = kw_console_read(console, prompt) else { return nil }
        return String(cString: line)
    }

    /// Adds a line to the history (Up, Ctrl-P, Ctrl-R find it).
    public func remember(_ line: String) { kw_console_remember(console, line) }

    private static func answer(_ context: UnsafeMutableRawPointer?, _ text: UnsafePointer<CChar>?,
                               _ out: UnsafeMutablePointer<CChar>?, _ capacity: Int32, help: Bool) -> Int32 {
        guard let context, let text, let out, capacity > 0 else { return Int32(KW_NOTHING.rawValue) }
        let handlers = Unmanaged<Handlers>.fromOpaque(context).takeUnretainedValue()
        let line = String(cString: text)
        let answer = help ? handlers.help(line) : handlers.complete(line)
        let (kind, body): (UInt32, String)
        switch answer {
        case .nothing: return Int32(KW_NOTHING.rawValue)
        case .insert(let s): (kind, body) = (KW_INSERT.rawValue, s)
        case .show(let s): (kind, body) = (KW_SHOW.rawValue, s)
        }
        var count = 0
        for byte in body.utf8 where count < Int(capacity) - 1 {
            out[count] = CChar(bitPattern: byte)
            count += 1
        }
        out[count] = 0
        return Int32(kind)
    }
}
