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
        var added: [LogEntry] = []
        for r in records where r.sequence > lastSequence {
            lastSequence = r.sequence
            let entry = LogEntry(sequence: r.sequence, epochMicroseconds: r.epochMicroseconds, process: r.role.description,
                                 pid: r.pid, severity: r.event.severity, msgID: Self.mask(r.event.msgID, secrets),
                                 text: Self.mask(r.event.text, secrets),
                                 parameters: r.event.parameters.map {
                                     LogParameter(Self.mask($0.name, secrets), Self.mask($0.value, secrets))
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
