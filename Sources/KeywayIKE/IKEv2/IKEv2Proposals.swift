import KeywayVocabulary

/// Algorithms as IKEv2 transforms (RFC 7296 3.3.2, IANA) and back. Encryption IDs are the ESP
/// transform IDs IKEv1's quick mode already maps (Phase2Choice.espID); PRF and integrity have
/// registries of their own.
enum IKEv2Transforms {
    static func encryption(_ e: EncryptionAlgorithm) -> IKEv2Transform? {
        guard let (id, bits) = Phase2Choice.espID(e) else { return nil }
        return IKEv2Transform(type: IKEv2TransformType.encryption, id: UInt16(id), keyLength: bits)
    }

    static func encryption(_ t: IKEv2Transform) -> EncryptionAlgorithm? {
        guard t.type == IKEv2TransformType.encryption, t.onlyKnownAttributes else { return nil }
        return EncryptionAlgorithm.allCases.first { e in
            guard let (id, bits) = Phase2Choice.espID(e) else { return false }
            return UInt16(id) == t.id && bits == t.keyLength
        }
    }

    static func prfID(_ h: HashAlgorithm) -> UInt16 {
        switch h {
        case .md5: return 1
        case .sha1: return 2
        case .sha256: return 5
        case .sha384: return 6
        case .sha512: return 7
        }
    }

    static func prf(_ t: IKEv2Transform) -> HashAlgorithm? {
        guard t.type == IKEv2TransformType.prf, t.attributes.isEmpty else { return nil }
        return HashAlgorithm.allCases.first { prfID($0) == t.id }
    }

    /// AUTH_HMAC_MD5_96, AUTH_HMAC_SHA1_96, AUTH_HMAC_SHA2_256_128, _384_192, _512_256.
    static func integrityID(_ i: IntegrityAlgorithm) -> UInt16? {
        switch i {
        case .null: return nil
        case .md5: return 1
        case .sha1: return 2
        case .sha256: return 12
        case .sha384: return 13
        case .sha512: return 14
        }
    }

    static func integrity(_ t: IKEv2Transform) -> IntegrityAlgorithm? {
        guard t.type == IKEv2TransformType.integrity, t.attributes.isEmpty else { return nil }
        return IntegrityAlgorithm.allCases.first { integrityID($0) == t.id }
    }

    static func group(_ t: IKEv2Transform) -> DHGroup? {
        guard t.type == IKEv2TransformType.dh, t.attributes.isEmpty else { return nil }
        return DHGroup(rawValue: Int(t.id))
    }

    static func dh(_ g: DHGroup) -> IKEv2Transform {
        IKEv2Transform(type: IKEv2TransformType.dh, id: UInt16(g.rawValue))
    }

    static let noESN = IKEv2Transform(type: IKEv2TransformType.esn, id: 0)

    /// A compact description of what a proposal offers, for audit lines.
    static func describe(_ p: IKEv2Proposal) -> String {
        var parts: [String] = []
        for type in [IKEv2TransformType.encryption, IKEv2TransformType.prf, IKEv2TransformType.integrity,
                     IKEv2TransformType.dh] {
            let names: [String] = p.transforms.filter { $0.type == type }.map { t in
                switch type {
                case IKEv2TransformType.encryption: return encryption(t)?.rawValue ?? "encr-\(t.id)"
                case IKEv2TransformType.prf: return prf(t).map { "prf-\($0.rawValue)" } ?? "prf-\(t.id)"
                case IKEv2TransformType.integrity: return integrity(t)?.rawValue ?? "integ-\(t.id)"
                default: return group(t)?.name ?? "group-\(t.id)"
                }
            }
            if !names.isEmpty { parts.append(names.joined(separator: ",")) }
        }
        let proto = IKEv2Protocol(rawValue: p.protocolID).map { "\($0)" } ?? "protocol-\(p.protocolID)"
        return (proto == "ike" ? "" : proto + " ") + parts.joined(separator: "/")
    }
}

