/// Numbers from RFC 7296 (and RFC 5282, 7383, 7427, 8031, 8247), named.
public enum IKEv2Exchange: UInt8, Sendable {
    case ikeSAInit = 34, ikeAuth = 35, createChildSA = 36, informational = 37
}

public enum IKEv2PayloadType {
    public static let none: UInt8 = 0
    public static let sa: UInt8 = 33, keyExchange: UInt8 = 34, idInitiator: UInt8 = 35, idResponder: UInt8 = 36
    public static let certificate: UInt8 = 37, certificateRequest: UInt8 = 38, authentication: UInt8 = 39
    public static let nonce: UInt8 = 40, notify: UInt8 = 41, delete: UInt8 = 42, vendorID: UInt8 = 43
    public static let tsInitiator: UInt8 = 44, tsResponder: UInt8 = 45, encrypted: UInt8 = 46
    public static let configuration: UInt8 = 47, eap: UInt8 = 48
    /// RFC 7383: an encrypted fragment.
    public static let encryptedFragment: UInt8 = 53
}

/// Protocol IDs in proposals, notifications and deletes.
public enum IKEv2Protocol: UInt8, Sendable { case ike = 1, ah = 2, esp = 3 }

/// Transform types and IDs (RFC 7296 3.3.2, IANA).
public enum IKEv2TransformType {
    public static let encryption: UInt8 = 1, prf: UInt8 = 2, integrity: UInt8 = 3, dh: UInt8 = 4, esn: UInt8 = 5
}

public enum IKEv2AttributeType { public static let keyLength: UInt16 = 14 }

public enum IKEv2AuthMethod: UInt8, Sendable {
    case rsaSignature = 1, sharedKey = 2, digitalSignature = 14
}

/// ID payload types (RFC 7296 3.5).
public enum IKEv2IDType {
    public static let ipv4Address: UInt8 = 1, fqdn: UInt8 = 2, rfc822Address: UInt8 = 3
    public static let derASN1DN: UInt8 = 9, keyID: UInt8 = 11
}

public enum IKEv2CertificateEncoding { public static let x509Signature: UInt8 = 4 }

/// RFC 7296 3.13.1 traffic selector types.
public enum IKEv2TSType { public static let ipv4Range: UInt8 = 7, ipv6Range: UInt8 = 8 }

/// RFC 7427 hash algorithm identifiers (SIGNATURE_HASH_ALGORITHMS).
public enum IKEv2SignatureHash: UInt16, Sendable, CaseIterable {
    case sha1 = 1, sha256 = 2, sha384 = 3, sha512 = 4
}

public enum IKEv2Notify: UInt16, Sendable {
    // errors
    case unsupportedCriticalPayload = 1, invalidIKESPI = 4, invalidMajorVersion = 5, invalidSyntax = 7
    case invalidMessageID = 9, invalidSPI = 11, noProposalChosen = 14, invalidKEPayload = 17
    case authenticationFailed = 24, singlePairRequired = 34, noAdditionalSAs = 35, internalAddressFailure = 36
    case failedCPRequired = 37, tsUnacceptable = 38, invalidSelectors = 39, temporaryFailure = 43
    case childSANotFound = 44
    // status
    case initialContact = 16384, setWindowSize = 16385, additionalTSPossible = 16386, ipcompSupported = 16387
    case natDetectionSourceIP = 16388, natDetectionDestinationIP = 16389, cookie = 16390
    case useTransportMode = 16391, httpCertLookupSupported = 16392, rekeySA = 16393
    case espTFCPaddingNotSupported = 16394, nonFirstFragmentsAlso = 16395, mobikeSupported = 16396
    case fragmentationSupported = 16430, signatureHashAlgorithms = 16431

    /// Types below this are errors (RFC 7296 3.10.1).
    public static let firstStatus: UInt16 = 16384

    public static func name(_ type: UInt16) -> String {
        guard let n = IKEv2Notify(rawValue: type) else { return "notify-\(type)" }
        switch n {
        case .unsupportedCriticalPayload: return "UNSUPPORTED_CRITICAL_PAYLOAD"
        case .invalidIKESPI: return "INVALID_IKE_SPI"
        case .invalidMajorVersion: return "INVALID_MAJOR_VERSION"
        case .invalidSyntax: return "INVALID_SYNTAX"
        case .invalidMessageID: return "INVALID_MESSAGE_ID"
        case .invalidSPI: return "INVALID_SPI"
        case .noProposalChosen: return "NO_PROPOSAL_CHOSEN"
        case .invalidKEPayload: return "INVALID_KE_PAYLOAD"
        case .authenticationFailed: return "AUTHENTICATION_FAILED"
        case .singlePairRequired: return "SINGLE_PAIR_REQUIRED"
        case .noAdditionalSAs: return "NO_ADDITIONAL_SAS"
        case .internalAddressFailure: return "INTERNAL_ADDRESS_FAILURE"
        case .failedCPRequired: return "FAILED_CP_REQUIRED"
        case .tsUnacceptable: return "TS_UNACCEPTABLE"
        case .invalidSelectors: return "INVALID_SELECTORS"
        case .temporaryFailure: return "TEMPORARY_FAILURE"
        case .childSANotFound: return "CHILD_SA_NOT_FOUND"
        case .initialContact: return "INITIAL_CONTACT"
        case .setWindowSize: return "SET_WINDOW_SIZE"
        case .additionalTSPossible: return "ADDITIONAL_TS_POSSIBLE"
        case .ipcompSupported: return "IPCOMP_SUPPORTED"
        case .natDetectionSourceIP: return "NAT_DETECTION_SOURCE_IP"
        case .natDetectionDestinationIP: return "NAT_DETECTION_DESTINATION_IP"
        case .cookie: return "COOKIE"
        case .useTransportMode: return "USE_TRANSPORT_MODE"
        case .httpCertLookupSupported: return "HTTP_CERT_LOOKUP_SUPPORTED"
        case .rekeySA: return "REKEY_SA"
        case .espTFCPaddingNotSupported: return "ESP_TFC_PADDING_NOT_SUPPORTED"
        case .nonFirstFragmentsAlso: return "NON_FIRST_FRAGMENTS_ALSO"
        case .mobikeSupported: return "MOBIKE_SUPPORTED"
        case .fragmentationSupported: return "IKEV2_FRAGMENTATION_SUPPORTED"
        case .signatureHashAlgorithms: return "SIGNATURE_HASH_ALGORITHMS"
        }
    }
}
