import KeywayCrypto
import KeywayTrust
import KeywayVocabulary
import KeywayWire

/// What the datapath process must tell the others after a change.
public enum DatapathEffect: Equatable, Sendable {
    /// To keywayd: the generated policies held now (it routes their far sides after checking them).
    case generatedPolicies(GeneratedPolicySet)
    case audit(AuditNote)
}

/// The datapath's tables as the configuration and keyway-ike shape them: the SPD from the monitor's
/// configured policies, manual SAs from the monitor, negotiated SAs and generated policies from
/// keyway-ike (each request checked against the configuration first, as if IKE were compromised),
/// flushes, and the state the monitor prints. Sans-IO: messages and time (seconds) in, effects out.
public final class DatapathController {
    public let engine: Datapath
    public private(set) var generation: UInt64 = 0
    /// Requests from keyway-ike refused because the configuration does not allow them.
    public private(set) var refusedFromIKE: UInt64 = 0
    /// The TUN device's offloads (what `keyway status` shows).
    public var offloads: [String] = []
    private var bounds = ConfigurationBounds(policies: [], peers: [])
    private var ownAddresses: [IPv4Address] = []
    /// Manual SAs by the record that made them: an unchanged record keeps its SA (and its sequence numbers).
    private var manual: [SARecord: SecurityAssociation] = [:]
    /// Flushed by the operator: not re-installed while the configuration keeps offering the same record.
    private var flushed: Set<SARecord> = []
    /// SAs keyed by IKE, oldest first (the newest outbound SA of a policy is the one used).
    private var negotiated: [(record: SARecord, sa: SecurityAssociation)] = []
    /// At the bottom of the SPD, below every configured policy; each goes with its last SA.
    public private(set) var generatedPolicies: [PolicyRecord] = []
    /// Our addresses some inbound SA is for: a dropped packet's audit line depends on it, once per
    /// packet, so it must not cost a search through 20,000 SAs.
    private var inboundDestinations: Set<UInt32> = []
    private var effects: [DatapathEffect] = []

    public init(engine: Datapath = Datapath(policies: [])) { self.engine = engine }

    public var installedCount: Int { manual.count + negotiated.count }
    /// What is kept of each negotiated SA's record (tests: no keys among it).
    var negotiatedRecords: [SARecord] { negotiated.map(\.record) }

    // MARK: from the monitor and keywayd

    /// The monitor's whole configuration. Negotiated SAs and generated policies it no longer allows go.
    /// `progress` is called now and then while 20,000 SAs are keyed (the process answers keywayd's
    /// pings from it).
    public func configure(_ config: DatapathConfig, now: UInt64, progress: () -> Void = {}) -> [DatapathEffect] {
        generation = config.generation
        bounds = config.bounds
        // No configuration makes one; the SPD's decision for it is to discard (SPD.Decision).
        for bounded in bounds.policies where bounded.policy.action == .encrypt && !bounded.policy.esp
            && !bounded.policy.ah {
            note(.warning, "policy-invalid",
                 "policy \(bounded.policy.id) encrypts with neither ESP nor AH: its packets are dropped",
                 [("policy", String(bounded.policy.id))])
        }
        revalidate()
        var next: [SARecord: SecurityAssociation] = [:]
        flushed.formIntersection(config.sas)
        for (i, record) in config.sas.enumerated() where !flushed.contains(record) {
            if i % 1024 == 1023 { progress() }
            if let existing = manual[record] { next[record] = existing; continue }
            do { next[record] = try Self.makeSA(record, now: now) } catch {
                note(.error, "sa-install", "SA not installed: \(error)", [("spi", String(record.spi, radix: 16))])
            }
        }
        manual = next
        progress()
        applyPolicies()
        progress()
        reinstall()
        note(.informational, "config", "datapath configuration applied",
             [("generation", String(config.generation)), ("policies", String(config.bounds.policies.count)),
              ("sas", String(manual.count))])
        return take()
    }

