/// Numbers from RFC 2407, 2408, 2409, 3706 and 3947, named.
public enum ExchangeType: UInt8, Sendable {
    case base = 1, identityProtection = 2, aggressive = 4, informational = 5, quick = 32
}

enum Phase1Attribute {
    static let encryption: UInt16 = 1, hash: UInt16 = 2, authentication: UInt16 = 3, group: UInt16 = 4
    static let lifeType: UInt16 = 11, lifeDuration: UInt16 = 12, keyLength: UInt16 = 14
}

enum Phase2Attribute {
    static let lifeType: UInt16 = 1, lifeDuration: UInt16 = 2, group: UInt16 = 3, encapsulation: UInt16 = 4
    static let authentication: UInt16 = 5, keyLength: UInt16 = 6
}

enum LifeType { static let seconds: UInt64 = 1, kilobytes: UInt64 = 2 }

public enum EncapsulationMode: UInt16, Sendable {
    case tunnel = 1, transport = 2, udpTunnel = 3, udpTransport = 4
    /// draft-ietf-ipsec-nat-t-ike-00..03
    case draftUDPTunnel = 61443, draftUDPTransport = 61444

    var isUDP: Bool { self != .tunnel && self != .transport }
    var isTunnel: Bool { self == .tunnel || self == .udpTunnel || self == .draftUDPTunnel }
}

public enum ProtocolID: UInt8, Sendable { case isakmp = 1, ah = 2, esp = 3 }

public enum NotifyType: UInt16, Sendable {
    case invalidPayloadType = 1, doiNotSupported = 2, situationNotSupported = 3, invalidCookie = 4
    case invalidMajorVersion = 5, invalidExchangeType = 7, invalidFlags = 8, invalidMessageID = 9
    case invalidProtocolID = 10, invalidSPI = 11, invalidTransformID = 12, attributesNotSupported = 13
    case noProposalChosen = 14, badProposalSyntax = 15, payloadMalformed = 16, invalidKeyInformation = 17
    case invalidIDInformation = 18, invalidHashInformation = 23, authenticationFailed = 24
    case responderLifetime = 24576, replayStatus = 24577, initialContact = 24578
    case rUThere = 36136, rUThereAck = 36137

    public var name: String {
        switch self {
        case .noProposalChosen: return "NO-PROPOSAL-CHOSEN"
        case .invalidIDInformation: return "INVALID-ID-INFORMATION"
        case .invalidHashInformation: return "INVALID-HASH-INFORMATION"
        case .authenticationFailed: return "AUTHENTICATION-FAILED"
        case .payloadMalformed: return "PAYLOAD-MALFORMED"
        case .invalidPayloadType: return "INVALID-PAYLOAD-TYPE"
        case .invalidExchangeType: return "INVALID-EXCHANGE-TYPE"
        case .invalidKeyInformation: return "INVALID-KEY-INFORMATION"
        case .attributesNotSupported: return "ATTRIBUTES-NOT-SUPPORTED"
        case .badProposalSyntax: return "BAD-PROPOSAL-SYNTAX"
        case .responderLifetime: return "RESPONDER-LIFETIME"
        case .initialContact: return "INITIAL-CONTACT"
        case .rUThere: return "R-U-THERE"
        case .rUThereAck: return "R-U-THERE-ACK"
        default: return "notify-\(rawValue)"
        }
    }
}

public enum IDType { public static let ipv4Address: UInt8 = 1, ipv4Subnet: UInt8 = 4 }

public enum VendorIDs {
    /// MD5("RFC 3947")
    public static let natTraversalRFC3947: [UInt8] = [0x4a, 0x13, 0x1c, 0x81, 0x07, 0x03, 0x58, 0x45, 0x5c, 0x57, 0x28,
                                                      0xf2, 0x0e, 0x95, 0x45, 0x2f]
    /// MD5("draft-ietf-ipsec-nat-t-ike-02\n"), the one older peers (and strongSwan) still send.
    public static let natTraversalDraft02n: [UInt8] = [0x90, 0xcb, 0x80, 0x91, 0x3e, 0xbb, 0x69, 0x6e, 0x08, 0x63, 0x81,
                                                       0xb5, 0xec, 0x42, 0x7b, 0x1f]
    public static let natTraversalDraft02: [UInt8] = [0xcd, 0x60, 0x46, 0x43, 0x35, 0xdf, 0x21, 0xf8, 0x7c, 0xfd, 0xb2,
                                                      0xfc, 0x68, 0xb6, 0xa4, 0x48]
    public static let natTraversalDraft03: [UInt8] = [0x7d, 0x94, 0x19, 0xa6, 0x53, 0x10, 0xca, 0x6f, 0x2c, 0x17, 0x9d,
                                                      0x92, 0x15, 0x52, 0x9d, 0x56]
    /// RFC 3706 dead peer detection, version 1.0.
    public static let deadPeerDetection: [UInt8] = [0xaf, 0xca, 0xd7, 0x13, 0x68, 0xa1, 0xf1, 0xc9, 0x6b, 0x86, 0x96,
                                                    0xfc, 0x77, 0x57, 0x01, 0x00]

    static let draftNATT = [natTraversalDraft02n, natTraversalDraft02, natTraversalDraft03]
}