extension IKEPeer {
    /// The IKE SA proposal we make: the peer's cipher, PRF and integrity from hash-algorithm (none
    /// with AES-GCM, RFC 5282), and every group of its dh-group list.
    func ikeProposal(number: UInt8 = 1, spi: [UInt8] = []) -> IKEv2Proposal {
        var transforms: [IKEv2Transform] = []
        if let e = IKEv2Transforms.encryption(encryption) { transforms.append(e) }
        transforms.append(IKEv2Transform(type: IKEv2TransformType.prf, id: IKEv2Transforms.prfID(hash)))
        if !encryption.isAEAD, let i = IKEv2Transforms.integrityID(integrity) {
            transforms.append(IKEv2Transform(type: IKEv2TransformType.integrity, id: i))
        }
        transforms += groups.map(IKEv2Transforms.dh)
        return IKEv2Proposal(number: number, protocolID: IKEv2Protocol.ike.rawValue, spi: spi, transforms: transforms)
    }

    /// hash-algorithm names both the PRF and the integrity algorithm of an IKEv2 SA.
    var integrity: IntegrityAlgorithm {
        switch hash {
        case .md5: return .md5
        case .sha1: return .sha1
        case .sha256: return .sha256
        case .sha384: return .sha384
        case .sha512: return .sha512
        }
    }

    var ikeSuiteDescription: String {
        "\(encryption.rawValue)/\(hash.rawValue)/\(groups.map(\.name).joined(separator: ","))"
    }

    /// The responder's pick of an IKE SA proposal: ours, whichever of our groups the peer lists
    /// (the one it sent a KE for first, if any). Nil with a description of what was offered.
    func chooseIKE(_ proposals: [IKEv2Proposal],
                   preferredGroup: DHGroup?) -> Result<(IKEv2Proposal, IKEv2Suite), NegotiationError> {
        for p in proposals where p.protocolID == IKEv2Protocol.ike.rawValue {
            let ts = p.transforms
            guard ts.contains(where: { IKEv2Transforms.encryption($0) == encryption }),
                  ts.contains(where: { IKEv2Transforms.prf($0) == hash }) else { continue }
            let integrities = ts.filter { $0.type == IKEv2TransformType.integrity }
            if encryption.isAEAD {
                guard integrities.allSatisfy({ $0.id == 0 }) else { continue }
            } else {
                guard integrities.contains(where: { IKEv2Transforms.integrity($0) == integrity }) else { continue }
            }
            let offered = ts.compactMap(IKEv2Transforms.group)
            let common = groups.filter { offered.contains($0) }
            guard let group = preferredGroup.flatMap({ common.contains($0) ? $0 : nil }) ?? common.first else {
                continue
            }
            var chosen = [IKEv2Transforms.encryption(encryption), IKEv2Transform(type: IKEv2TransformType.prf,
                                                                                id: IKEv2Transforms.prfID(hash))]
                .compactMap { $0 }
            if !encryption.isAEAD, let i = IKEv2Transforms.integrityID(integrity) {
                chosen.append(IKEv2Transform(type: IKEv2TransformType.integrity, id: i))
            }
            chosen.append(IKEv2Transforms.dh(group))
            let suite = IKEv2Suite(encryption: encryption, prf: hash, integrity: encryption.isAEAD ? .null : integrity,
                                   group: group)
            return .success((IKEv2Proposal(number: p.number, protocolID: p.protocolID, spi: p.spi, transforms: chosen),
                             suite))
        }
        let offered = proposals.map(IKEv2Transforms.describe).joined(separator: "; ")
        return .failure(.noProposal("peer offered \(offered.isEmpty ? "nothing usable" : offered); "
                                    + "peer \(IPv4Address.text(address))/\(prefixLength) has \(ikeSuiteDescription)"))
    }

