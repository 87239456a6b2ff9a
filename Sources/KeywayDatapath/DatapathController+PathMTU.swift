import KeywayVocabulary

extension DatapathController {
    /// An ICMP packet from the raw ICMP socket (untrusted bytes): a validated "fragmentation
    /// needed" lowers a path; what it did is said in audit lines under fixed rate-limit keys.
    public func icmp(_ buffer: [UInt8], start: Int, length: Int, now: UInt64) -> [DatapathEffect] {
        switch engine.processICMP(buffer, start: start, length: length, now: now) {
        case .lowered(let destination, let mtu, let reporter, let spi):
            return [.audit(AuditNote(.notice, "path-mtu", "path MTU lowered by ICMP",
                                     [("destination", destination.description), ("mtu", String(mtu)),
                                      ("reporter", reporter.description), ("spi", String(spi, radix: 16))],
                                     rateLimitKey: "pmtu"))]
        case .refused(let reason, let reporter):
            return [.audit(AuditNote(.warning, "path-mtu", "ICMP fragmentation-needed refused: \(reason)",
                                     [("reason", reason), ("reporter", reporter?.description ?? "-")],
                                     rateLimitKey: "pmtu-refused"))]
        case .unchanged, .ignored:
            return []
        }
    }
}
