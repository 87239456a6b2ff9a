import KeywayConfig
import KeywayWire

/// `/log`'s store in the monitor: the last `capacity` audit records keywayd handed over (it
/// attributed them), each with any configured secret masked — events never carry one, and this
/// makes sure no event can show one to a read-only operator even if a process were made to send
/// it. Pure.
public struct EventLog: Sendable {
    public static let capacity = 1024
    /// Secrets shorter than this are not searched for: they would mask ordinary words.
    public static let shortestMaskedSecret = 4

    private var ring: [LogEntry] = []
    private var head = 0
    public private(set) var lastSequence: UInt64 = 0

    public init() {}

    /// Adds records in keywayd's order (older or repeated sequence numbers are ignored) and
    /// returns the entries added.
    @discardableResult
    public mutating func append(_ records: [AuditRecord], secrets: [String]) -> [LogEntry] {
        append(records, masker: Masker(secrets))
    }

    @discardableResult
    public mutating func append(_ records: [AuditRecord], masker: Masker) -> [LogEntry] {
        var added: [LogEntry] = []
        for r in records where r.sequence > lastSequence {
            lastSequence = r.sequence
            let entry = LogEntry(sequence: r.sequence, epochMicroseconds: r.epochMicroseconds,
                                 process: r.role.description,
                                 pid: r.pid, severity: r.event.severity, msgID: masker.mask(r.event.msgID),
                                 text: masker.mask(r.event.text),
                                 parameters: r.event.parameters.map {
                                     LogParameter(masker.mask($0.name), masker.mask($0.value))
                                 })
            if ring.count < Self.capacity { ring.append(entry) } else {
                ring[head] = entry
                head = (head + 1) % Self.capacity
            }
            added.append(entry)
        }
        return added
    }

    /// Oldest first.
    public var entries: [LogEntry] { Array(ring[head...] + ring[..<head]) }

    /// Every occurrence of a secret replaced by `***`.
    public static func mask(_ text: String, _ secrets: [String]) -> String {
        var out = text
        for secret in secrets where secret.count >= shortestMaskedSecret && out.contains(secret) {
            out = out.replacing(secret, with: "***")
        }
        return out
    }

    /// The secrets, ready for many texts: 10,000 manual SAs hold some 60,000 key spellings, and
    /// searching every text for each of them took the monitor seconds per batch of events. Hex
    /// keys are found by looking up each window of the text's hex runs (at the keys' lengths,
    /// any case) in a set; other secrets (pre-shared keys) are searched for as before.
    public struct Masker: Sendable {
        var texts: [String] = []
        var hex: Set<String> = []
        var hexLengths: [Int] = []

        public init(_ secrets: [String]) {
            for secret in secrets where secret.count >= EventLog.shortestMaskedSecret {
                var digits = Substring(secret)
                if digits.hasPrefix("0x") || digits.hasPrefix("0X") { digits = digits.dropFirst(2) }
                if digits.count >= EventLog.shortestMaskedSecret, digits.allSatisfy(\.isHexDigit) {
                    hex.insert(digits.lowercased())
                } else {
                    texts.append(secret)
                }
            }
            texts.sort { $0.count > $1.count }
            hexLengths = Set(hex.map(\.count)).sorted(by: >)
        }

        public func mask(_ text: String) -> String {
            var out = EventLog.mask(text, texts)
            guard !hex.isEmpty else { return out }
            let chars = Array(out)
            var covered = [Bool](repeating: false, count: chars.count)
            var i = 0
            while i < chars.count {
                guard chars[i].isHexDigit else { i += 1; continue }
                var end = i
                while end < chars.count, chars[end].isHexDigit { end += 1 }
                for length in hexLengths where length <= end - i {
                    for start in i...(end - length)
                        where hex.contains(String(chars[start..<start + length]).lowercased()) {
                        for k in start..<start + length { covered[k] = true }
                    }
                }
                i = end
            }
            guard covered.contains(true) else { return out }
            out = ""
            var k = 0
            while k < chars.count {
                if covered[k] {
                    out += "***"
                    while k < chars.count, covered[k] { k += 1 }
                } else {
                    out.append(chars[k])
                    k += 1
                }
            }
            return out
        }
    }

    /// The configuration's secrets as text might show them: pre-shared keys, and manual-SA keys
    /// in hexadecimal (with and without 0x).
    public static func secrets(of config: Configuration) -> [String] {
        var list: [String] = []
        for peer in config.peers {
            if case .text(let s) = peer.value("secret", in: Schema.peer), !s.isEmpty { list.append(s) }
        }
        for sa in config.manualSAs {
            for name in ["ah-key", "esp-auth-key", "esp-enc-key"] {
                if case .pair(let a, let b) = sa.value(name, in: Schema.manualSA) {
                    for key in Set([a, b]) where !key.isEmpty { list += [key, key.uppercased()] }
                }
            }
        }
        // Longest first, so that a secret containing another is masked whole.
        return Array(Set(list)).sorted { $0.count > $1.count }
    }
}