    /// The initiator's check of the responder's choice: one transform of each type, all ours.
    func acceptIKE(_ proposals: [IKEv2Proposal]) -> IKEv2Suite? {
        guard proposals.count == 1, let p = proposals.first, p.protocolID == IKEv2Protocol.ike.rawValue else {
            return nil
        }
        let ts = p.transforms
        func one(_ type: UInt8) -> IKEv2Transform? {
            let list = ts.filter { $0.type == type }
            return list.count == 1 ? list.first : nil
        }
        guard let e = one(IKEv2TransformType.encryption).flatMap(IKEv2Transforms.encryption), e == encryption,
              let h = one(IKEv2TransformType.prf).flatMap(IKEv2Transforms.prf), h == hash,
              let g = one(IKEv2TransformType.dh).flatMap(IKEv2Transforms.group), groups.contains(g) else { return nil }
        let integrities = ts.filter { $0.type == IKEv2TransformType.integrity }
        if encryption.isAEAD {
            guard integrities.isEmpty else { return nil }
        } else {
            guard integrities.count == 1, integrities.first.flatMap(IKEv2Transforms.integrity) == integrity else {
                return nil
            }
        }
        guard ts.allSatisfy({ [1, 2, 3, 4].contains($0.type) }) else { return nil }
        return IKEv2Suite(encryption: e, prf: h, integrity: encryption.isAEAD ? .null : integrity, group: g)
    }
}

/// A child SA's algorithms as negotiated.
struct IKEv2ChildChoice: Equatable, CustomStringConvertible {
    var proto: IKEv2Protocol
    var encryption: EncryptionAlgorithm
    var integrity: IntegrityAlgorithm
    var group: DHGroup?

    var description: String {
        (proto == .esp ? "esp \(encryption.rawValue)/" : "ah ") + integrity.rawValue
            + (group.map { "/\($0.name)" } ?? "")
    }
}

extension IKEPolicy {
    var ikev2Protocol: IKEv2Protocol { esp ? .esp : .ah }

    /// Our child SA proposals: ESP with AEAD ciphers in one proposal and the others with every
    /// integrity algorithm in another (RFC 7296 forbids mixing them), or AH; a DH transform only
    /// where a KE goes with it (CREATE_CHILD_SA with PFS), and no ESN.
    func childProposals(spi: UInt32, withGroup group: DHGroup?) -> [IKEv2Proposal] {
        var out: [[IKEv2Transform]] = []
        let tail = (group.map { [IKEv2Transforms.dh($0)] } ?? []) + [IKEv2Transforms.noESN]
        if esp {
            let aead = encAlgorithms.filter(\.isAEAD).compactMap(IKEv2Transforms.encryption)
            let plain = encAlgorithms.filter { !$0.isAEAD }.compactMap(IKEv2Transforms.encryption)
            let integ = authAlgorithms.compactMap(IKEv2Transforms.integrityID).map {
                IKEv2Transform(type: IKEv2TransformType.integrity, id: $0)
            }
            if !aead.isEmpty { out.append(aead + tail) }
            if !plain.isEmpty, !integ.isEmpty { out.append(plain + integ + tail) }
        } else {
            let integ = authAlgorithms.compactMap(IKEv2Transforms.integrityID).map {
                IKEv2Transform(type: IKEv2TransformType.integrity, id: $0)
            }
            if !integ.isEmpty { out.append(integ + tail) }
        }
        return out.enumerated().map {
            IKEv2Proposal(number: UInt8($0.offset + 1), protocolID: ikev2Protocol.rawValue, spi: spi.bytes,
                          transforms: $0.element)
        }
    }

    var childProposalDescription: String {
        (esp ? encAlgorithms.map(\.rawValue).joined(separator: ",") + "/" : "ah ")
            + authAlgorithms.map(\.rawValue).joined(separator: ",") + "/" + (pfsGroup?.name ?? "no pfs")
    }