    /// keywayd's look-up of the interfaces toward each peer (only keywayd reads routes).
    public func setOuterPaths(_ message: OuterPaths) -> [DatapathEffect] {
        engine.setLocalPaths(defaultMTU: Int(message.defaultMTU),
                             paths: message.paths.map { ($0.destination, Int($0.mtu)) })
        tunMTU = message.tunMTU
        note(.informational, "outer-paths", "outer path MTUs from keywayd",
             [("default", String(message.defaultMTU)), ("paths", String(message.paths.count)),
              ("tun-mtu", String(message.tunMTU))])
        return take()
    }

    /// The TUN device's MTU as keywayd set it (0: not told yet).
    public private(set) var tunMTU: UInt16 = 0

    /// keywayd's list of the appliance's own addresses (no generated policy may cover them).
    public func setHostAddresses(_ message: HostAddresses) -> [DatapathEffect] {
        ownAddresses = message.ipv4
        revalidate()
        return take()
    }

    /// `/ip ipsec installed-sa flush`.
    public func flush(_ proto: IPsecProtocol?) -> [DatapathEffect] {
        let gone = manual.keys.filter { proto == nil || $0.proto == proto }
        for record in gone { manual[record] = nil; flushed.insert(record) }
        negotiated.removeAll { proto == nil || $0.record.proto == proto }
        let count = engine.flush(proto)
        dropUnusedGenerated()
        reinstall()
        note(.notice, "sa-flush", "installed SAs flushed",
             [("sa-type", proto.map(\.description) ?? "all"), ("count", String(count))])
        return take()
    }

    // MARK: from keyway-ike, checked

    public func install(_ request: SAInstall, now: UInt64) -> [DatapathEffect] {
        let held = NegotiatedSARule.Held(generated: generatedPolicies, inboundSAs: inboundKeys,
                                         negotiatedCount: negotiated.count)
        if let refusal = NegotiatedSARule.refusal(request, bounds: bounds, ownAddresses: ownAddresses, held: held) {
            return refuse("SA install", refusal)
        }
        var made: [(SARecord, SecurityAssociation)] = []
        for var record in request.sas {
            do {
                let sa = try Self.makeSA(record, now: now)
                // The SA's Secrets hold the keys: the record, kept for the trust checks and the
                // printouts, keeps no copy of its own (and costs an SA two allocations less).
                record.encryptionKey = []
                record.integrityKey = []
                made.append((record, sa))
            } catch {
                return refuse("SA install", Refusal("SA \(String(record.spi, radix: 16)) cannot be keyed: \(error)"))
            }
        }
        if !request.generatedPolicies.isEmpty {
            generatedPolicies += request.generatedPolicies
            applyPolicies()
        }
        negotiated += made
        // Installed after all the others, as reinstall() would: the newest outbound SA of a policy wins.
        for (record, sa) in made { install(record, sa) }
        return take()
    }

    public func remove(_ request: SARemove) -> [DatapathEffect] {
        negotiated.removeAll { n in
            request.entries.contains {
                $0.spi == n.record.spi && $0.proto == n.record.proto && $0.destination == n.record.destination
            }
        }
        dropUnusedGenerated()
        reinstall()
        return take()
    }

    /// keyway-ike asked for something the configuration does not allow: nothing changes.
    private func refuse(_ what: String, _ refusal: Refusal) -> [DatapathEffect] {
        refusedFromIKE += 1
        note(.warning, "refused", "\(what) from keyway-ike refused: \(refusal.reason)",
             [("from", "keyway-ike"), ("reason", refusal.reason)], rateLimitKey: "refused-ike")
        return take()
    }

    // MARK: state

    /// Whether an ESP/AH packet for `destination` could be ours (worth an audit line when dropped).
    public func holdsInboundSA(for destination: UInt32) -> Bool { inboundDestinations.contains(destination) }

