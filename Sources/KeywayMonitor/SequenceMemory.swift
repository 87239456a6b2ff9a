import KeywayWire

/// The highest outbound sequence number the datapath reported for each manual SA, so that a
/// restarted datapath never reuses one the peer has seen: it starts beyond the last report (at
/// most a second old) by more than a second's worth of packets.
public struct SequenceMemory: Sendable {
    public static let margin: UInt32 = 4_000_000
    private var highest: [LiveRuntime.SAKey: UInt32] = [:]

    public init() {}

    public mutating func record(_ state: DatapathState) {
        for sa in state.sas where sa.sequence > 0 {
            let key = LiveRuntime.keyOf(spi: sa.spi, proto: sa.proto, destination: sa.destination)
            highest[key] = max(highest[key] ?? 0, sa.sequence)
        }
    }

    /// Outbound manual SAs start past what was sent, saturating at the end of the sequence space.
    public func continuing(_ config: DatapathConfig) -> DatapathConfig {
        var out = config
        for i in out.sas.indices where !out.sas[i].inbound {
            let sa = out.sas[i]
            guard let last = highest[LiveRuntime.keyOf(spi: sa.spi, proto: sa.proto.rawValue,
                                                       destination: sa.destination.value)] else { continue }
            let (next, overflow) = last.addingReportingOverflow(Self.margin)
            out.sas[i].initialSequence = overflow ? .max : next
        }
        return out
    }
}
