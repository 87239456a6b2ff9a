import Glibc
import KeywayConfig
import KeywayVocabulary
import KeywayWire

/// What printouts show of the running appliance: the datapath's last state, joined with the
/// manual-SA keys this process configured (the datapath never sends keys back).
public struct LiveRuntime: RuntimeView {
    public init() {}

    public var state = DatapathState(sas: [], policies: [], statistics: []) {
        didSet { policyIndex = Dictionary(state.policies.enumerated().map { ($0.element.id, $0.offset) },
                                          uniquingKeysWith: { a, _ in a }) }
    }
    public var ike = IKEState(peers: [], establishedPolicies: []) {
        didSet { establishedByIKE = Set(ike.establishedPolicies) }
    }
    /// Keys by (SPI, protocol, destination), from the configuration.
    public var keys: [SAKey: (encryption: [UInt8], integrity: [UInt8])] = [:]
    /// Sends the flush to keyway-datapath; false when it is not connected.
    public var requestFlush: (UInt8) -> Bool = { _ in false }
    /// `print stats` asks per policy: 100,000 of them must not each search the reports.
    private var policyIndex: [UInt32: Int] = [:]
    private var establishedByIKE: Set<UInt32> = []
    /// Every process's recent audit events, for /log.
    public var events = EventLog()

    public func logEntries() -> [LogEntry] { events.entries }

    /// An SA as the datapath and the configuration both name it.
    public struct SAKey: Hashable, Sendable {
        public var spi: UInt32, proto: UInt8, destination: UInt32
    }

    public static func keyOf(spi: UInt32, proto: UInt8, destination: UInt32) -> SAKey {
        SAKey(spi: spi, proto: proto, destination: destination)
    }

    public func installedSAs(showSensitive: Bool) -> [(flags: String, fields: [(String, String)])] {
        let now = UInt64(time(nil))
        return state.sas.map { sa in
            var fields: [(String, String)] = [
                ("spi", String(sa.spi, radix: 16, uppercase: true)),
                ("src-address", ip(sa.source)), ("dst-address", ip(sa.destination)),
                ("auth-algorithm", sa.integrity), ("enc-algorithm", sa.encryption),
                ("replay", String(sa.replayWindow / 8)), ("state", sa.state),
            ]
            let k = keys[Self.keyOf(spi: sa.spi, proto: sa.proto, destination: sa.destination)]
            let hex = { (b: [UInt8]) in "\"" + b.map { String(format2: $0) }.joined() + "\"" }
            fields.append(("auth-key", showSensitive ? hex(k?.integrity ?? []) : "<hidden>"))
            if sa.proto == 50 { fields.append(("enc-key", showSensitive ? hex(k?.encryption ?? []) : "<hidden>")) }
            fields += [
                ("addtime", clock(now - sa.ageSeconds)),
                ("add-lifetime", "\(Duration.format(sa.softSeconds))/\(Duration.format(sa.hardSeconds))"),
                ("usetime", sa.used ? clock(now - sa.sinceFirstUse) : "never"),
                ("use-lifetime", "\(Duration.format(sa.useSoftSeconds))/\(Duration.format(sa.useHardSeconds))"),
                ("current-bytes", String(sa.bytes)), ("lifebytes", "\(sa.softBytes)/\(sa.hardBytes)"),
                // Keyway's: what IPsec adds at the path's size, and (outbound) the path MTU now.
                ("overhead", String(sa.overhead)),
            ]
            if sa.pathMTU > 0 { fields.append(("path-mtu", String(sa.pathMTU))) }
            return ((sa.proto == 50 ? "E" : "A") + (sa.pfs ? "P" : ""), fields)
        }
    }

    public func generatedPolicies() -> [Item] {
        ike.generatedPolicies.map { p in
            let s = p.selector
            var item = Item(id: Int(p.id), values: [
                "src-address": .address(AddressSpec(address: s.source.address, prefixLength: s.source.length,
                                                    port: s.sourcePort)),
                "dst-address": .address(AddressSpec(address: s.destination.address, prefixLength: s.destination.length,
                                                    port: s.destinationPort)),
                "sa-src-address": .ip(p.saSource), "sa-dst-address": .ip(p.saDestination),
                "tunnel": .boolean(p.tunnel),
            ])
            item.dynamic = true
            return item
        }
    }

    public func remotePeers() -> [[(String, String)]] {
        ike.peers.map { p in
            [("local-address", ip(p.local)), ("remote-address", ip(p.remote)), ("state", p.state), ("side", p.side),
             ("ike-version", String(p.version))]
                + (p.natTraversal ? [("nat-traversal", "yes"), ("remote-port", String(p.remotePort))] : [])
                + (p.state == "established" ? [("established", Duration.format(p.establishedSeconds))] : [])
        }
    }

    public func policyStats(id: Int) -> [(String, String)] {
        let p = UInt32(exactly: id).flatMap { policyIndex[$0] }.map { state.policies[$0] }
        let established = p?.established == true || UInt32(exactly: id).map(establishedByIKE.contains) == true
        return [("ph2-state", established ? "established" : "no-phase2"),
                ("in-accepted", String(p?.inAccepted ?? 0)), ("in-dropped", String(p?.inDropped ?? 0)),
                ("in-transformed", String(p?.inTransformed ?? 0)),
                ("out-accepted", String(p?.outAccepted ?? 0)), ("out-dropped", String(p?.outDropped ?? 0)),
                ("out-transformed", String(p?.outTransformed ?? 0))]
    }

    public func statistics() -> [(String, UInt64)] {
        let values = Dictionary(state.statistics.map { ($0.name, $0.value) }, uniquingKeysWith: +)
        return Statistics.names.map { ($0, values[$0] ?? 0) }
    }

    /// The count is of the SAs the datapath last reported; they leave the printout at once.
    public mutating func flush(saType: String) -> Int {
        let proto: UInt8 = saType == "esp" ? 50 : saType == "ah" ? 51 : 0
        guard requestFlush(proto) else { return 0 }
        let before = state.sas.count
        state.sas.removeAll { proto == 0 || $0.proto == proto }
        return before - state.sas.count
    }

    private func ip(_ v: UInt32) -> String { IPv4Address.text(v) }

    /// RouterOS's `jan/28/2003 20:55:12`, in UTC.
    private func clock(_ epoch: UInt64) -> String {
        var t = time_t(epoch)
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(months[Int(tm.tm_mon) % 12])/\(two(tm.tm_mday))/\(tm.tm_year + 1900) "
            + "\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec))"
    }
}

extension String {
    init(format2 byte: UInt8) {
        let d = Array("0123456789abcdef")
        self = String([d[Int(byte >> 4)], d[Int(byte & 15)]])
    }
}