    /// Built every second for up to 20,000 SAs: one array, filled and sorted in place, so that the
    /// peak this report adds to the datapath's memory is the report itself.
    public func state(now t: UInt64) -> DatapathState {
        var sas: [SAStatus] = []
        sas.reserveCapacity(installedCount)
        var withSAs = Set<UInt32>()
        func add(_ record: SARecord, _ sa: SecurityAssociation) {
            var status = SAStatus(spi: sa.spi, proto: sa.proto.rawValue, source: sa.source, destination: sa.destination,
                                  encryption: sa.esp?.encryption.rawValue ?? "none",
                                  integrity: sa.esp?.integrity.rawValue ?? sa.ah?.integrity.rawValue ?? "none",
                                  state: sa.state.rawValue, ageSeconds: t &- sa.addTime,
                                  sinceFirstUse: sa.firstUse.map { t &- $0 } ?? 0,
                                  used: sa.firstUse != nil, bytes: sa.bytes, replayWindow: sa.replay.size,
                                  softSeconds: sa.lifetime.softSeconds ?? 0, hardSeconds: sa.lifetime.hardSeconds ?? 0,
                                  softBytes: sa.lifetime.softBytes ?? 0, hardBytes: sa.lifetime.hardBytes ?? 0)
            status.pfs = record.pfs
            status.useSoftSeconds = sa.lifetime.useSoftSeconds ?? 0
            status.useHardSeconds = sa.lifetime.useHardSeconds ?? 0
            status.sequence = record.inbound ? 0 : sa.sequence
            // What the SA adds at its path's size; the path itself only for outbound SAs.
            let mtu = engine.paths.mtu(toward: .v4(IPv4Address(sa.destination)), now: t)
            status.overhead = UInt16(clamping: min(Int(SAStatus.maximumOverhead), sa.ipsecOverhead.overhead(at: mtu)))
            status.pathMTU = record.inbound ? 0 : UInt16(clamping: mtu)
            sas.append(status)
            withSAs.insert(record.policyID)
        }
        for (record, sa) in manual { add(record, sa) }
        for (record, sa) in negotiated { add(record, sa) }
        sas.sort { ($0.destination, $0.spi) < ($1.destination, $1.spi) }
        let policies = engine.policyCounters.map { id, c in
            PolicyStatus(id: UInt32(id),
                         inAccepted: c.inAccepted, inDropped: c.inDropped, inTransformed: c.inTransformed,
                         outAccepted: c.outAccepted, outDropped: c.outDropped, outTransformed: c.outTransformed,
                         established: withSAs.contains(UInt32(id)))
        } + withSAs.filter { engine.policyCounters[Int($0)] == nil }.map {
            PolicyStatus(id: $0, inAccepted: 0, inDropped: 0, inTransformed: 0, outAccepted: 0, outDropped: 0,
                         outTransformed: 0, established: true)
        }
        var state = DatapathState(sas: sas, policies: policies,
                                  statistics: engine.statistics.map { Counter(name: $0.key, value: $0.value) },
                                  refusedFromIKE: refusedFromIKE)
        state.offloads = offloads
        return state
    }

    // MARK: helpers

    private var inboundKeys: Set<NegotiatedSARule.InboundKey> {
        var keys = Set<NegotiatedSARule.InboundKey>()
        func add(_ r: SARecord) {
            guard r.inbound else { return }
            keys.insert(NegotiatedSARule.InboundKey(destination: r.destination, proto: r.proto, spi: r.spi))
        }
        for record in manual.keys { add(record) }
        for n in negotiated { add(n.record) }
        return keys
    }

    /// After the configuration or our addresses changed: what IKE installed and the configuration
    /// no longer allows goes (with the generated policies it was for).
    private func revalidate() {
        var kept: [PolicyRecord] = []
        for p in generatedPolicies
        where NegotiatedSARule.generatedRefusal(p, bounds: bounds, ownAddresses: ownAddresses, held: kept) == nil {
            kept.append(p)
        }
        let before = (negotiated.count, generatedPolicies.count)
        generatedPolicies = kept
        negotiated.removeAll {
            NegotiatedSARule.saRefusal($0.record, bounds: bounds, ownAddresses: ownAddresses, generated: kept) != nil
        }
        dropUnusedGenerated()
        if before != (negotiated.count, generatedPolicies.count) {
            note(.notice, "sa-revalidate", "negotiated SAs the configuration no longer allows were removed",
                 [("removed", String(before.0 - negotiated.count))])
            applyPolicies()
            reinstall()
        }
    }

    /// A generated policy goes with its last SA.
    private func dropUnusedGenerated() {
        let used = Set(negotiated.map(\.record.policyID))
        let before = generatedPolicies.count
        generatedPolicies.removeAll { !used.contains($0.id) }
        if generatedPolicies.count != before { applyPolicies() }
    }

