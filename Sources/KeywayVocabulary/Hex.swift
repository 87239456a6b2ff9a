/// Hexadecimal text, as keys and secrets are written in the configuration.
public enum Hex {
    /// Accepts an optional 0x prefix and ignores spaces, newlines and colons; nil for anything else.
    public static func decode(_ text: String) -> [UInt8]? {
        var s = Substring(text)
        if s.hasPrefix("0x") || s.hasPrefix("0X") { s = s.dropFirst(2) }
        let digits = s.filter { $0 != " " && $0 != "\n" && $0 != ":" }
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var high: UInt8?
        for ch in digits {
            guard let v = ch.hexDigitValue else { return nil }
            if let h = high { out.append(h << 4 | UInt8(v)); high = nil } else { high = UInt8(v) }
        }
        return out
    }

    public static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        var s = ""
        s.reserveCapacity(bytes.count * 2)
        for b in bytes { s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 15)]) }
        return s
    }
}
