/// An audit line a sans-IO core asks its process to write.
public struct AuditNote: Equatable, Sendable, CustomStringConvertible {
    public enum Level: Sendable { case informational, notice, warning, error }

    public struct Field: Equatable, Sendable {
        public var name: String
        public var value: String
        public init(name: String, value: String) { self.name = name; self.value = value }
    }

    public var level: Level
    public var msgID: String
    public var text: String
    public var fields: [Field]
    /// Lines that another party can cause at will are rate-limited under this fixed key (never
    /// text built from what that party sent).
    public var rateLimitKey: String?

    public init(_ level: Level, _ msgID: String, _ text: String, _ fields: [(String, String)] = [],
                rateLimitKey: String? = nil) {
        self.level = level; self.msgID = msgID; self.text = text
        self.fields = fields.map { Field(name: $0.0, value: $0.1) }
        self.rateLimitKey = rateLimitKey
    }

    public var description: String { text + fields.map { " \($0.name)=\($0.value)" }.joined() }
}