    /// The responder's pick: the first of the peer's proposals that fits this policy's proposal.
    /// `group`: the DH group the exchange must use (PFS in CREATE_CHILD_SA), nil when none (IKE_AUTH,
    /// or a policy without pfs-group: then a proposal must offer no group, or NONE among its groups).
    func chooseChild(_ proposals: [IKEv2Proposal], group: DHGroup?,
                     ignoreGroups: Bool) -> Result<(IKEv2Proposal, IKEv2ChildChoice, UInt32), NegotiationError> {
        for p in proposals where p.protocolID == ikev2Protocol.rawValue && p.spi.count == 4 {
            let ts = p.transforms
            guard ts.allSatisfy(\.onlyKnownAttributes) else { continue }
            var enc: EncryptionAlgorithm = .null
            var integ: IntegrityAlgorithm = .null
            if esp {
                guard let e = ts.compactMap(IKEv2Transforms.encryption).first(where: { encAlgorithms.contains($0) })
                else { continue }
                enc = e
                if !e.isAEAD {
                    guard let i = ts.compactMap(IKEv2Transforms.integrity).first(where: { authAlgorithms.contains($0) })
                    else { continue }
                    integ = i
                }
            } else {
                guard let i = ts.compactMap(IKEv2Transforms.integrity)
                    .first(where: { authAlgorithms.contains($0) && $0 != .null }) else { continue }
                integ = i
            }
            let esns = ts.filter { $0.type == IKEv2TransformType.esn }
            guard esns.isEmpty || esns.contains(where: { $0.id == 0 }) else { continue }
            let groups = ts.filter { $0.type == IKEv2TransformType.dh }
            var chosenGroup: DHGroup?
            if !ignoreGroups {
                if let group {
                    guard groups.contains(where: { $0.id == UInt16(group.rawValue) }) else { continue }
                    chosenGroup = group
                } else {
                    guard groups.isEmpty || groups.contains(where: { $0.id == 0 }) else { continue }
                }
            }
            var chosen: [IKEv2Transform] = []
            if esp, let e = IKEv2Transforms.encryption(enc) { chosen.append(e) }
            if let id = IKEv2Transforms.integrityID(integ) {
                chosen.append(IKEv2Transform(type: IKEv2TransformType.integrity, id: id))
            }
            if let g = chosenGroup { chosen.append(IKEv2Transforms.dh(g)) }
            if !esns.isEmpty { chosen.append(IKEv2Transforms.noESN) }
            let spi = p.spi.reduce(0) { $0 << 8 | UInt32($1) }
            return .success((IKEv2Proposal(number: p.number, protocolID: p.protocolID, spi: [], transforms: chosen),
                             IKEv2ChildChoice(proto: ikev2Protocol, encryption: enc, integrity: integ,
                                              group: chosenGroup),
                             spi))
        }
        let offered = proposals.map(IKEv2Transforms.describe).joined(separator: "; ")
        return .failure(.noProposal("peer offered \(offered.isEmpty ? "nothing usable" : offered); "
                                    + "policy \(id) has \(childProposalDescription)"))
    }

    /// The initiator's check of the responder's child SA choice against what we offered.
    func acceptChild(_ proposals: [IKEv2Proposal], group: DHGroup?) -> (IKEv2ChildChoice, UInt32)? {
        guard proposals.count == 1, let p = proposals.first, p.protocolID == ikev2Protocol.rawValue, p.spi.count == 4
        else { return nil }
        let ts = p.transforms
        let encs = ts.filter { $0.type == IKEv2TransformType.encryption }
        let integs = ts.filter { $0.type == IKEv2TransformType.integrity }
        let groups = ts.filter { $0.type == IKEv2TransformType.dh }
        var enc: EncryptionAlgorithm = .null, integ: IntegrityAlgorithm = .null
        if esp {
            guard encs.count == 1, let e = encs.first.flatMap(IKEv2Transforms.encryption), encAlgorithms.contains(e)
            else { return nil }
            enc = e
        } else {
            guard encs.isEmpty else { return nil }
        }
        if enc.isAEAD {
            guard integs.isEmpty || integs.allSatisfy({ $0.id == 0 }) else { return nil }
        } else {
            guard integs.count == 1, let i = integs.first.flatMap(IKEv2Transforms.integrity), authAlgorithms.contains(i)
            else { return nil }
            integ = i
        }
        if let group {
            guard groups.count == 1, groups.first?.id == UInt16(group.rawValue) else { return nil }
        } else {
            guard groups.allSatisfy({ $0.id == 0 }) else { return nil }
        }
        guard ts.filter({ $0.type == IKEv2TransformType.esn }).allSatisfy({ $0.id == 0 }) else { return nil }
        return (IKEv2ChildChoice(proto: ikev2Protocol, encryption: enc, integrity: integ, group: group),
                p.spi.reduce(0) { $0 << 8 | UInt32($1) })
    }
}
