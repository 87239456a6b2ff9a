import KeywayVocabulary

extension AuditLog {
    /// Writes what a sans-IO core asked for; lines another party can cause go through the rate limiter.
    public func note(_ note: AuditNote) {
        let severity: Severity
        switch note.level {
        case .informational: severity = .informational
        case .notice: severity = .notice
        case .warning: severity = .warning
        case .error: severity = .error
        }
        let fields = note.fields.map { ($0.name, $0.value) }
        if let key = note.rateLimitKey {
            rateLimitedEvent(key: key, severity, msgID: note.msgID, note.text, fields)
        } else {
            event(severity, msgID: note.msgID, note.text, fields)
        }
    }
}
