import KeywayVocabulary
import KeywayCrypto

/// Phase 1 algorithms as one ISAKMP transform, and back.
public struct Phase1Choice: Equatable, Sendable, CustomStringConvertible {
    public var encryption: EncryptionAlgorithm
    public var hash: HashAlgorithm
    public var group: DHGroup
    /// As proposed or configured; the engine caps what it uses at `Seconds.maximumLifetime`.
    public var lifetime: Seconds
    /// RFC 2409 authentication method: 1 pre-shared key, 3 RSA signature.
    public var authentication: UInt16 = 1

    public var description: String {
        "\(encryption.rawValue)/\(hash.rawValue)/\(group.name)" + (authentication == 3 ? "/rsa" : "")
    }

    static func encryptionID(_ e: EncryptionAlgorithm) -> (id: UInt16, keyBits: UInt16?)? {
        switch e {
        case .des: return (1, nil)
        case .tripleDES: return (5, nil)
        case .aes128: return (7, 128)
        case .aes192: return (7, 192)
        case .aes256: return (7, 256)
        default: return nil
        }
    }

    static func hashID(_ h: HashAlgorithm) -> UInt16 {
        switch h {
        case .md5: return 1
        case .sha1: return 2
        case .sha256: return 4
        case .sha384: return 5
        case .sha512: return 6
        }
    }

    func transform(number: UInt8) -> Transform {
        var attributes: [Attribute] = []
        if let (id, bits) = Self.encryptionID(encryption) {
            attributes.append(Attribute(basic: Phase1Attribute.encryption, id))
            attributes.append(Attribute(basic: Phase1Attribute.hash, Self.hashID(hash)))
            attributes.append(Attribute(basic: Phase1Attribute.authentication, authentication))
            attributes.append(Attribute(basic: Phase1Attribute.group, UInt16(group.rawValue)))
            attributes.append(Attribute(basic: Phase1Attribute.lifeType, UInt16(LifeType.seconds)))
            attributes.append(Self.duration(Phase1Attribute.lifeDuration, lifetime.value))
            if let bits { attributes.append(Attribute(basic: Phase1Attribute.keyLength, bits)) }
        }
        return Transform(number: number, id: 1, attributes: attributes)
    }

    static func duration(_ type: UInt16, _ value: UInt64) -> Attribute {
        if value <= 0xffff { return Attribute(basic: type, UInt16(value)) }
        var bytes: [UInt8] = []
        var v = value
        while v > 0 { bytes.insert(UInt8(v & 0xff), at: 0); v >>= 8 }
        while bytes.count < 4 { bytes.insert(0, at: 0) }
        return Attribute(variable: type, bytes)
    }

    /// A peer's transform, or why it cannot be used (the reason goes into the audit line).
    /// The transform's algorithms; `authentication` says which method it asks for.
    static func parse(_ t: Transform) -> Result<Phase1Choice, NegotiationError> {
        var enc: UInt64?, hash: UInt64?, auth: UInt64?, group: UInt64?, bits: UInt64?
        var lifeType = LifeType.seconds, lifetime = Seconds(28_800)
        for a in t.attributes {
            guard let v = a.integer else { return .failure(.malformed("phase 1 attribute \(a.type) too long")) }
            switch a.type {
            case Phase1Attribute.encryption: enc = v
            case Phase1Attribute.hash: hash = v
            case Phase1Attribute.authentication: auth = v
            case Phase1Attribute.group: group = v
            case Phase1Attribute.keyLength: bits = v
            case Phase1Attribute.lifeType: lifeType = v
            case Phase1Attribute.lifeDuration: if lifeType == LifeType.seconds { lifetime = Seconds(v) }
            default: break
            }
        }
        let encryption: EncryptionAlgorithm?
        switch (enc, bits) {
        case (1, _): encryption = .des
        case (5, _): encryption = .tripleDES
        case (7, 128?), (7, nil): encryption = .aes128
        case (7, 192?): encryption = .aes192
        case (7, 256?): encryption = .aes256
        default: encryption = nil
        }
        let hashes: [UInt64: HashAlgorithm] = [1: .md5, 2: .sha1, 4: .sha256, 5: .sha384, 6: .sha512]
        guard let encryption else { return .failure(.noProposal("cipher \(enc ?? 0) not supported")) }
        guard let h = hash.flatMap({ hashes[$0] }) else {
            return .failure(.noProposal("hash \(hash ?? 0) not supported"))
        }
        guard let g = group.flatMap({ DHGroup(rawValue: Int($0)) }) else {
            return .failure(.noProposal("group \(group ?? 0) not supported"))
        }
        var choice = Phase1Choice(encryption: encryption, hash: h, group: g, lifetime: lifetime)
        choice.authentication = UInt16(truncatingIfNeeded: auth ?? 0)
        return .success(choice)
    }
}