    /// The SPD: configured policies in their order, then the generated ones below all of them.
    private func applyPolicies() {
        let configured = bounds.policies.map { SecurityPolicy($0.policy, priority: Int($0.policy.priority)) }
        let generated = generatedPolicies.map { SecurityPolicy($0, priority: Int(Int32.min) - 1) }
        engine.replacePolicies(configured + generated)
        engine.tcpMSS = Dictionary((bounds.policies.map(\.policy) + generatedPolicies).map { (Int($0.id), $0.tcpMSS) },
                                   uniquingKeysWith: { first, _ in first })
        effects.append(.generatedPolicies(GeneratedPolicySet(policies: generatedPolicies)))
    }

    private func reinstall() {
        engine.removeAllSAs()
        inboundDestinations = []
        for (record, sa) in manual.map({ ($0.key, $0.value) }) + negotiated.map({ ($0.record, $0.sa) }) {
            install(record, sa)
        }
    }

    private func install(_ record: SARecord, _ sa: SecurityAssociation) {
        if record.inbound {
            engine.installInbound(sa, policyID: Int(record.policyID))
            inboundDestinations.insert(record.destination.value)
        } else {
            engine.installOutbound(sa, policyID: Int(record.policyID))
        }
    }

    private func note(_ level: AuditNote.Level, _ msgID: String, _ text: String, _ fields: [(String, String)] = [],
                      rateLimitKey: String? = nil) {
        effects.append(.audit(AuditNote(level, msgID, text, fields, rateLimitKey: rateLimitKey)))
    }

    private func take() -> [DatapathEffect] { defer { effects.removeAll() }; return effects }

    /// An SA from its record. Manual keys never drive a counter-mode cipher: the IV is the sequence
    /// number, which restarts under the same key after any restart (RFC 8221).
    static func makeSA(_ r: SARecord, now: UInt64) throws -> SecurityAssociation {
        func limit(_ v: UInt64) -> UInt64? { v == 0 ? nil : v }
        let lifetime = Lifetime(hardSeconds: limit(r.lifetimeSeconds), hardBytes: limit(r.hardBytes),
                                softSeconds: limit(r.softSeconds), softBytes: limit(r.softBytes),
                                useHardSeconds: limit(r.useHardSeconds))
        if r.proto == .ah {
            return SecurityAssociation(spi: r.spi, proto: .ah, source: r.source.value,
                                       destination: r.destination.value, tunnel: r.tunnel,
                                       ah: try AHTransform(integrity: r.integrity, key: Secret(r.integrityKey)),
                                       lifetime: lifetime, replayWindow: r.replayWindow,
                                       initialSequence: r.inbound ? 0 : r.initialSequence, now: now)
        }
        guard r.negotiated || !r.encryption.isCounterMode else {
            throw CryptoError.unavailable(algorithm: r.encryption.rawValue,
                                          reason: "counter-mode ciphers are never manually keyed (RFC 8221)")
        }
        let transform = try ESPTransform(encryption: r.encryption, encryptionKey: Secret(r.encryptionKey),
                                         integrity: r.integrity,
                                         integrityKey: r.integrity == .null ? nil : Secret(r.integrityKey),
                                         encrypt: !r.inbound)
        return SecurityAssociation(spi: r.spi, proto: .esp, source: r.source.value, destination: r.destination.value,
                                   tunnel: r.tunnel, esp: transform, lifetime: lifetime, replayWindow: r.replayWindow,
                                   initialSequence: r.inbound ? 0 : r.initialSequence,
                                   udpEncapsulation: r.udpRemotePort == 0 ? nil : (r.udpLocalPort, r.udpRemotePort),
                                   now: now)
    }
}

extension SecurityPolicy {
    /// The SPD's view of a policy record; `priority` orders it (generated ones sit below all).
    init(_ p: PolicyRecord, priority: Int) {
        self.init(id: Int(p.id), selector: p.selector, action: p.action, level: p.level, useESP: p.esp, useAH: p.ah,
                  tunnel: p.tunnel, saSource: p.saSource.value, saDestination: p.saDestination.value,
                  priority: priority, dontFragment: p.dontFragment)
    }
}
