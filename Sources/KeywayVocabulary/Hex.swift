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

    /// The value of an ASCII hex digit (0-9, A-F, a-f); nil for any other scalar.
    public static func digitValue(_ u: Unicode.Scalar) -> Int? {
        switch u.value {
        case 0x30...0x39: return Int(u.value - 0x30)
        case 0x41...0x46: return Int(u.value - 0x41 + 10)
        case 0x61...0x66: return Int(u.value - 0x61 + 10)
        default: return nil
        }
    }

    public static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        var s = ""
        s.reserveCapacity(bytes.count * 2)
        for b in bytes { s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 15)]) }
        return s
    }
}