/// One phase 2 transform: an ESP (or AH) algorithm pair with its attributes.
public struct Phase2Choice: Equatable, Sendable, CustomStringConvertible {
    public var proto: ProtocolID
    public var encryption: EncryptionAlgorithm
    public var integrity: IntegrityAlgorithm
    public var mode: EncapsulationMode
    public var lifetime: Seconds
    public var group: DHGroup?

    public var description: String {
        (proto == .esp ? "esp \(encryption.rawValue)/" : "ah ") + integrity.rawValue
            + (group.map { "/\($0.name)" } ?? "")
    }

    static func espID(_ e: EncryptionAlgorithm) -> (UInt8, UInt16?)? {
        switch e {
        case .des: return (2, nil)
        case .tripleDES: return (3, nil)
        case .null: return (11, nil)
        case .aes128: return (12, 128)
        case .aes192: return (12, 192)
        case .aes256: return (12, 256)
        case .aes128ctr: return (13, 128)
        case .aes192ctr: return (13, 192)
        case .aes256ctr: return (13, 256)
        case .aes128gcm: return (20, 128)
        case .aes256gcm: return (20, 256)
        }
    }

    static func authID(_ i: IntegrityAlgorithm) -> UInt16? {
        switch i {
        case .null: return nil
        case .md5: return 1
        case .sha1: return 2
        case .sha256: return 5
        case .sha384: return 6
        case .sha512: return 7
        }
    }

    /// AH's transform IDs (RFC 2407 4.4.3).
    static func ahID(_ i: IntegrityAlgorithm) -> UInt8? {
        switch i {
        case .md5: return 2
        case .sha1: return 3
        case .sha256: return 5
        case .sha384: return 6
        case .sha512: return 7
        case .null: return nil
        }
    }

    func transform(number: UInt8) -> Transform? {
        var attributes = [Attribute(basic: Phase2Attribute.lifeType, UInt16(LifeType.seconds)),
                          Phase1Choice.duration(Phase2Attribute.lifeDuration, lifetime.value)]
        if let group { attributes.append(Attribute(basic: Phase2Attribute.group, UInt16(group.rawValue))) }
        attributes.append(Attribute(basic: Phase2Attribute.encapsulation, mode.rawValue))
        if proto == .ah {
            guard let id = Self.ahID(integrity), let auth = Self.authID(integrity) else { return nil }
            attributes.append(Attribute(basic: Phase2Attribute.authentication, auth))
            return Transform(number: number, id: id, attributes: attributes)
        }
        guard let (id, bits) = Self.espID(encryption) else { return nil }
        if let auth = Self.authID(integrity) {
            attributes.append(Attribute(basic: Phase2Attribute.authentication, auth))
        }
        if let bits { attributes.append(Attribute(basic: Phase2Attribute.keyLength, bits)) }
        return Transform(number: number, id: id, attributes: attributes)
    }

