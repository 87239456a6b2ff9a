import KeywayAudit
import KeywayTrust
import KeywayVocabulary
import KeywayWire

/// keywayd's side of smaller paths: it looks up the interface toward each peer (routes only it
/// can read), sets the TUN device's MTU to what the configured transforms leave of the smallest
/// (unless the operator fixed one), and tells the datapath both. Run when the configuration or
/// the generated policies change and every few seconds (an interface MTU may change meanwhile).
final class OuterPathWatch {
    private let kernel: HostKernel
    private let audit: AuditLog
    private let mark: UInt32
    /// `--tun-mtu N`; nil: follow the outer interfaces.
    private let fixedTunMTU: Int?
    /// What the datapath was last told (sent again to a new datapath).
    private(set) var lastMessage: OuterPaths?
    private(set) var tunMTU: Int
    /// Look-ups that failed, so that each is audited once until it works again.
    private var failing: Set<IPv4Address> = []

    init(kernel: HostKernel, audit: AuditLog, mark: UInt32, initialTunMTU: Int, fixedTunMTU: Int?) {
        self.kernel = kernel
        self.audit = audit
        self.mark = mark
        self.tunMTU = initialTunMTU
        self.fixedTunMTU = fixedTunMTU
    }

    /// Looks again; returns the message for the datapath when anything changed.
    func refresh(bounds: ConfigurationBounds, generated: [PolicyRecord], tunIndex: Int32) -> OuterPaths? {
        var paths: [IPv4Address: Int] = [:]
        let destinations = OuterPathPlan.destinations(bounds, generated: generated)
        for (destination, answer) in zip(destinations, kernel.pathMTUs(toward: destinations.map(\.value), mark: mark)) {
            switch answer {
            case .success(let mtu):
                paths[destination] = mtu
                failing.remove(destination)
            case .failure(let error):
                if failing.insert(destination).inserted {
                    audit.event(.warning, msgID: "path-mtu",
                                "no route toward \(destination) to take its MTU from: \(error)",
                                [("destination", destination.description)])
                }
            }
        }
        let fallback = paths.values.min() ?? 1500
        let wanted = fixedTunMTU ?? OuterPathPlan.tunMTU(bounds, generated: generated, mtu: { paths[$0] ?? fallback })
            ?? tunMTU
        if wanted != tunMTU, tunIndex > 0 {
            if let e = kernel.apply([.setMTU(interfaceIndex: tunIndex, bytes: UInt32(wanted))]).first ?? nil {
                audit.rateLimitedEvent(key: "tun-mtu", .error, msgID: "tun-mtu",
                                       "could not set the TUN MTU to \(wanted): \(e)",
                                       [("mtu", String(wanted)), ("errno", String(e.rawValue))])
            } else {
                audit.event(.notice, msgID: "tun-mtu", "TUN MTU set to \(wanted)",
                            [("mtu", String(wanted)), ("was", String(tunMTU)),
                             ("outer-mtu", String(fallback)), ("fixed", fixedTunMTU == nil ? "no" : "yes")])
                tunMTU = wanted
            }
        }
        let message = OuterPathPlan.message(paths: paths, tunMTU: tunMTU)
        guard message != lastMessage else { return nil }
        lastMessage = message
        return message
    }
}
