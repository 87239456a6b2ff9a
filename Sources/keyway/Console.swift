import Glibc
import KeywayConfig

/// A small line editor for the interactive console: history (up/down), tab completion of
/// menus, commands and property names, backspace, Ctrl-C (clear line) and Ctrl-D (quit).
struct LineEditor {
    private var history: [String] = []
    private var saved = termios()

    mutating func readLine(prompt: String, path: [String]) -> String? {
        guard tcgetattr(0, &saved) == 0 else { return plainReadLine(prompt) }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        raw.c_iflag &= ~tcflag_t(ICRNL)
        tcsetattr(0, TCSANOW, &raw)
        defer { tcsetattr(0, TCSANOW, &saved) }
        var line = ""
        var historyIndex = history.count
        write(prompt)
        while true {
            var byte: UInt8 = 0
            guard Glibc.read(0, &byte, 1) == 1 else { return nil }
            switch byte {
            case 13, 10:
                write("\r\n")
                if !line.isEmpty && history.last != line { history.append(line) }
                return line
            case 4:
                if line.isEmpty { write("\r\n"); return nil }
            case 3:
                line = ""
                write("^C\r\n" + prompt)
            case 127, 8:
                if !line.isEmpty { line.removeLast(); write("\u{8} \u{8}") }
            case 9:
                let options = Completion.candidates(for: line, path: path)
                let current = line.split(separator: " ", omittingEmptySubsequences: false).last.map(String.init) ?? ""
                if options.count == 1, let only = options.first {
                    let add = String(only.dropFirst(current.count)) + (only.hasSuffix("=") ? "" : " ")
                    line += add
                    write(add)
                } else if options.count > 1 {
                    let common = options.dropFirst().reduce(options[0]) { a, b in String(zip(a, b).prefix { $0 == $1 }.map(\.0)) }
                    if common.count > current.count {
                        let add = String(common.dropFirst(current.count))
                        line += add
                        write(add)
                    } else {
                        write("\r\n" + options.joined(separator: "  ") + "\r\n" + prompt + line)
                    }
                }
            case 27:
                var seq: [UInt8] = [0, 0]
                guard Glibc.read(0, &seq, 2) == 2, seq[0] == 91 else { continue }
                if seq[1] == 65 || seq[1] == 66 {
                    historyIndex = seq[1] == 65 ? max(0, historyIndex - 1) : min(history.count, historyIndex + 1)
                    let replacement = historyIndex < history.count ? history[historyIndex] : ""
                    write("\r" + prompt + String(repeating: " ", count: line.count) + "\r" + prompt + replacement)
                    line = replacement
                }
            default:
                if byte >= 32 {
                    line.unicodeScalars.append(Unicode.Scalar(byte))
                    write(String(Unicode.Scalar(byte)))
                }
            }
        }
    }

    private func plainReadLine(_ prompt: String) -> String? {
        write(prompt)
        return Swift.readLine()
    }

    private func write(_ s: String) {
        let bytes = Array(s.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
    }
}