    static func parse(_ t: Transform, proto: ProtocolID) -> Result<Phase2Choice, NegotiationError> {
        var auth: UInt64?, bits: UInt64?, group: UInt64?, mode: UInt64 = 1
        var lifeType = LifeType.seconds, lifetime = Seconds(28_800)
        for a in t.attributes {
            guard let v = a.integer else { return .failure(.malformed("phase 2 attribute \(a.type) too long")) }
            switch a.type {
            case Phase2Attribute.lifeType: lifeType = v
            case Phase2Attribute.lifeDuration: if lifeType == LifeType.seconds { lifetime = Seconds(v) }
            case Phase2Attribute.group: group = v
            case Phase2Attribute.encapsulation: mode = v
            case Phase2Attribute.authentication: auth = v
            case Phase2Attribute.keyLength: bits = v
            default: break
            }
        }
        let auths: [UInt64: IntegrityAlgorithm] = [1: .md5, 2: .sha1, 5: .sha256, 6: .sha384, 7: .sha512]
        let integrity: IntegrityAlgorithm = auth.flatMap { auths[$0] } ?? .null
        guard auth == nil || integrity != .null else {
            return .failure(.noProposal("authentication \(auth ?? 0) not supported"))
        }
        guard let m = EncapsulationMode(rawValue: UInt16(truncatingIfNeeded: mode)) else {
            return .failure(.noProposal("encapsulation \(mode) not supported"))
        }
        var g: DHGroup?
        if let group {
            guard let parsed = DHGroup(rawValue: Int(group)) else {
                return .failure(.noProposal("group \(group) not supported"))
            }
            g = parsed
        }
        if proto == .ah {
            let ids: [UInt8: IntegrityAlgorithm] = [2: .md5, 3: .sha1, 5: .sha256, 6: .sha384, 7: .sha512]
            guard let i = ids[t.id] else { return .failure(.noProposal("AH transform \(t.id) not supported")) }
            return .success(Phase2Choice(proto: .ah, encryption: .null, integrity: i, mode: m, lifetime: lifetime,
                                         group: g))
        }
        let enc: EncryptionAlgorithm?
        switch (t.id, bits) {
        case (2, _): enc = .des
        case (3, _): enc = .tripleDES
        case (11, _): enc = .null
        case (12, 128?), (12, nil): enc = .aes128
        case (12, 192?): enc = .aes192
        case (12, 256?): enc = .aes256
        case (13, 128?): enc = .aes128ctr
        case (13, 192?): enc = .aes192ctr
        case (13, 256?): enc = .aes256ctr
        case (20, 128?): enc = .aes128gcm
        case (20, 256?): enc = .aes256gcm
        default: enc = nil
        }
        guard let enc else { return .failure(.noProposal("ESP transform \(t.id) not supported")) }
        guard enc.isAEAD == (integrity == .null) || enc == .null else {
            return .failure(.noProposal("ESP \(enc.rawValue) with \(integrity.rawValue)"))
        }
        return .success(Phase2Choice(proto: .esp, encryption: enc, integrity: integrity, mode: m, lifetime: lifetime,
                                     group: g))
    }
}

/// Why a negotiation failed: the notification to send and the audit text.
public enum NegotiationError: Error, Equatable, Sendable {
    case noProposal(String)
    case invalidID(String)
    case authentication(String)
    case badHash(String)
    case malformed(String)
    /// IKEv2: no policy fits the traffic selectors the peer proposed (TS_UNACCEPTABLE).
    case tsUnacceptable(String)

    var notify: NotifyType {
        switch self {
        case .noProposal: return .noProposalChosen
        case .invalidID, .tsUnacceptable: return .invalidIDInformation
        case .authentication: return .authenticationFailed
        case .badHash: return .invalidHashInformation
        case .malformed: return .payloadMalformed
        }
    }

    public var reason: String {
        switch self {
        case .noProposal(let s), .invalidID(let s), .authentication(let s), .badHash(let s), .malformed(let s),
             .tsUnacceptable(let s): return s
        }
    }
}
