import KeywayConfig
import KeywayCrypto
import KeywayWire

/// What keyway-datapath must know of the configuration: active policies and, for those
/// keyed by a manual-sa, both directions of each SA with their keys.
enum DatapathPush {
    static func build(_ config: Configuration, generation: UInt64) -> DatapathConfig {
        let s = Schema.policy
        var policies: [PolicyRecord] = []
        var sas: [SARecord] = []
        for item in config.orderedPolicies where !item.disabled && config.inactiveReason(item) == nil {
            guard case .address(let src) = item.value("src-address", in: s), case .address(let dst) = item.value("dst-address", in: s),
                  case .ip(let saSrc) = item.value("sa-src-address", in: s), case .ip(let saDst) = item.value("sa-dst-address", in: s),
                  case .choices(let protocols) = item.value("ipsec-protocols", in: s),
                  case .boolean(let tunnel) = item.value("tunnel", in: s), case .integer(let priority) = item.value("priority", in: s)
            else { continue }
            let action: UInt8 = ["none": 0, "discard": 1, "encrypt": 2][item.value("action", in: s).text ?? ""] ?? 2
            let level: UInt8 = ["use": 0, "require": 1, "unique": 2][item.value("level", in: s).text ?? ""] ?? 1
            let df: UInt8 = ["clear": 0, "inherit": 1, "set": 2][item.value("dont-fragment", in: s).text ?? ""] ?? 0
            let id = UInt32(item.id)
            policies.append(PolicyRecord(
                id: id, source: src.network.value, sourceLength: UInt8(src.prefixLength), sourcePort: src.port ?? 0,
                destination: dst.network.value, destinationLength: UInt8(dst.prefixLength), destinationPort: dst.port ?? 0,
                proto: Schema.protocolNumber(item.value("protocol", in: s).text ?? "all") ?? 255, action: action, level: level,
                esp: protocols.contains("esp"), ah: protocols.contains("ah"), tunnel: tunnel,
                saSource: saSrc.value, saDestination: saDst.value, priority: Int32(clamping: priority), dontFragment: df))
            guard action == 2, let name = item.value("manual-sa", in: s).text, name != "none",
                  let manual = config.manualSAs.first(where: { $0.name == name }) else { continue }
            sas += manualSAs(manual, policyID: id, protocols: protocols, tunnel: tunnel, local: saSrc.value, remote: saDst.value)
        }
        return DatapathConfig(generation: generation, policies: policies, sas: sas)
    }

    /// Manual SPIs and keys are `incoming/outgoing` pairs; outbound runs local -> remote.
    static func manualSAs(_ m: Item, policyID: UInt32, protocols: [String], tunnel: Bool, local: UInt32, remote: UInt32) -> [SARecord] {
        let s = Schema.manualSA
        var out: [SARecord] = []
        let lifetime: UInt64 = { if case .duration(let d) = m.value("lifetime", in: s) { return d } else { return 0 } }()
        func pair(_ name: String) -> (String, String) {
            if case .pair(let a, let b) = m.value(name, in: s) { return (a, b) } else { return ("", "") }
        }
        for proto in protocols {
            let esp = proto == "esp"
            let (spiIn, spiOut) = pair(esp ? "esp-spi" : "ah-spi")
            let (encIn, encOut) = esp ? pair("esp-enc-key") : ("", "")
            let (authIn, authOut) = pair(esp ? "esp-auth-key" : "ah-key")
            let encName = esp ? (m.value("esp-enc-algorithm", in: s).text ?? "3des") : "null"
            let authName = m.value(esp ? "esp-auth-algorithm" : "ah-algorithm", in: s).text ?? "sha1"
            // With ESP in tunnel mode, AH protects the ESP packet in transport mode.
            let saTunnel = esp ? tunnel : (tunnel && !protocols.contains("esp"))
            for (inbound, spi, enc, auth) in [(false, spiOut, encOut, authOut), (true, spiIn, encIn, authIn)] {
                guard let number = Schema.parseSPI(spi), number != 0 else { continue }
                out.append(SARecord(policyID: policyID, inbound: inbound, proto: esp ? 50 : 51, spi: number,
                                    source: inbound ? remote : local, destination: inbound ? local : remote, tunnel: saTunnel,
                                    encryption: encName, integrity: authName, encryptionKey: Hex.decode(enc) ?? [],
                                    integrityKey: Hex.decode(auth) ?? [], lifetimeSeconds: lifetime))
            }
        }
        return out
    }
}
